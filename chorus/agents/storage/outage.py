"""Notices when Postgres stops answering and when it is back.

While the database is down, requests fail at once instead of queueing for a connection; once a probe
connects again, the pool is refilled at once (psycopg_pool alone retries with a backoff that grows to
minutes, which is why service used to take 80-100 s to come back).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

import psycopg
from psycopg_pool import PoolTimeout

log = logging.getLogger(__name__)

PROBE_INTERVAL_S = 0.5  # how often a down database is tried again, and the least time between probes


def describe(exc: BaseException, *, timeout_s: float | None = None) -> str:
    """Why the database could not be used, in words fit for a client: no DSN, host or socket path."""
    if isinstance(exc, PoolTimeout):
        within = f" within {timeout_s:g} s" if timeout_s else ""
        return f"no connection to it became free{within} (it is down or overloaded)"
    if isinstance(exc, TimeoutError):
        return "it did not answer in time"
    if isinstance(exc, psycopg.Error) and exc.sqlstate and exc.diag.message_primary:
        return exc.diag.message_primary  # e.g. "terminating connection due to administrator command"
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    # libpq: 'connection to server on socket "/tmp/.s.PGSQL.5432" failed: No such file or directory'
    text = text.rsplit("failed: ", 1)[-1].strip()
    if "No such file or directory" in text or "Connection refused" in text:
        return "connection refused"
    return text[:200]


class OutageWatch:
    """Knows whether the database is down. `suspect()` after a failure checks at once; while down,
    `probe` runs every PROBE_INTERVAL_S; when it passes again, `on_recovered` runs (refill the pool)."""

    def __init__(self, *, probe: Callable[[], Awaitable[None]], on_recovered: Callable[[], Awaitable[None]]) -> None:
        self._probe = probe
        self._on_recovered = on_recovered
        self.outage: str | None = None  # why the database is unreachable, while it is
        self.down_since: float | None = None
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._watch(), name="chorus-database-watch")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def suspect(self) -> None:
        """A database call failed in a way an outage would explain: probe now (rate-limited)."""
        self._wake.set()

    async def _watch(self) -> None:
        while True:
            if self.outage is None:
                await self._wake.wait()
            self._wake.clear()
            try:
                await self._check_once()
            except Exception:
                log.exception("database watch failed")
            await asyncio.sleep(PROBE_INTERVAL_S)

    async def _check_once(self) -> None:
        try:
            await self._probe()
        except (psycopg.Error, OSError, TimeoutError) as exc:
            reason = describe(exc)
            if self.outage is None:
                self.down_since = time.monotonic()
                log.warning("database unreachable: %s; requests answer 503 until it is back", reason)
            self.outage = reason
            return
        if self.outage is not None:
            down_for = time.monotonic() - (self.down_since or time.monotonic())
            log.warning("database reachable again after %.1f s", down_for)
            self.outage = self.down_since = None
        # Up (again, or all along after a failure): drop pooled connections that died meanwhile.
        await self._on_recovered()
