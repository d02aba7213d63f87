"""One exception tree for every error a Chorus user can hit; each maps to one HTTP status."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class ChorusError(Exception):
    """Base class. `status` is the HTTP status the API answers with; `detail` says what to fix."""

    status = 500
    code = "internal_error"
    headers: Mapping[str, str] = {}  # sent with the response, e.g. Retry-After

    def __init__(self, detail: str, *, extra: dict[str, Any] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra or {}

    def to_dict(self) -> dict[str, Any]:
        return {"error": self.code, "detail": self.detail, **self.extra}


class BadRequest(ChorusError):
    status = 400
    code = "bad_request"


class Unauthorized(ChorusError):
    status = 401
    code = "unauthorized"


class Forbidden(ChorusError):
    status = 403
    code = "forbidden"


class NotFound(ChorusError):
    status = 404
    code = "not_found"


class Conflict(ChorusError):
    status = 409
    code = "conflict"


class PayloadTooLarge(ChorusError):
    status = 413
    code = "payload_too_large"


class InvalidInput(ChorusError):
    """Input that parsed but broke a rule; `errors` lists every problem with its JSON path."""

    status = 422
    code = "invalid_input"

    def __init__(self, detail: str, *, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(detail, extra={"errors": errors or []})
        self.errors = errors or []


class ProviderUnavailable(ChorusError):
    """A bot's model provider cannot be used (no credentials, unknown provider)."""

    status = 503
    code = "provider_unavailable"


class DatabaseUnavailable(ChorusError):
    """Postgres cannot be reached (or gave no connection in time). Clients retry; nothing to fix on their side."""

    status = 503
    code = "database_unavailable"
    retry_after_s = 2
    headers = {"Retry-After": str(retry_after_s)}

    def __init__(self, reason: str) -> None:
        super().__init__(f"the database is not reachable ({reason}); retry in a few seconds")
        self.reason = reason


class ToolError(ChorusError):
    """A tool failed; inside a turn this becomes a tool message the model sees."""

    status = 502
    code = "tool_error"


class ServerMisconfigured(ChorusError):
    """A setting the operator gave cannot be used (e.g. a malformed CHORUS_SECRET_KEY); raised at startup."""

    status = 500
    code = "server_misconfigured"


class SecretUndecryptable(ChorusError):
    """A stored secret cannot be decrypted with the server's key (CHORUS_SECRET_KEY changed, or the row was
    altered); the operator must restore the key it was encrypted with, or the secret must be rotated."""

    status = 503
    code = "secret_undecryptable"
