"""Cross-origin access for browser clients on another origin (LangChain's agent-chat-ui, a developer's own
app): which origins may call the API (`CHORUS_CORS_ORIGINS`), and which response headers their scripts may
read (the run's location, pagination, rate-limit hints)."""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware

from chorus.agents.errors import ServerMisconfigured

# A local development UI (agent-chat-ui's `npm run dev`) can connect out of the box.
DEFAULT_ORIGINS = "http://localhost:3000,http://127.0.0.1:3000"
EXPOSED = ["Content-Location", "Location", "X-Pagination-Total", "X-Pagination-Next", "X-Request-Id", "Retry-After"]


def parse_origins(value: str) -> list[str]:
    """Comma-separated origins (`scheme://host[:port]`), `*` for any, or empty for none."""
    origins = [o.strip().rstrip("/") for o in value.split(",") if o.strip()]
    for origin in origins:
        if origin == "*":
            continue
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.path or parts.query:
            raise ServerMisconfigured(
                f"CHORUS_CORS_ORIGINS: '{origin}' is not an origin; write scheme://host[:port] "
                "(e.g. https://chat.example.com), separate several with commas, or * for any origin"
            )
    return origins


def install_cors(app: FastAPI, origins: list[str]) -> None:
    if not origins:
        return
    app.add_middleware(
        CORSMiddleware,
        allow_origins=origins,
        allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
        allow_headers=["*"],
        expose_headers=EXPOSED,
        max_age=600,
    )
