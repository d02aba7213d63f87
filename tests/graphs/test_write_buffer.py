"""The checkpointer's held writes and remembered checkpoints: defects found by reading the code."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from langchain_core.messages import HumanMessage
from langgraph.checkpoint.base import empty_checkpoint
from langgraph.checkpoint.base.id import uuid6

from chorus.agents.storage.database import Database
from chorus.graphs.checkpointer import ChorusCheckpointer
from chorus.graphs.upstream import AsyncPostgresSaver, _DeltaSnapshot, _messages_delta_reducer
from chorus.graphs.write_buffer import WriteBuffer


async def _setup(db: Database) -> ChorusCheckpointer:
    saver = ChorusCheckpointer(db.pool)
    await saver.setup()
    return saver


async def _stored_writes(db: Database, thread_id: str) -> list[str]:
    async with db.connection() as conn:
        cur = await conn.execute(
            "SELECT task_id FROM checkpoint_writes WHERE thread_id = %s ORDER BY task_id", (thread_id,)
        )
        return [r["task_id"] for r in await cur.fetchall()]


def _config(thread_id: str, checkpoint_id: str) -> Any:
    return {"configurable": {"thread_id": thread_id, "checkpoint_ns": "", "checkpoint_id": checkpoint_id}}


async def test_a_read_mid_turn_does_not_see_langgraph_changing_the_remembered_checkpoint(db: Database) -> None:
    saver = await _setup(db)
    thread_id = str(uuid.uuid4())
    checkpoint = empty_checkpoint()
    checkpoint["channel_values"] = {"pii": {"name": "Ada"}}
    checkpoint["channel_versions"] = {"pii": "000000000001.abcdef"}
    await saver.aput(
        _config(thread_id, ""), checkpoint, {"source": "input", "step": -1}, {"pii": "000000000001.abcdef"}
    )
    await saver.aflush()
    saver.forget(thread_id)  # the next read goes to Postgres and is remembered from there
    first = await saver.aget_tuple({"configurable": {"thread_id": thread_id}})
    assert first is not None
    # What Pregel does to the checkpoint it loaded, in place, during a step:
    first.checkpoint["channel_values"]["pii"]["name"] = "changed in place"
    first.checkpoint["channel_versions"]["pii"] = "999"
    again = await saver.aget_tuple({"configurable": {"thread_id": thread_id}})
    assert again is not None
    assert again.checkpoint["channel_values"]["pii"] == {"name": "Ada"}
    assert again.checkpoint["channel_versions"]["pii"] == "000000000001.abcdef"


async def test_overlapping_flushes_keep_track_of_the_one_in_flight(db: Database) -> None:
    buffer = WriteBuffer(db.pool, delay_s=60)  # flushes are started by hand below
    thread_id = str(uuid.uuid4())
    key = (thread_id, "")
    row_b = (thread_id, "", "cp-1", "task-b", "", 0, "messages", "json", b"{}")
    async with db.connection() as blocker, blocker.transaction():
        # An uncommitted row with task-b's key makes the second flush wait until this block ends.
        await blocker.execute(
            "INSERT INTO checkpoint_writes (thread_id, checkpoint_ns, checkpoint_id, task_id, task_path, idx,"
            " channel, type, blob) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
            row_b,
        )
        buffer.add(key, [(thread_id, "", "cp-1", "task-a", "", 0, "messages", "json", b"{}")], upsert=False)
        buffer._on_timer(key)
        first = buffer._inflight[key]
        await asyncio.sleep(0)  # it takes task-a's row and sends it
        buffer.add(key, [row_b], upsert=False)
        buffer._on_timer(key)
        second = buffer._inflight[key]
        await first
        await asyncio.sleep(0)
        # The first flush ending must not forget the second, still waiting one.
        assert not second.done()
        assert buffer._inflight.get(key) is second
        await blocker.execute("ROLLBACK")
    await buffer.flush(key)
    assert await _stored_writes(db, thread_id) == ["task-a", "task-b"]


async def test_a_failed_background_flush_keeps_the_writes_and_retries(db: Database) -> None:
    buffer = WriteBuffer(db.pool, delay_s=0.0)
    thread_id = str(uuid.uuid4())
    key = (thread_id, "")
    # A write the database refuses once (its blob is not bytea), then a good one for the same key.
    bad = (thread_id, "", "cp-1", "task-a", "", 0, "messages", "json", object())
    buffer.add(key, [bad], upsert=True)
    await asyncio.sleep(0.05)
    assert key in buffer._held, "a failed flush must keep its writes"
    buffer.add(key, [(thread_id, "", "cp-1", "task-a", "", 0, "messages", "json", b"{}")], upsert=True)
    await buffer.flush(key)
    assert await _stored_writes(db, thread_id) == ["task-a"]


# Writes that reach the saver before the checkpoint they are stored against: LangGraph runs a step without
# waiting for its checkpoint's put (the input checkpoint with durability "sync", every step with "async").


def _message_write(text: str) -> list[tuple[str, Any]]:
    return [("messages", [HumanMessage(text, id=text)]), ("branch:to:agent", None)]


async def _history(saver: ChorusCheckpointer, config: Any) -> list[str]:
    entry = (await saver.aget_delta_channel_history(config=config, channels=["messages"]))["messages"]
    seed = entry.get("seed")
    values = list(seed.value if isinstance(seed, _DeltaSnapshot) else seed or [])
    for _, _, value in entry["writes"]:
        values = _messages_delta_reducer(values, [value])
    return [m.content for m in values]


async def _assert_remembered_equals_stored(saver: ChorusCheckpointer, thread_id: str) -> None:
    await saver.aflush()  # the fresh saver below reads only what is in Postgres
    fresh = ChorusCheckpointer(saver._pool)
    newest: Any = {"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}
    remembered, stored = await saver.aget_tuple(newest), await fresh.aget_tuple(newest)
    assert remembered is not None and stored is not None
    assert remembered.config == stored.config
    assert remembered.checkpoint == stored.checkpoint
    assert remembered.pending_writes == stored.pending_writes
    assert await _history(saver, remembered.config) == await _history(fresh, stored.config)


async def _put(saver: ChorusCheckpointer, thread_id: str, parent: str | None, checkpoint_id: str) -> Any:
    checkpoint = empty_checkpoint()
    checkpoint["id"] = checkpoint_id
    return await saver.aput(_config(thread_id, parent or ""), checkpoint, {"source": "loop", "step": 0}, {})


async def test_writes_before_their_checkpoint_are_its_pending_writes_and_its_childs_history(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    saver = await _setup(db)
    thread_id = str(uuid.uuid4())
    first, second, third = str(uuid6()), str(uuid6()), str(uuid6())
    # Before the thread's first checkpoint too.
    await saver.aput_writes(_config(thread_id, first), _message_write("hi"), "task-0")
    await _put(saver, thread_id, None, first)
    await _assert_remembered_equals_stored(saver, thread_id)
    reads_from_postgres = _count_history_reads(monkeypatch, saver)
    assert await _history(saver, _config(thread_id, first)) == []  # a thread's first checkpoint
    # The step on `second` ran (and wrote) before `second` was stored.
    await saver.aput_writes(_config(thread_id, second), _message_write("hello"), "task-1")
    await _put(saver, thread_id, first, second)
    await _assert_remembered_equals_stored(saver, thread_id)  # its pending writes include "hello"
    await saver.aput_writes(_config(thread_id, second), _message_write("again"), "task-2")
    await _put(saver, thread_id, second, third)
    assert await _history(saver, _config(thread_id, third)) == ["hi", "hello", "again"]
    assert reads_from_postgres == [], "the history at the newest checkpoint was read back from Postgres"
    await _assert_remembered_equals_stored(saver, thread_id)


async def test_a_late_message_write_on_an_older_checkpoint_is_not_missed(db: Database) -> None:
    saver = await _setup(db)
    thread_id = str(uuid.uuid4())
    first, second = str(uuid6()), str(uuid6())
    await _put(saver, thread_id, None, first)
    await _history(saver, _config(thread_id, first))
    await saver.aput_writes(_config(thread_id, first), _message_write("hello"), "task-1")
    await _put(saver, thread_id, first, second)
    # A write on the parent after the child was stored (an update of an old checkpoint): Postgres now
    # rebuilds the child's history with it, and so must the saver.
    await saver.aput_writes(_config(thread_id, first), _message_write("late"), "task-2")
    await _assert_remembered_equals_stored(saver, thread_id)
    assert await _history(saver, _config(thread_id, second)) == ["hello", "late"]


def _count_history_reads(monkeypatch: pytest.MonkeyPatch, saver: ChorusCheckpointer) -> list[str]:
    """The checkpoint ids whose message history `saver` rebuilds from Postgres from now on."""
    reads: list[str] = []
    original = AsyncPostgresSaver.aget_delta_channel_history

    async def counted(self: Any, *, config: Any, channels: Any) -> Any:
        if self is saver:
            reads.append(config["configurable"]["checkpoint_id"])
        return await original(self, config=config, channels=channels)

    monkeypatch.setattr(AsyncPostgresSaver, "aget_delta_channel_history", counted)
    return reads


async def _stored_checkpoints(db: Database, thread_id: str) -> list[str]:
    async with db.connection() as conn:
        cur = await conn.execute(
            "SELECT checkpoint_id FROM checkpoints WHERE thread_id = %s ORDER BY checkpoint_id", (thread_id,)
        )
        return [r["checkpoint_id"] for r in await cur.fetchall()]


async def test_an_input_checkpoint_is_stored_with_the_next_one_or_on_its_own(db: Database) -> None:
    saver = await _setup(db)
    thread_id = str(uuid.uuid4())
    ids = [str(uuid6()) for _ in range(5)]

    async def put(i: int, source: str) -> None:
        checkpoint = empty_checkpoint()
        checkpoint["id"] = ids[i]
        parent = ids[i - 1] if i else ""
        await saver.aput(_config(thread_id, parent), checkpoint, {"source": source, "step": i - 1}, {})

    await put(0, "input")
    await put(1, "loop")
    # The step's checkpoint went to Postgres with the input checkpoint before it, in its statement.
    assert await _stored_checkpoints(db, thread_id) == ids[:2]
    await put(2, "input")
    # A read through the saver stores what it holds first.
    listed = [t.config["configurable"]["checkpoint_id"] async for t in saver.alist(_config(thread_id, ""))]
    assert listed == ids[2::-1]
    # No checkpoint follows (say the run failed in `__start__`): it is stored on its own shortly after.
    await put(3, "input")
    for _ in range(50):
        if len(await _stored_checkpoints(db, thread_id)) == 4:
            break
        await asyncio.sleep(0.02)
    assert await _stored_checkpoints(db, thread_id) == ids[:4]
    # A rolled-back run: what it holds never reaches Postgres.
    await put(4, "input")
    await saver.aforget(thread_id)
    await asyncio.sleep(0.1)
    assert await _stored_checkpoints(db, thread_id) == ids[:4]
