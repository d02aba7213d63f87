"""The HTTP status of every Chorus error, in one table (the domain errors in chorus/agents/errors.py do not
speak HTTP). An error takes the status of its nearest listed ancestor."""

from __future__ import annotations

from chorus.agents.errors import (
    BadRequest,
    ChorusError,
    Conflict,
    DestinationRefused,
    Forbidden,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    ServerMisconfigured,
    ToolError,
    Unauthorized,
    Unavailable,
    UnsupportedMediaType,
)

STATUS: dict[type[ChorusError], int] = {
    BadRequest: 400,
    Unauthorized: 401,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    PayloadTooLarge: 413,
    RateLimited: 429,
    UnsupportedMediaType: 415,
    InvalidInput: 422,
    DestinationRefused: 422,
    ToolError: 502,
    Unavailable: 503,
    ServerMisconfigured: 500,
    ChorusError: 500,
}


def status_of(exc: ChorusError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500
