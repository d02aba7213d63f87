"""The one seam to Postgres: an async connection pool plus migrations applied at start."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from psycopg import AsyncConnection
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool

from chorus.agents.settings import Settings
from chorus.agents.storage.embedded import embedded_database_url
from chorus.agents.storage.migrations import apply_migrations


@dataclass
class Database:
    url: str
    pool: AsyncConnectionPool[AsyncConnection[DictRow]]

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[AsyncConnection[DictRow]]:
        async with self.pool.connection() as conn:
            yield conn

    async def ping(self) -> bool:
        async with self.pool.connection() as conn:
            cur = await conn.execute("SELECT 1 AS ok")
            row = await cur.fetchone()
            return row is not None and row["ok"] == 1

    async def close(self) -> None:
        await self.pool.close()


def resolve_database_url(settings: Settings) -> str:
    return settings.database_url or embedded_database_url(settings.home)


async def open_database(settings: Settings, *, url: str | None = None, migrate: bool = True) -> Database:
    url = url or resolve_database_url(settings)
    pool: AsyncConnectionPool[AsyncConnection[DictRow]] = AsyncConnectionPool(
        url,
        min_size=2,
        max_size=settings.pool_max_size,
        kwargs={"autocommit": True, "row_factory": dict_row, "prepare_threshold": 3},
        open=False,
        connection_class=AsyncConnection[DictRow],
    )
    await pool.open(wait=True, timeout=30)
    db = Database(url=url, pool=pool)
    if migrate:
        await apply_migrations(db)
    return db
