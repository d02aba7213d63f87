"""A step's writes, and a turn's input checkpoint, held back briefly so they reach Postgres in the same
statement as the checkpoint that follows them: a turn then costs one statement per step instead of one
per task, plus one for its input.

Held rows still reach the database on their own after `delay_s` if no checkpoint follows (a run that
fails between steps), and before any read of the thread that goes to the database (`flush`).
With the default durability ("sync") a step's checkpoint is stored before the next step starts, taking
the step's held writes with it, so nothing a later step depends on is only held in memory. An input
checkpoint is one LangGraph itself does not wait for: it runs the first step (the graph's `__start__`)
while the input checkpoint is being put, and the put after that step, which LangGraph does wait for,
takes it. A background flush that fails keeps its rows and tries again; a checkpoint's statement waits
for a background flush under way (`settle`), so it never commits before the writes that precede it.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
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


@dataclass
class HeldCheckpoint:
    """The INSERT statements that store one checkpoint (its blobs, its row), with their parameters."""

    checkpoint_id: str
    statements: list[tuple[str, list[Any]]]


@dataclass
class _Held:
    # Rows by primary key, so a re-sent write replaces (upsert) or keeps (ignore) the first.
    upsert: dict[tuple[Any, ...], Row]
    ignore: dict[tuple[Any, ...], Row]
    checkpoints: list[HeldCheckpoint]

    def statement(self) -> tuple[list[str], list[Any]]:
        """The held rows as CTEs of one statement, with their parameters."""
        ctes: list[str] = []
        params: list[Any] = []
        for name, held, conflict in (("wi", self.ignore, WRITES_IGNORE), ("wu", self.upsert, WRITES_UPSERT)):
            rows = list(held.values())
            if rows:
                ctes.append(f"{name} AS ({WRITES_SQL}{values_sql(len(rows), 9)} {conflict})")
                params += [v for r in rows for v in r]
        for i, checkpoint in enumerate(self.checkpoints):
            for j, (sql, values) in enumerate(checkpoint.statements):
                ctes.append(f"h{i}_{j} AS ({sql})")
                params += values
        return ctes, params


class WriteBuffer:
    def __init__(self, pool: AsyncConnectionPool[AsyncConnection[DictRow]], *, delay_s: float = 0.02) -> None:
        self._pool = pool
        self._delay_s = delay_s
        self._held: dict[Key, _Held] = {}
        self._timers: set[Key] = set()
        self._inflight: dict[Key, asyncio.Task[None]] = {}

    def _for(self, key: Key) -> _Held:
        held = self._held.get(key)
        if held is None:
            held = self._held[key] = _Held({}, {}, [])
        return held

    def add(self, key: Key, rows: list[Row], *, upsert: bool) -> None:
        held = self._for(key)
        target = held.upsert if upsert else held.ignore
        for row in rows:
            pk = (row[2], row[3], row[5])
            if upsert:
                target[pk] = row
            else:
                target.setdefault(pk, row)
        self._arm(key)

    def hold_checkpoint(self, key: Key, checkpoint: HeldCheckpoint) -> None:
        self._for(key).checkpoints.append(checkpoint)
        self._arm(key)

    def holds_checkpoint(self, key: Key, checkpoint_id: str | None = None) -> bool:
        """Whether a checkpoint of the thread (this one, if given) is held."""
        held = self._held.get(key)
        return held is not None and any(
            checkpoint_id is None or c.checkpoint_id == checkpoint_id for c in held.checkpoints
        )

    def task_paths_after(self, key: Key, checkpoint_id: str) -> set[str] | None:
        """The task paths of the thread's held writes if the only checkpoint held is `checkpoint_id` and
        every held write is stored against it (so they are the writes of the step run on it); else None."""
        held = self._held.get(key)
        if held is None or [c.checkpoint_id for c in held.checkpoints] != [checkpoint_id]:
            return None
        rows = [*held.upsert.values(), *held.ignore.values()]
        if any(row[2] != checkpoint_id for row in rows):
            return None
        return {str(row[4]) for row in rows}

    def take(self, key: Key) -> tuple[list[str], list[Any]]:
        """The held rows of a thread as CTEs (and their parameters) for the caller's statement."""
        held = self._held.pop(key, None)
        return held.statement() if held else ([], [])

    def drop(self, thread_id: str) -> None:
        for key in [k for k in self._held if k[0] == thread_id]:
            del self._held[key]

    async def settle(self, key: Key) -> None:
        """Wait for a background flush of the thread under way, if any."""
        inflight = self._inflight.get(key)
        if inflight is not None:
            await asyncio.shield(inflight)

    async def settle_thread(self, thread_id: str) -> None:
        for key in [k for k in self._inflight if k[0] == thread_id]:
            await self.settle(key)

    async def flush(self, key: Key) -> None:
        """Make the thread's held rows visible in the database (before a read that goes there)."""
        await self.settle(key)
        held = self._held.pop(key, None)
        if held is None:
            return
        ctes, params = held.statement()
        if ctes:
            try:
                async with self._pool.connection() as conn:
                    await conn.execute(f"WITH {', '.join(ctes)} SELECT 1", params)
            except BaseException:
                self._restore(key, held)
                raise

    async def flush_thread(self, thread_id: str) -> None:
        for key in [k for k in self._held if k[0] == thread_id]:
            await self.flush(key)

    async def flush_all(self) -> None:
        for key in list(self._held):
            await self.flush(key)

    def _arm(self, key: Key) -> None:
        if key not in self._timers:
            self._timers.add(key)
            asyncio.get_running_loop().call_later(self._delay_s, self._on_timer, key)

    def _on_timer(self, key: Key) -> None:
        self._timers.discard(key)
        if key in self._held:
            task = asyncio.get_running_loop().create_task(self._flush_in_background(key))
            self._inflight[key] = task

            def done(finished: asyncio.Task[None]) -> None:
                # Only this flush's own entry: a later flush of the same thread may have replaced it.
                if self._inflight.get(key) is finished:
                    del self._inflight[key]

            task.add_done_callback(done)

    async def _flush_in_background(self, key: Key) -> None:
        held = self._held.pop(key, None)
        if held is None:
            return
        ctes, params = held.statement()
        if not ctes:
            return
        try:
            async with self._pool.connection() as conn:
                await conn.execute(f"WITH {', '.join(ctes)} SELECT 1", params)
        except Exception as exc:
            # Keep them (newer writes of the same keys win) and try again: a failed flush loses nothing.
            log.warning("could not store held checkpoint writes; retrying: %s", type(exc).__name__)
            self._restore(key, held)
            if key not in self._timers:
                self._timers.add(key)
                asyncio.get_running_loop().call_later(max(self._delay_s, 0.5), self._on_timer, key)

    def _restore(self, key: Key, held: _Held) -> None:
        current = self._for(key)
        for pk, row in held.upsert.items():
            current.upsert.setdefault(pk, row)
        for pk, row in held.ignore.items():
            current.ignore.setdefault(pk, row)
        current.checkpoints[:0] = held.checkpoints
