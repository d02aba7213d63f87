"""Postgres checkpoints without the stock AsyncPostgresSaver's costs.

1. No global lock. The stock saver funnels every operation of every thread through one asyncio.Lock,
   even with a pool (langgraph#7259). Here each operation takes its own pooled connection.
2. Linear storage. BotState keeps messages in a DeltaChannel: each step stores only its new messages
   (plus a full snapshot every 1000 updates), not the whole history again.
3. One statement per step. Writes are serialized inline (the stock saver hops to a thread for each)
   and held briefly (write_buffer.py) so they go to Postgres with the checkpoint that follows them. So is
   a turn's input checkpoint, which LangGraph does not wait for (it runs the `__start__` step meanwhile):
   it is stored with that step's checkpoint, before the next step starts, as with the stock saver.
4. A thread's own last checkpoint is not read back. Each turn starts by loading the newest checkpoint
   and rebuilding the message history from every write since the last snapshot. The saver remembers,
   per thread, the checkpoint it last wrote and the history at it (checkpoint_cache.py); one index
   lookup confirms it is still the newest (another process, e.g. `chorus chat`, may have written).
   Code that changes checkpoints behind the saver's back calls `forget`.
5. One WAL flush less per turn. With durability "sync" each step's checkpoint is committed before the next
   step starts, and a commit waits for its WAL flush (0.2-5 ms on this machine's shared disk). The first
   step of a turn is LangGraph's `__start__`, which only copies the input into the state: its checkpoint
   (stored with the input checkpoint) is committed, so every reader sees it before the next step starts,
   without waiting for the flush; the next step's checkpoint commit flushes the WAL up to both. A power cut
   or Postgres crash before that loses both (never one without the other), and the run starts again from
   its input, which the run row holds; `__start__` repeats nothing but that copy. Only a statement holding
   exactly the input checkpoint, the writes of the `__start__` task on it, and the checkpoint after it
   commits this way.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, cast

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    get_checkpoint_id,
    get_serializable_checkpoint_metadata,
)
from psycopg import AsyncConnection, AsyncCursor
from psycopg.rows import DictRow, dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from chorus.graphs.checkpoint_cache import Reducer, ThreadCache, fold
from chorus.graphs.upstream import (
    START_TASK_PATH,
    WRITES_IDX_MAP,
    AsyncPostgresSaver,
    DeltaChannelHistory,
    _DeltaSnapshot,
    _messages_delta_reducer,
)
from chorus.graphs.write_buffer import HeldCheckpoint, WriteBuffer, values_sql

_BLOBS_SQL = "INSERT INTO checkpoint_blobs (thread_id, checkpoint_ns, channel, version, type, blob) VALUES "
_CHECKPOINT_SQL = (
    "INSERT INTO checkpoints (thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, checkpoint, metadata)"
    " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id)"
    " DO UPDATE SET checkpoint = EXCLUDED.checkpoint, metadata = EXCLUDED.metadata"
)
# The statement's transaction commits without waiting for its WAL to reach the disk; the next synchronous
# commit on the server flushes it (or the WAL writer, within 3 x wal_writer_delay).
_ASYNC_COMMIT = "SELECT set_config('synchronous_commit', 'off', true)"


class ChorusCheckpointer(AsyncPostgresSaver):
    def __init__(
        self,
        pool: AsyncConnectionPool[AsyncConnection[DictRow]],
        *,
        hot_threads: int = 2048,
        delta_reducers: Mapping[str, Reducer] | None = None,
    ) -> None:
        super().__init__(pool)
        self._pool = pool
        default: dict[str, Reducer] = {"messages": cast(Reducer, _messages_delta_reducer)}
        self._reducers: dict[str, Reducer] = dict(delta_reducers or default)
        self._cache = ThreadCache(capacity=hot_threads, reducers=self._reducers)
        self._writes = WriteBuffer(pool)

    async def setup(self) -> None:
        """LangGraph's checkpoint tables, created under an advisory lock: processes starting together on a new
        database (`chorus serve --workers N`, several hosts) take turns instead of racing on the same CREATE
        statements. Not the migrations' lock: a process waiting for that one sits in a statement, which the
        CONCURRENTLY index builds here would wait for, while it waits for us."""
        async with self._pool.connection() as conn:
            # Polled, not a waiting pg_advisory_lock: LangGraph creates indexes CONCURRENTLY, which waits for
            # every open statement, a blocked lock request included, so waiting in Postgres would deadlock.
            while not await _try_lock(conn, SETUP_LOCK):  # noqa: ASYNC110 - the holder is another process
                await asyncio.sleep(0.05)
            try:
                await super().setup()
            finally:
                await conn.execute("SELECT pg_advisory_unlock(%s)", (SETUP_LOCK,))

    @asynccontextmanager
    async def _cursor(self, *, pipeline: bool = False) -> AsyncIterator[AsyncCursor[DictRow]]:
        async with self._pool.connection() as conn:
            if pipeline:
                # One transaction, not a pipeline of autocommitted statements: the rows of one write
                # (a checkpoint and its blobs, a step's writes) commit together, with one WAL flush.
                async with conn.transaction(), conn.cursor(binary=True, row_factory=dict_row) as cur:
                    yield cur
            else:
                async with conn.cursor(binary=True, row_factory=dict_row) as cur:
                    yield cur

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        conf = config["configurable"]
        thread_id, ns = conf["thread_id"], conf["checkpoint_ns"]
        copy: dict[str, Any] = dict(checkpoint)
        copy["channel_values"] = dict(checkpoint["channel_values"])
        blob_values: dict[str, Any] = {}
        snapshot = False
        for k, v in checkpoint["channel_values"].items():
            if isinstance(v, _DeltaSnapshot):
                blob_values[k] = copy["channel_values"].pop(k)
                copy["channel_values"][k] = True
                snapshot = True
            elif not (v is None or isinstance(v, str | int | float | bool)):
                blob_values[k] = copy["channel_values"].pop(k)
        versions = {k: v for k, v in new_versions.items() if k in blob_values}
        if snapshot:  # a full message history: serialize off the event loop
            blobs = await asyncio.to_thread(self._dump_blobs, thread_id, ns, blob_values, versions)
        else:
            blobs = self._dump_blobs(thread_id, ns, blob_values, versions)
        row_metadata = get_serializable_checkpoint_metadata(config, metadata)
        row = [
            thread_id,
            ns,
            checkpoint["id"],
            conf.get("checkpoint_id"),
            Jsonb(copy),
            Jsonb(row_metadata),
        ]
        key = (str(thread_id), str(ns))
        if self._writes.holds_checkpoint(key, checkpoint["id"]):
            await self._writes.flush(key)  # the same checkpoint again: one statement may not insert it twice
        blob_sql = f"{_BLOBS_SQL}{values_sql(len(blobs), 6)} ON CONFLICT DO NOTHING" if blobs else ""
        blob_params = [v for b in blobs for v in b]
        if metadata.get("source") == "input":
            statements = [(blob_sql, blob_params)] if blobs else []
            self._writes.hold_checkpoint(key, HeldCheckpoint(checkpoint["id"], [*statements, (_CHECKPOINT_SQL, row)]))
        else:
            # The step's held writes (and input checkpoint), its blobs and the checkpoint in one statement:
            # one round trip, one commit, never before a background flush of what precedes it.
            await self._writes.settle(key)
            parent_id = conf.get("checkpoint_id")
            after_start = bool(parent_id) and self._writes.task_paths_after(key, str(parent_id)) == {START_TASK_PATH}
            ctes, params = self._writes.take(key)
            if blobs:
                ctes.append(f"blobs AS ({blob_sql})")
                params += blob_params
            if after_start:  # see 5. in the module docstring
                sql = f"WITH {', '.join([*ctes, f'cp AS ({_CHECKPOINT_SQL})'])} {_ASYNC_COMMIT}"
            else:
                sql = f"WITH {', '.join(ctes)} {_CHECKPOINT_SQL}" if ctes else _CHECKPOINT_SQL
            async with self._pool.connection() as conn:
                await conn.execute(sql, params + row)
        next_config: RunnableConfig = {
            "configurable": {"thread_id": thread_id, "checkpoint_ns": ns, "checkpoint_id": checkpoint["id"]}
        }
        parent = conf.get("checkpoint_id")
        parent_config: RunnableConfig | None = (
            {"configurable": {"thread_id": thread_id, "checkpoint_ns": ns, "checkpoint_id": parent}} if parent else None
        )
        remembered = cast(Checkpoint, dict(checkpoint))
        remembered["channel_values"] = dict(checkpoint["channel_values"])
        self._cache.wrote_checkpoint(
            (str(thread_id), str(ns)),
            CheckpointTuple(next_config, remembered, row_metadata, parent_config, []),
        )
        return next_config

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        conf = config["configurable"]
        upsert = all(w[0] in WRITES_IDX_MAP for w in writes)
        params = self._dump_writes(
            conf["thread_id"], conf["checkpoint_ns"], conf["checkpoint_id"], task_id, task_path, writes
        )
        key = (str(conf["thread_id"]), str(conf["checkpoint_ns"]))
        self._writes.add(key, params, upsert=upsert)
        self._cache.wrote_writes(
            key,
            str(conf["checkpoint_id"]),
            task_id,
            task_path,
            [(WRITES_IDX_MAP.get(channel, idx), channel, value) for idx, (channel, value) in enumerate(writes)],
            upsert=upsert,
        )

    async def _load_checkpoint_tuple(self, value: DictRow) -> CheckpointTuple:
        thread_id, ns = value["thread_id"], value["checkpoint_ns"]
        parent = value["parent_checkpoint_id"]
        checkpoint = cast(Checkpoint, dict(value["checkpoint"]))
        checkpoint["channel_values"] = {
            **(value["checkpoint"].get("channel_values") or {}),
            **self._load_blobs(value["channel_values"]),
        }
        return CheckpointTuple(
            {"configurable": {"thread_id": thread_id, "checkpoint_ns": ns, "checkpoint_id": value["checkpoint_id"]}},
            checkpoint,
            value["metadata"],
            {"configurable": {"thread_id": thread_id, "checkpoint_ns": ns, "checkpoint_id": parent}}
            if parent
            else None,
            self._load_writes(value["pending_writes"]),
        )

    def get_next_version(self, current: str | None, channel: None) -> str:
        """Compact versions: fixed-width counter plus a short random tag (the stock format is 49 chars,
        and a checkpoint carries a dozen of them). Still ordered as strings, still unique across forks."""
        number = 0 if current is None else current if isinstance(current, int) else int(current.split(".")[0])
        return f"{number + 1:012d}.{secrets.token_hex(3)}"

    async def aget_delta_channel_history(
        self, *, config: RunnableConfig, channels: Sequence[str]
    ) -> Mapping[str, DeltaChannelHistory]:
        channels = list(channels)
        if not channels:
            return {}
        thread_id = str(config["configurable"]["thread_id"])
        ns = str(config["configurable"].get("checkpoint_ns", ""))
        target = get_checkpoint_id(config)
        if not target:
            found = await self.aget_tuple(config)
            if found is None:
                return {ch: {"writes": []} for ch in channels}
            target = str(found.config["configurable"]["checkpoint_id"])
        key = (thread_id, ns)
        known = self._cache.delta(key, target, channels)
        if known is not None:
            return {ch: {"seed": _DeltaSnapshot(known[ch]), "writes": []} for ch in channels}
        await self._writes.flush(key)
        result = await super().aget_delta_channel_history(config=config, channels=channels)
        values: dict[str, Any] = {}
        for ch in channels:
            reducer, entry = self._reducers.get(ch), result[ch]
            seed = entry.get("seed")
            value = (
                fold(reducer, seed.value if isinstance(seed, _DeltaSnapshot) else seed, entry["writes"])
                if reducer
                else None
            )
            if value is None:
                return result
            values[ch] = value
        self._cache.remember_delta(key, target, values)
        return result

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        conf = config["configurable"]
        key = (str(conf["thread_id"]), str(conf.get("checkpoint_ns", "")))
        wanted = get_checkpoint_id(config)
        remembered = self._cache.latest_id(key)
        # A checkpoint never changes once written, but "the newest" does if another process (a second
        # server, `chorus chat`) wrote to the thread: one index lookup tells.
        if remembered is not None and (
            wanted == remembered or (wanted is None and await self._newest(key) == remembered)
        ):
            known = self._cache.latest(key, remembered)
            if known is not None:
                return known
        await self._writes.flush(key)
        found = await super().aget_tuple(config)
        if found is not None and wanted is None:
            self._cache.read_checkpoint(key, found)
        return found

    async def _newest(self, key: tuple[str, str]) -> str | None:
        if self._writes.holds_checkpoint(key):
            await self._writes.flush(key)
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                "SELECT checkpoint_id FROM checkpoints WHERE thread_id = %s AND checkpoint_ns = %s"
                " ORDER BY checkpoint_id DESC LIMIT 1",
                key,
            )
            row = await cur.fetchone()
        return str(row["checkpoint_id"]) if row else None

    def forget(self, thread_id: str) -> None:
        """Checkpoints of the thread changed behind the saver (e.g. a rolled-back run was erased): what is
        remembered of it, and what is held for it, is dropped."""
        self._cache.forget(str(thread_id))
        self._writes.drop(str(thread_id))

    async def aforget(self, thread_id: str) -> None:
        """`forget`, then wait for held rows of the thread already on their way to Postgres: call it before
        erasing the thread's checkpoints, so that none lands after the erase."""
        self.forget(thread_id)
        await self._writes.settle_thread(str(thread_id))

    async def aflush(self) -> None:
        """Store every held write now (at shutdown)."""
        await self._writes.flush_all()

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        if config is not None and "thread_id" in config.get("configurable", {}):
            conf = config["configurable"]
            await self._writes.flush((str(conf["thread_id"]), str(conf.get("checkpoint_ns", ""))))
        async for item in super().alist(config, filter=filter, before=before, limit=limit):
            yield item

    async def aflush_thread(self, thread_id: str) -> None:
        """Store what this process holds of the thread now (before SQL reads its rows directly)."""
        await self._writes.flush_thread(str(thread_id))

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        await self.aflush_thread(source_thread_id)
        async with self._pool.connection() as conn, conn.transaction():
            await self.copy_rows(conn, source=str(source_thread_id), target=str(target_thread_id))

    @staticmethod
    async def copy_rows(conn: AsyncConnection[DictRow], *, source: str, target: str) -> None:
        """Copy every checkpoint of `source`, in every namespace, with its blobs and writes, to `target` in the
        caller's transaction: the whole parent chain, which DeltaChannel needs to rebuild the messages.
        Rows held in this process are not included (`acopy_thread` flushes them first); a caller copying an
        idle thread has none. Checkpoint ids stay the same: they are unique per thread, not globally."""
        for table, columns in _COPIED.items():
            await conn.execute(
                f"INSERT INTO {table} (thread_id, {columns}) SELECT %s, {columns} FROM {table} WHERE thread_id = %s",
                (target, source),
            )

    async def adelete_thread(self, thread_id: str) -> None:
        await self.aforget(thread_id)
        await super().adelete_thread(thread_id)

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        if strategy != "delete":
            # "keep_latest" keeps the newest checkpoint's writes: store the held ones first, or forgetting
            # the thread below would drop them (found by the conformance suite).
            await self._writes.flush_all()
        for thread_id in thread_ids:
            self.forget(thread_id)
        await super().aprune(thread_ids, strategy=strategy)


# The columns of LangGraph's checkpoint tables besides thread_id (constants: no client input reaches them).
_COPIED = {
    "checkpoints": "checkpoint_ns, checkpoint_id, parent_checkpoint_id, type, checkpoint, metadata",
    "checkpoint_blobs": "checkpoint_ns, channel, version, type, blob",
    "checkpoint_writes": "checkpoint_ns, checkpoint_id, task_id, task_path, idx, channel, type, blob",
}
SETUP_LOCK = 0x43484F53  # "CHOS": one process at a time creates LangGraph's checkpoint tables


async def _try_lock(conn: AsyncConnection[DictRow], key: int) -> bool:
    row = await (await conn.execute("SELECT pg_try_advisory_lock(%s) AS got", (key,))).fetchone()
    return bool(row and row["got"])
