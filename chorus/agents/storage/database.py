"""The one seam to Postgres: an async connection pool plus migrations applied at start.

Database faults: a request waits at most `timeout_s` for a connection; while the database is known to
be down (see `outage.py`) it fails at once with `DatabaseUnavailable`; pooled connections idle for a
while are checked before use, the busy ones are not (no extra round trip on the hot path).

Overload is not an outage: a wait that ends because every connection stayed in use raises `ServerBusy`.
The run queue's upkeep (lease renewal, the reaper) has connections of its own (`upkeep=True`), so a
server saturated by requests still renews the leases of the runs it executes instead of losing them.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import psycopg
from psycopg import AsyncConnection
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from chorus.agents.errors import DatabaseUnavailable, ServerBusy, Unavailable
from chorus.agents.settings import Settings
from chorus.agents.storage.embedded import embedded_database_url
from chorus.agents.storage.migrations import apply_migrations
from chorus.agents.storage.outage import OutageWatch, describe

Connection = AsyncConnection[DictRow]
RowT = TypeVar("RowT")

CHECK_IDLE_S = 5.0  # a pooled connection unused this long is checked (one round trip) before use
RECONNECT_TIMEOUT_S = 5.0  # the pool stops retrying a lost connection after this; it regrows on demand
UPKEEP_CONNECTIONS = 2  # the queue's own: lease renewal and the reaper, never waiting behind requests
# Defaults for TCP connections that the URL can override (ignored on Unix sockets, e.g. the embedded server):
# find a silently dead server in ~10 s instead of the kernel's two hours.
_NETWORK_DEFAULTS = {
    "keepalives": 1,
    "keepalives_idle": 5,
    "keepalives_interval": 2,
    "keepalives_count": 3,
    "tcp_user_timeout": 10_000,
}


@dataclass(frozen=True)
class DatabaseHealth:
    ok: bool
    detail: str  # "ok" or "unreachable: <reason>"
    pool: dict[str, int] = field(default_factory=dict)


class Database:
    def __init__(
        self,
        *,
        url: str,
        pool: AsyncConnectionPool[Connection],
        upkeep: AsyncConnectionPool[Connection],
        watch: OutageWatch,
        timeout_s: float,
    ) -> None:
        self.url = url
        self.pool = pool
        self.upkeep = upkeep
        self.watch = watch
        self.timeout_s = timeout_s

    @asynccontextmanager
    async def connection(self, *, wait_s: float | None = None, upkeep: bool = False) -> AsyncIterator[Connection]:
        """A pooled connection, waiting at most `wait_s` (default `timeout_s`) for one; `upkeep` takes it
        from the run queue's own connections."""
        if (reason := self.watch.outage) is not None:
            raise DatabaseUnavailable(reason)
        pool = self.upkeep if upkeep else self.pool
        try:
            async with pool.connection(wait_s) as conn:
                yield conn
        except PoolTimeout as exc:
            raise self.unavailable(exc, pool=pool, waited_s=wait_s) from exc
        except psycopg.OperationalError:
            self.watch.suspect()
            raise

    def unavailable(
        self, exc: PoolTimeout, *, pool: AsyncConnectionPool[Connection] | None = None, waited_s: float | None = None
    ) -> Unavailable:
        """What a wait for a connection that timed out means: an outage once the watch's probe has found
        the database down (a refused connect is found within milliseconds), else overload (every connection
        in use, or the pool still growing towards its size). The probe runs either way, so a database that
        hangs with every connection in use is still found to be down."""
        pool = pool or self.pool
        self.watch.suspect()
        waited = waited_s if waited_s is not None else self.timeout_s
        if (reason := self.watch.outage) is not None:
            return DatabaseUnavailable(reason)
        return ServerBusy(connections=pool.max_size, waited_s=waited)

    async def health(self) -> DatabaseHealth:
        """Whether the database answers, within `timeout_s`; never waits longer."""
        if (reason := self.watch.outage) is not None:
            return DatabaseHealth(False, f"unreachable: {reason}", self.pool_stats())
        try:
            async with asyncio.timeout(self.timeout_s), self.pool.connection(self.timeout_s) as conn:
                await conn.execute("SELECT 1")
        except (psycopg.Error, PoolTimeout, TimeoutError) as exc:
            self.watch.suspect()
            if not isinstance(exc, psycopg.Error) and _saturated(self.pool):
                # Busy, not down: a load balancer that took this process out would push its load onto the
                # others, and a liveness probe would restart it mid-run.
                detail = f"busy: all {self.pool.max_size} connections of this process stayed in use"
                return DatabaseHealth(True, detail, self.pool_stats())
            return DatabaseHealth(False, f"unreachable: {describe(exc, timeout_s=self.timeout_s)}", self.pool_stats())
        return DatabaseHealth(True, "ok", self.pool_stats())

    def pool_stats(self) -> dict[str, int]:
        stats = self.pool.get_stats()
        return {
            "size": stats.get("pool_size", 0),
            "available": stats.get("pool_available", 0),
            "max": stats.get("pool_max", 0),
            "waiting": stats.get("requests_waiting", 0),
        }

    async def close(self) -> None:
        await self.watch.stop()
        await self.upkeep.close()
        await self.pool.close()


def _saturated(pool: AsyncConnectionPool[Connection]) -> bool:
    """Every connection the pool may hold exists and is in use."""
    stats = pool.get_stats()
    return stats.get("pool_size", 0) >= pool.max_size and stats.get("pool_available", 0) == 0


def resolve_database_url(settings: Settings) -> str:
    return settings.database_url or embedded_database_url(settings.home)


def connect_options(url: str, *, connect_timeout_s: float) -> dict[str, Any]:
    """libpq options Chorus adds unless the URL sets them: a connect timeout and TCP keepalives."""
    given = conninfo_to_dict(url)
    defaults: dict[str, Any] = {"connect_timeout": max(2, round(connect_timeout_s)), **_NETWORK_DEFAULTS}
    return {k: v for k, v in defaults.items() if k not in given}


class _IdleCheck:
    """The pool's `check`: one round trip only for a connection unused for CHECK_IDLE_S or more."""

    def __init__(self, watch: OutageWatch) -> None:
        self._watch = watch
        self._last_used: weakref.WeakKeyDictionary[Connection, float] = weakref.WeakKeyDictionary()

    async def configure(self, conn: Connection) -> None:
        self._last_used[conn] = time.monotonic()  # a new connection needs no check

    async def check(self, conn: Connection) -> None:
        now = time.monotonic()
        last = self._last_used.get(conn, 0.0)
        self._last_used[conn] = now
        if now - last < CHECK_IDLE_S:
            return
        try:
            await AsyncConnectionPool.check_connection(conn)
        except psycopg.Error:
            self._watch.suspect()
            raise


async def open_database(settings: Settings, *, url: str | None = None, migrate: bool = True) -> Database:
    url = url or resolve_database_url(settings)
    options = connect_options(url, connect_timeout_s=settings.db_timeout_s)
    pool: AsyncConnectionPool[Connection]

    async def probe() -> None:
        async with asyncio.timeout(max(2.0, settings.db_timeout_s)):
            conn = await AsyncConnection.connect(url, autocommit=True, **options)
            try:
                await conn.execute("SELECT 1")
            finally:
                await conn.close()

    async def refill() -> None:
        await pool.check()  # drop dead idle connections, reconnect, grow back to min_size
        await upkeep.check()

    watch = OutageWatch(probe=probe, on_recovered=refill)
    idle_check = _IdleCheck(watch)

    async def reconnect_failed(_pool: AsyncConnectionPool[Connection]) -> None:
        watch.suspect()

    def make_pool(name: str, min_size: int, max_size: int) -> AsyncConnectionPool[Connection]:
        return AsyncConnectionPool(
            url,
            name=name,
            min_size=min_size,
            max_size=max_size,
            kwargs={"autocommit": True, "row_factory": dict_row, "prepare_threshold": 3, **options},
            open=False,
            connection_class=Connection,
            timeout=settings.db_timeout_s,
            configure=idle_check.configure,
            check=idle_check.check,
            reconnect_timeout=RECONNECT_TIMEOUT_S,
            reconnect_failed=reconnect_failed,
        )

    pool = make_pool("chorus", 2, settings.pool_max_size)
    upkeep = make_pool("chorus-upkeep", 1, UPKEEP_CONNECTIONS)
    await pool.open(wait=True, timeout=30)
    try:
        await upkeep.open(wait=True, timeout=30)
    except BaseException:
        await pool.close()
        raise
    watch.start()
    db = Database(url=url, pool=pool, upkeep=upkeep, watch=watch, timeout_s=settings.db_timeout_s)
    if migrate:
        await apply_migrations(db)
    return db


def returned(row: RowT | None, statement: str) -> RowT:
    """The row of a statement that always returns one (INSERT … RETURNING, an aggregate): a missing row is a
    broken invariant, reported as such rather than as a None further on."""
    if row is None:
        raise RuntimeError(f"{statement} returned no row")
    return row
