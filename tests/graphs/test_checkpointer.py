"""The checkpointer: no global lock, storage linear in turns, remembered state equal to what Postgres holds."""

from __future__ import annotations

import asyncio
import uuid
from functools import partial
from typing import Annotated, Any, TypedDict

import pytest
from langchain_core.messages import AIMessage, AnyMessage, HumanMessage
from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph

from chorus.agents.configs.models import BotConfig
from chorus.agents.storage.database import Database
from chorus.agents.tools.builtins import build_registry
from chorus.graphs.checkpointer import ChorusCheckpointer
from chorus.graphs.compiler import GraphDeps, compile_bot
from chorus.graphs.upstream import START_TASK_PATH, AsyncPostgresSaver, DeltaChannel, _messages_delta_reducer
from tests.conftest import Tenant, example


async def test_operations_do_not_wait_for_each_other(db: Database) -> None:
    saver = ChorusCheckpointer(db.pool)
    await saver.setup()
    held = asyncio.Event()
    release = asyncio.Event()

    async def hold_a_cursor() -> None:
        async with saver._cursor():
            held.set()
            await release.wait()

    holder = asyncio.create_task(hold_a_cursor())
    await held.wait()
    # The stock saver would block here until the first cursor is released (one lock for everything).
    got = await asyncio.wait_for(saver.aget_tuple({"configurable": {"thread_id": str(uuid.uuid4())}}), timeout=5)
    assert got is None
    release.set()
    await holder


async def _checkpoint_bytes(db: Database, thread_id: str) -> int:
    async with db.connection() as conn:
        cur = await conn.execute(
            "SELECT (SELECT coalesce(sum(pg_column_size(c.*)), 0) FROM checkpoints c WHERE thread_id = %s)"
            " + (SELECT coalesce(sum(pg_column_size(b.*)), 0) FROM checkpoint_blobs b WHERE thread_id = %s)"
            " + (SELECT coalesce(sum(pg_column_size(w.*)), 0) FROM checkpoint_writes w WHERE thread_id = %s) AS n",
            (thread_id, thread_id, thread_id),
        )
        row = await cur.fetchone()
    assert row is not None
    return int(row["n"])


async def test_storage_grows_linearly_with_turns(db: Database, tenant: Tenant) -> None:
    saver = ChorusCheckpointer(db.pool)
    await saver.setup()
    graph = compile_bot(
        BotConfig.model_validate(example("acme_support_bot")),
        GraphDeps(db=db, registry=build_registry(), checkpointer=saver, offline=True),
    )
    thread_id = str(uuid.uuid4())
    config = {"configurable": {"thread_id": thread_id, "tenant_id": tenant.tenant_id}}
    sizes = []
    for turn in range(1, 61):
        await graph.ainvoke({"messages": [HumanMessage("thanks for the help", id=str(uuid.uuid4()))]}, config)
        if turn in (30, 60):
            sizes.append(await _checkpoint_bytes(db, thread_id))
    # Quadratic growth would roughly quadruple from 30 to 60 turns; linear doubles.
    assert sizes[1] / sizes[0] < 2.6, sizes
    state = await graph.aget_state(config)
    assert len(state.values["messages"]) == 120


SCRIPT = ["hello, I'm Jane Doe", "Where is my order ORD-1001?", "thanks", "refund $5 on ORD-1003, it was late"]


@pytest.mark.parametrize("durability", ["exit", "async", "sync"])
async def test_remembered_state_matches_the_database(db: Database, tenant: Tenant, durability: str) -> None:
    saver = ChorusCheckpointer(db.pool)
    await saver.setup()
    graph = _compile(db, saver)
    config: Any = {"configurable": {"thread_id": str(uuid.uuid4()), "tenant_id": tenant.tenant_id}}
    for i in range(12):
        await graph.ainvoke(
            {"messages": [HumanMessage(SCRIPT[i % 4], id=str(uuid.uuid4()))]}, config, durability=durability
        )
    remembered = await graph.aget_state(config)
    stored = await _compile(db, ChorusCheckpointer(db.pool)).aget_state(config)  # a new saver reads Postgres
    assert [m.model_dump() for m in remembered.values["messages"]] == [
        m.model_dump() for m in stored.values["messages"]
    ]
    assert {k: v for k, v in remembered.values.items() if k != "messages"} == {
        k: v for k, v in stored.values.items() if k != "messages"
    }
    assert remembered.config["configurable"]["checkpoint_id"] == stored.config["configurable"]["checkpoint_id"]
    assert len(stored.values["messages"]) >= 36


def _compile(db: Database, saver: ChorusCheckpointer) -> Any:
    return compile_bot(
        BotConfig.model_validate(example("acme_support_bot")),
        GraphDeps(db=db, registry=build_registry(), checkpointer=saver, offline=True),
    )


async def _writes_stored(db: Database, thread_id: str) -> int:
    async with db.connection() as conn:
        cur = await conn.execute("SELECT count(*) AS n FROM checkpoint_writes WHERE thread_id = %s", (thread_id,))
        row = await cur.fetchone()
    assert row is not None
    return int(row["n"])


async def test_held_writes_reach_postgres(db: Database) -> None:
    saver = ChorusCheckpointer(db.pool)
    thread_id = str(uuid.uuid4())
    config: Any = {"configurable": {"thread_id": thread_id, "checkpoint_ns": "", "checkpoint_id": str(uuid.uuid4())}}
    # With no checkpoint after them, held writes are stored on their own shortly after...
    await saver.aput_writes(config, [("messages", [HumanMessage("hi", id="m1")])], "task-1")
    for _ in range(50):
        if await _writes_stored(db, thread_id):
            break
        await asyncio.sleep(0.02)
    assert await _writes_stored(db, thread_id) == 1
    # ...and at once before a read of the thread that goes to Postgres.
    await saver.aput_writes(config, [("messages", [HumanMessage("again", id="m2")])], "task-2")
    assert [t async for t in saver.alist(config)] == []  # no checkpoint, but the read flushed the writes
    assert await _writes_stored(db, thread_id) == 2
    # A forgotten thread's held writes are dropped (a rolled-back run must not come back).
    await saver.aput_writes(config, [("messages", [HumanMessage("gone", id="m3")])], "task-3")
    saver.forget(thread_id)
    await asyncio.sleep(0.1)
    assert await _writes_stored(db, thread_id) == 2


async def test_a_turn_written_by_another_process_is_seen(db: Database, tenant: Tenant) -> None:
    here, elsewhere = _compile(db, ChorusCheckpointer(db.pool)), _compile(db, ChorusCheckpointer(db.pool))
    config: Any = {"configurable": {"thread_id": str(uuid.uuid4()), "tenant_id": tenant.tenant_id}}
    await here.ainvoke({"messages": [HumanMessage("hello", id=str(uuid.uuid4()))]}, config)
    await elsewhere.ainvoke({"messages": [HumanMessage("thanks", id=str(uuid.uuid4()))]}, config)
    await here.ainvoke({"messages": [HumanMessage("bye", id=str(uuid.uuid4()))]}, config)
    state = await here.aget_state(config)
    assert [m.content for m in state.values["messages"] if m.type == "human"] == ["hello", "thanks", "bye"]


@pytest.mark.parametrize("durability", ["exit", "async", "sync"])
async def test_a_turn_starts_from_the_remembered_history(
    db: Database, tenant: Tenant, durability: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    saver = ChorusCheckpointer(db.pool)
    await saver.setup()
    graph = _compile(db, saver)
    thread_id = str(uuid.uuid4())
    config: Any = {"configurable": {"thread_id": thread_id, "tenant_id": tenant.tenant_id}}
    reads: list[str] = []
    original = AsyncPostgresSaver.aget_delta_channel_history

    async def counted(self: Any, *, config: Any, channels: Any) -> Any:
        if self is saver:
            reads.append(config["configurable"]["checkpoint_id"])
        return await original(self, config=config, channels=channels)

    monkeypatch.setattr(AsyncPostgresSaver, "aget_delta_channel_history", counted)
    turns = 30
    for i in range(turns):
        await graph.ainvoke(
            {"messages": [HumanMessage(SCRIPT[i % 4], id=str(uuid.uuid4()))]}, config, durability=durability
        )
    # Every turn starts from the history the saver remembers (on a new thread: empty, then moved forward).
    assert reads == [], f"{len(reads)} of {turns} turns read the message history back from Postgres"
    remembered = await graph.aget_state(config)
    await saver.aflush()
    stored = await _compile(db, ChorusCheckpointer(db.pool)).aget_state(config)
    assert [m.model_dump() for m in remembered.values["messages"]] == [
        m.model_dump() for m in stored.values["messages"]
    ]
    assert remembered.values == stored.values
    assert remembered.next == stored.next == ()
    assert len(stored.values["messages"]) >= 2 * turns


class _StepState(TypedDict):
    # A snapshot every few updates, so that checkpoints with the whole history come up too.
    messages: Annotated[list[AnyMessage], DeltaChannel(_messages_delta_reducer, snapshot_frequency=3)]


async def test_with_durability_sync_a_step_starts_from_what_postgres_holds(db: Database) -> None:
    """The durability contract: each step's checkpoint and writes, and the turn's input checkpoint, are in
    Postgres before the next step starts, so a crash resumes from exactly the state that step saw."""
    steps = {"a": 2, "b": 3, "c": 4}  # counted from the turn's input checkpoint (1: after `__start__`)
    seen: list[tuple[int, list[tuple[int, str]], bool]] = []  # (step, checkpoints stored, state as stored)

    def build(saver: ChorusCheckpointer) -> Any:
        graph = StateGraph(_StepState)
        for name, following in (("a", "b"), ("b", "c"), ("c", END)):
            graph.add_node(name, partial(step, name))
            graph.add_edge(name, following)
        graph.add_edge(START, "a")
        return graph.compile(checkpointer=saver)

    async def step(name: str, state: _StepState, config: RunnableConfig) -> dict[str, Any]:
        thread_id = config["configurable"]["thread_id"]
        turn_start = config["metadata"]["langgraph_step"] - steps[name]
        async with db.connection() as conn:  # not through any saver
            cur = await conn.execute(
                "SELECT (metadata->>'step')::int AS step, metadata->>'source' AS source FROM checkpoints"
                " WHERE thread_id = %s AND (metadata->>'step')::int >= %s ORDER BY checkpoint_id",
                (thread_id, turn_start),
            )
            stored_steps = [(r["step"] - turn_start, r["source"]) for r in await cur.fetchall()]
        stored = await build(ChorusCheckpointer(db.pool)).aget_state({"configurable": {"thread_id": thread_id}})
        same = [m.content for m in stored.values.get("messages", [])] == [m.content for m in state["messages"]]
        seen.append((steps[name], stored_steps, same))
        return {"messages": [AIMessage(f"{name} {len(state['messages'])}", id=str(uuid.uuid4()))]}

    saver = ChorusCheckpointer(db.pool)
    await saver.setup()
    graph = build(saver)
    config: Any = {"configurable": {"thread_id": str(uuid.uuid4())}}
    for text in ("one", "two", "three"):
        await graph.ainvoke({"messages": [HumanMessage(text, id=str(uuid.uuid4()))]}, config, durability="sync")
    before = {k: [(0, "input")] + [(i, "loop") for i in range(1, k)] for k in steps.values()}
    assert seen == [(k, before[k], True) for _ in range(3) for k in steps.values()]
    remembered = await graph.aget_state(config)
    stored = await build(ChorusCheckpointer(db.pool)).aget_state(config)
    assert remembered.values == stored.values and len(stored.values["messages"]) == 12


async def test_the_start_step_is_recognised_by_its_writes(db: Database, tenant: Tenant) -> None:
    """The checkpoint after `__start__` skips its own WAL flush only if its step's writes carry the task path
    Chorus expects; a LangGraph that names it otherwise would silently lose that saving."""
    saver = ChorusCheckpointer(db.pool)
    await saver.setup()
    thread_id = str(uuid.uuid4())
    config: Any = {"configurable": {"thread_id": thread_id, "tenant_id": tenant.tenant_id}}
    for text in ("hello", "thanks"):
        await _compile(db, saver).ainvoke({"messages": [HumanMessage(text, id=str(uuid.uuid4()))]}, config)
    async with db.connection() as conn:
        cur = await conn.execute(
            "SELECT DISTINCT w.task_path FROM checkpoint_writes w JOIN checkpoints c USING (thread_id, checkpoint_id)"
            " WHERE w.thread_id = %s AND c.metadata->>'source' = 'input'",
            (thread_id,),
        )
        paths = [r["task_path"] for r in await cur.fetchall()]
    assert paths == [START_TASK_PATH]
