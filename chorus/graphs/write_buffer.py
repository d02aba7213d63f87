"""A step's writes, held back briefly so they reach Postgres in the same statement as the checkpoint
that follows them: a turn then costs one write statement instead of one per task.

Writes still reach the database on their own after `delay_s` if no checkpoint follows (a run that
fails between steps), and before any read of the thread that goes to the database (`flush`).
With the default durability ("sync") a step's checkpoint is stored before the next step starts, taking
the step's held writes with it, so nothing a later step depends on is only held in memory. A background
flush that fails keeps its writes and tries again.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import DictRow
from psycopg_pool import AsyncConnectionPool

log = logging.getLogger(__name__)

Key = tuple[str, str]  # (thread_id, checkpoint_ns)
Row = tuple[Any, ...]  # thread_id, ns, checkpoint_id, task_id, task_path, idx, channel, type, blob

WRITES_SQL = (
    "INSERT INTO checkpoint_writes (thread_id, checkpoint_ns, checkpoint_id, task_id, task_path, idx, channel,"
    " type, blob) VALUES "
)
_WRITES_KEY = "ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id, task_id, idx)"
WRITES_UPSERT = f"{_WRITES_KEY} DO UPDATE SET channel = EXCLUDED.channel, type = EXCLUDED.type, blob = EXCLUDED.blob"
WRITES_IGNORE = f"{_WRITES_KEY} DO NOTHING"


def values_sql(rows: int, columns: int) -> str:
    row = "(" + ", ".join(["%s"] * columns) + ")"
    return ", ".join([row] * rows)


def _statement(upsert: dict[tuple[Any, ...], Row], ignore: dict[tuple[Any, ...], Row]) -> tuple[list[str], list[Any]]:
    ctes: list[str] = []
    params: list[Any] = []
    for name, held, conflict in (("wi", ignore, WRITES_IGNORE), ("wu", upsert, WRITES_UPSERT)):
        rows = list(held.values())
        if rows:
            ctes.append(f"{name} AS ({WRITES_SQL}{values_sql(len(rows), 9)} {conflict})")
            params += [v for r in rows for v in r]
    return ctes, params


class WriteBuffer:
    def __init__(self, pool: AsyncConnectionPool[AsyncConnection[DictRow]], *, delay_s: float = 0.02) -> None:
        self._pool = pool
        self._delay_s = delay_s
        # Per thread: rows by primary key, so a re-sent write replaces (upsert) or keeps (ignore) the first.
        self._upsert: dict[Key, dict[tuple[Any, ...], Row]] = {}
        self._ignore: dict[Key, dict[tuple[Any, ...], Row]] = {}
        self._timers: set[Key] = set()
        self._inflight: dict[Key, asyncio.Task[None]] = {}

    def add(self, key: Key, rows: list[Row], *, upsert: bool) -> None:
        target = (self._upsert if upsert else self._ignore).setdefault(key, {})
        for row in rows:
            pk = (row[2], row[3], row[5])
            if upsert:
                target[pk] = row
            else:
                target.setdefault(pk, row)
        if key not in self._timers:
            self._timers.add(key)
            asyncio.get_running_loop().call_later(self._delay_s, self._on_timer, key)

    def take(self, key: Key) -> tuple[list[str], list[Any]]:
        """The held writes of a thread as CTEs (and their parameters) for the caller's statement."""
        return _statement(self._upsert.pop(key, {}), self._ignore.pop(key, {}))

    def drop(self, thread_id: str) -> None:
        for store in (self._ignore, self._upsert):
            for key in [k for k in store if k[0] == thread_id]:
                del store[key]

    async def flush(self, key: Key) -> None:
        """Make the thread's writes visible in the database (before a read that goes there)."""
        inflight = self._inflight.get(key)
        if inflight is not None:
            await asyncio.shield(inflight)
        upsert, ignore = self._upsert.pop(key, {}), self._ignore.pop(key, {})
        ctes, params = _statement(upsert, ignore)
        if ctes:
            try:
                async with self._pool.connection() as conn:
                    await conn.execute(f"WITH {', '.join(ctes)} SELECT 1", params)
            except BaseException:
                for held, store in ((upsert, self._upsert), (ignore, self._ignore)):
                    if held:
                        self._restore(store.setdefault(key, {}), held)
                raise

    async def flush_all(self) -> None:
        for key in list({*self._ignore, *self._upsert}):
            await self.flush(key)

    def _on_timer(self, key: Key) -> None:
        self._timers.discard(key)
        if key in self._ignore or key in self._upsert:
            task = asyncio.get_running_loop().create_task(self._flush_in_background(key))
            self._inflight[key] = task

            def done(finished: asyncio.Task[None]) -> None:
                # Only this flush's own entry: a later flush of the same thread may have replaced it.
                if self._inflight.get(key) is finished:
                    del self._inflight[key]

            task.add_done_callback(done)

    async def _flush_in_background(self, key: Key) -> None:
        upsert, ignore = self._upsert.pop(key, {}), self._ignore.pop(key, {})
        ctes, params = _statement(upsert, ignore)
        if not ctes:
            return
        try:
            async with self._pool.connection() as conn:
                await conn.execute(f"WITH {', '.join(ctes)} SELECT 1", params)
        except Exception as exc:
            # Keep them (newer writes of the same keys win) and try again: a failed flush loses nothing.
            log.warning("could not store held checkpoint writes; retrying: %s", type(exc).__name__)
            for held, store in ((upsert, self._upsert), (ignore, self._ignore)):
                if held:
                    self._restore(store.setdefault(key, {}), held)
            if key not in self._timers:
                self._timers.add(key)
                asyncio.get_running_loop().call_later(max(self._delay_s, 0.5), self._on_timer, key)

    @staticmethod
    def _restore(current: dict[tuple[Any, ...], Row], held: dict[tuple[Any, ...], Row]) -> None:
        for pk, row in held.items():
            current.setdefault(pk, row)
