"""The checkpointer's held writes and remembered checkpoints: defects found by reading the code."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from langgraph.checkpoint.base import empty_checkpoint

from chorus.agents.storage.database import Database
from chorus.graphs.checkpointer import ChorusCheckpointer
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
    assert key in buffer._upsert, "a failed flush must keep its writes"
    buffer.add(key, [(thread_id, "", "cp-1", "task-a", "", 0, "messages", "json", b"{}")], upsert=True)
    await buffer.flush(key)
    assert await _stored_writes(db, thread_id) == ["task-a"]
