"""Postgres checkpoints without the stock AsyncPostgresSaver's global lock.

The stock saver funnels every operation of every thread through one asyncio.Lock, even when given a
pool (langgraph#7259). Here each operation takes its own pooled connection, so threads checkpoint in
parallel. Storage stays linear in the number of turns because BotState keeps messages in a
DeltaChannel (only new messages are written per step). Expired threads are deleted by `prune_expired`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from psycopg import AsyncConnection, AsyncCursor
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool


class ChorusCheckpointer(AsyncPostgresSaver):
    def __init__(self, pool: AsyncConnectionPool[AsyncConnection[DictRow]]) -> None:
        super().__init__(pool)
        self._pool = pool

    @asynccontextmanager
    async def _cursor(self, *, pipeline: bool = False) -> AsyncIterator[AsyncCursor[DictRow]]:
        async with self._pool.connection() as conn:
            if pipeline:
                async with conn.pipeline(), conn.cursor(binary=True, row_factory=dict_row) as cur:
                    yield cur
            else:
                async with conn.cursor(binary=True, row_factory=dict_row) as cur:
                    yield cur
