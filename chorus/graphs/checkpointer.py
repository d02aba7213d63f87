"""Postgres checkpoints without the stock AsyncPostgresSaver's costs.

1. No global lock. The stock saver funnels every operation of every thread through one asyncio.Lock,
   even with a pool (langgraph#7259). Here each operation takes its own pooled connection.
2. Linear storage. BotState keeps messages in a DeltaChannel: each step stores only its new messages
   (plus a full snapshot every 100 updates), not the whole history again.
3. Small writes stay on the event loop and commit once. The stock saver hops to a worker thread to
   serialize every write (it may be a whole message history there) and autocommits each row of a
   pipeline; with deltas the payloads are a few messages, so they are serialized inline and each
   checkpoint or batch of writes is one transaction.
4. Hot threads are not re-read. Rebuilding a DeltaChannel means deserializing every message since the
   last snapshot at the start of each turn. This saver remembers the messages of the checkpoint it
   last rebuilt for a thread; when the next turn starts from a descendant of it, only the writes in
   between are read from Postgres. The chain of checkpoint ids is verified, so a cache entry from
   another branch (rollback, a fork) or another process simply misses.
"""

from __future__ import annotations

import asyncio
import secrets
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, cast

from langchain_core.runnables import RunnableConfig
from langgraph.channels.binop import _get_overwrite
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    DeltaChannelHistory,
    PendingWrite,
    get_checkpoint_id,
    get_serializable_checkpoint_metadata,
    writes_sort_key,
)
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph.checkpoint.serde.types import _DeltaSnapshot
from langgraph.graph.message import _messages_delta_reducer
from psycopg import AsyncConnection, AsyncCursor
from psycopg.rows import DictRow, dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

Reducer = Callable[[Any, Sequence[Any]], Any]
# Longest chain of checkpoints between two turns the cache will bridge (a turn writes a few per step).
_MAX_BRIDGE = 200


_BLOBS_SQL = "INSERT INTO checkpoint_blobs (thread_id, checkpoint_ns, channel, version, type, blob) VALUES "
_CHECKPOINT_SQL = (
    "INSERT INTO checkpoints (thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, checkpoint, metadata)"
    " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id)"
    " DO UPDATE SET checkpoint = EXCLUDED.checkpoint, metadata = EXCLUDED.metadata"
)
_WRITES_SQL = (
    "INSERT INTO checkpoint_writes (thread_id, checkpoint_ns, checkpoint_id, task_id, task_path, idx, channel,"
    " type, blob) VALUES "
)
_WRITES_KEY = "ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id, task_id, idx)"
_WRITES_UPSERT = f"{_WRITES_KEY} DO UPDATE SET channel = EXCLUDED.channel, type = EXCLUDED.type, blob = EXCLUDED.blob"
_WRITES_IGNORE = f"{_WRITES_KEY} DO NOTHING"


def _chain(parent_of: dict[str, str | None], *, start: str, target: str) -> list[str] | None:
    """Checkpoint ids from `start` to the parent of `target`, oldest first; None if `start` is no ancestor."""
    chain: list[str] = []
    node = parent_of.get(target)
    while node is not None:
        chain.append(node)
        if node == start:
            return list(reversed(chain))
        node = parent_of.get(node)
    return None


def _values(rows: int, columns: int) -> str:
    row = "(" + ", ".join(["%s"] * columns) + ")"
    return ", ".join([row] * rows)


@dataclass
class _Hot:
    checkpoint_id: str
    values: dict[str, Any]


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
        self._hot: OrderedDict[tuple[str, str], _Hot] = OrderedDict()
        self._hot_capacity = hot_threads
        default: dict[str, Reducer] = {"messages": cast(Reducer, _messages_delta_reducer)}
        self._reducers: dict[str, Reducer] = dict(delta_reducers or default)

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
        row = [
            thread_id,
            ns,
            checkpoint["id"],
            conf.get("checkpoint_id"),
            Jsonb(copy),
            Jsonb(get_serializable_checkpoint_metadata(config, metadata)),
        ]
        if blobs:
            # Blobs and checkpoint in one statement: one round trip, one commit, all or nothing.
            sql = f"WITH blobs AS ({_BLOBS_SQL}{_values(len(blobs), 6)} ON CONFLICT DO NOTHING) {_CHECKPOINT_SQL}"
            params = [v for b in blobs for v in b] + row
        else:
            sql, params = _CHECKPOINT_SQL, row
        async with self._pool.connection() as conn:
            await conn.execute(sql, params)
        return {"configurable": {"thread_id": thread_id, "checkpoint_ns": ns, "checkpoint_id": checkpoint["id"]}}

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
        conflict = _WRITES_UPSERT if upsert else _WRITES_IGNORE
        async with self._pool.connection() as conn:
            await conn.execute(f"{_WRITES_SQL}{_values(len(params), 9)} {conflict}", [v for p in params for v in p])

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
        hot = await self._from_hot(key, target, channels)
        result = hot if hot is not None else await super().aget_delta_channel_history(config=config, channels=channels)
        self._remember(key, target, channels, result)
        return result

    async def _from_hot(
        self, key: tuple[str, str], target: str, channels: list[str]
    ) -> dict[str, DeltaChannelHistory] | None:
        hot = self._hot.get(key)
        if hot is None or not set(channels) <= hot.values.keys():
            return None
        if hot.checkpoint_id == target:
            return {ch: {"seed": _DeltaSnapshot(list(hot.values[ch])), "writes": []} for ch in channels}
        # One round trip: the checkpoints between the remembered one and the target, with their writes.
        async with self._cursor() as cur:
            await cur.execute(
                "SELECT c.checkpoint_id, c.parent_checkpoint_id, w.task_id, w.task_path, w.idx, w.channel, w.type,"
                " w.blob FROM checkpoints c LEFT JOIN checkpoint_writes w ON w.thread_id = c.thread_id"
                " AND w.checkpoint_ns = c.checkpoint_ns AND w.checkpoint_id = c.checkpoint_id AND w.channel = ANY(%s)"
                " WHERE c.thread_id = %s AND c.checkpoint_ns = %s AND c.checkpoint_id >= %s AND c.checkpoint_id <= %s",
                (channels, key[0], key[1], hot.checkpoint_id, target),
            )
            rows = await cur.fetchall()
        if len(rows) > _MAX_BRIDGE * 8:
            return None
        parent_of = {r["checkpoint_id"]: r["parent_checkpoint_id"] for r in rows}
        chain = _chain(parent_of, start=hot.checkpoint_id, target=target)
        if chain is None:
            return None
        position = {cid: i for i, cid in enumerate(chain)}
        found = [r for r in rows if r["task_id"] is not None and r["checkpoint_id"] in position]
        found.sort(
            key=lambda r: (position[r["checkpoint_id"]], writes_sort_key(r["task_path"], r["task_id"], r["idx"]))
        )
        writes: dict[str, list[PendingWrite]] = {ch: [] for ch in channels}
        for r in found:
            writes[r["channel"]].append((r["task_id"], r["channel"], self.serde.loads_typed((r["type"], r["blob"]))))
        self._hot.move_to_end(key)
        return {ch: {"seed": _DeltaSnapshot(list(hot.values[ch])), "writes": writes[ch]} for ch in channels}

    def _remember(
        self, key: tuple[str, str], target: str, channels: list[str], result: Mapping[str, DeltaChannelHistory]
    ) -> None:
        values: dict[str, Any] = {}
        for ch in channels:
            reducer = self._reducers.get(ch)
            entry = result[ch]
            writes = [w[2] for w in entry["writes"]]
            if reducer is None or any(_get_overwrite(w)[0] for w in writes):
                self._hot.pop(key, None)
                return
            seed = entry.get("seed")
            base: list[Any] = list(seed.value if isinstance(seed, _DeltaSnapshot) else (seed or []))
            values[ch] = reducer(base, writes) if writes else base
        self._hot[key] = _Hot(target, values)
        self._hot.move_to_end(key)
        while len(self._hot) > self._hot_capacity:
            self._hot.popitem(last=False)

    async def adelete_thread(self, thread_id: str) -> None:
        for key in [k for k in self._hot if k[0] == str(thread_id)]:
            del self._hot[key]
        await super().adelete_thread(thread_id)
