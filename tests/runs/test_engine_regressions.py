"""Regressions of the run engine found by review: each failed on the engine before the queue.

- `on_disconnect="cancel"` never cancelled (the cancel sat in a `finally` that was itself cancelled);
- deleting or pruning a thread with an active run neither cancelled nor waited, and the running turn
  recreated checkpoints for the deleted thread;
- housekeeping could fail a live queued run in the gap between two queued turns;
- a cancel repeated by the lease renewal while the run recorded its stop left the run unended (CI hang).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest

from chorus.agents.queue import CancelAction, Worker
from chorus.agents.storage.database import Database
from chorus.runs.handles import RunHandle
from tests.conftest import RunningServer, slow_bot

QUESTION = {"messages": [{"role": "user", "content": "hello"}]}  # no tool: one human and one AI message a turn


async def _slow_assistant(http: httpx.AsyncClient, config: dict[str, Any], delay_ms: int = 40) -> str:
    created = await http.post("/assistants", json={"graph_id": "chatbot", "context": slow_bot(config, delay_ms)})
    return str(created.json()["assistant_id"])


async def _status(http: httpx.AsyncClient, thread_id: str, run_id: str) -> str:
    return str((await http.get(f"/threads/{thread_id}/runs/{run_id}")).json()["status"])


async def _wait_status(http: httpx.AsyncClient, thread_id: str, run_id: str, *, within: float = 20) -> str:
    deadline = time.monotonic() + within
    status = await _status(http, thread_id, run_id)
    while status in ("pending", "running") and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        status = await _status(http, thread_id, run_id)
    return status


async def test_a_stream_with_on_disconnect_cancel_cancels_its_run_when_the_client_leaves(
    http: httpx.AsyncClient, acme_config: dict[str, Any]
) -> None:
    assistant = await _slow_assistant(http, acme_config, delay_ms=60)
    thread = (await http.post("/threads", json={})).json()["thread_id"]
    body = {
        "assistant_id": assistant,
        "input": QUESTION,
        "stream_mode": ["messages-tuple"],
        "on_disconnect": "cancel",
    }
    run_id = None
    async with http.stream("POST", f"/threads/{thread}/runs/stream", json=body) as stream:
        async for line in stream.aiter_lines():
            if line.startswith("data: ") and run_id is None and '"run_id"' in line:
                run_id = line.split('"run_id"')[1].split('"')[1]
            if line.startswith("event: messages"):
                break  # the client leaves mid-answer
    assert run_id is not None
    assert await _wait_status(http, thread, run_id) == "interrupted"


async def test_a_stream_that_continues_on_disconnect_finishes(
    http: httpx.AsyncClient, acme_config: dict[str, Any]
) -> None:
    assistant = await _slow_assistant(http, acme_config, delay_ms=20)
    thread = (await http.post("/threads", json={})).json()["thread_id"]
    body = {"assistant_id": assistant, "input": QUESTION, "stream_mode": ["messages-tuple"]}
    run_id = None
    async with http.stream("POST", f"/threads/{thread}/runs/stream", json=body) as stream:
        async for line in stream.aiter_lines():
            if line.startswith("data: ") and run_id is None and '"run_id"' in line:
                run_id = line.split('"run_id"')[1].split('"')[1]
            if line.startswith("event: messages"):
                break
    assert run_id is not None
    assert await _wait_status(http, thread, run_id) == "success"


async def test_a_busy_thread_is_neither_deleted_nor_pruned_and_keeps_its_turn(
    http: httpx.AsyncClient, acme_config: dict[str, Any], db: Database
) -> None:
    assistant = await _slow_assistant(http, acme_config, delay_ms=40)
    thread = (await http.post("/threads", json={})).json()["thread_id"]
    run = (await http.post(f"/threads/{thread}/runs", json={"assistant_id": assistant, "input": QUESTION})).json()

    deleted = await http.delete(f"/threads/{thread}")
    assert deleted.status_code == 409, deleted.text
    assert deleted.json()["error"] == "thread_busy"
    assert "cancel it" in deleted.json()["detail"]
    pruned = (await http.post("/threads/prune", json={"thread_ids": [thread]})).json()
    assert pruned == {"pruned_count": 0, "busy_thread_ids": [thread]}

    assert await _wait_status(http, thread, run["run_id"]) == "success"
    messages = (await http.get(f"/threads/{thread}/state")).json()["values"]["messages"]
    assert [m["type"] for m in messages] == ["human", "ai"]

    # Once idle, it is deleted with everything it had, and nothing recreates its checkpoints.
    assert (await http.delete(f"/threads/{thread}")).status_code == 204
    await asyncio.sleep(0.3)
    async with db.connection() as conn:
        cur = await conn.execute("SELECT count(*) AS n FROM checkpoints WHERE thread_id = %s", (thread,))
        row = await cur.fetchone()
    assert row is not None and row["n"] == 0
    assert (await http.get(f"/threads/{thread}")).status_code == 404


async def test_queued_turns_survive_the_reaper_between_them(
    http: httpx.AsyncClient, acme_config: dict[str, Any], server: RunningServer
) -> None:
    worker: Worker = server.app.state.worker
    assistant = await _slow_assistant(http, acme_config, delay_ms=10)
    thread = (await http.post("/threads", json={})).json()["thread_id"]
    body = {"assistant_id": assistant, "input": QUESTION, "multitask_strategy": "enqueue"}
    runs = [(await http.post(f"/threads/{thread}/runs", json=body)).json()["run_id"] for _ in range(3)]

    stop = asyncio.Event()

    async def reap_all_the_time() -> int:
        sweeps = 0
        while not stop.is_set():
            requeued, given_up = await worker.queue.reap(worker.lease, ["run"])
            assert not requeued and not given_up, (requeued, given_up)  # live runs are never reaped
            sweeps += 1
            await asyncio.sleep(0.005)
        return sweeps

    reaper = asyncio.create_task(reap_all_the_time())
    try:
        statuses = [await _wait_status(http, thread, run_id, within=30) for run_id in runs]
    finally:
        stop.set()
        sweeps = await reaper
    assert statuses == ["success"] * 3
    assert sweeps > 10
    messages = (await http.get(f"/threads/{thread}/state")).json()["values"]["messages"]
    assert [m["type"] for m in messages] == ["human", "ai"] * 3


async def test_a_cancel_repeated_while_the_run_records_its_stop_still_ends_it(
    http: httpx.AsyncClient, acme_config: dict[str, Any], server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lease renewal repeats a pending cancel every few seconds. One arriving while the run recorded
    its stop cancelled that write: the run stayed 'running' and `cancel?wait=true` never answered (CI)."""
    engine = server.app.state.run_engine
    assistant = await _slow_assistant(http, acme_config, delay_ms=60)
    thread = (await http.post("/threads", json={})).json()["thread_id"]
    run_id = (await http.post(f"/threads/{thread}/runs", json={"assistant_id": assistant, "input": QUESTION})).json()[
        "run_id"
    ]
    assert await _status(http, thread, run_id) == "running"
    record_end = engine.runs.finish

    async def record_end_while_the_cancel_repeats(**kwargs: Any) -> bool:
        if kwargs["run_id"] == run_id:
            engine.worker.cancel_local(run_id, CancelAction.INTERRUPT)  # as the renewal does
            await asyncio.sleep(0.05)
        ended: bool = await record_end(**kwargs)
        return ended

    monkeypatch.setattr(engine.runs, "finish", record_end_while_the_cancel_repeats)
    resp = await asyncio.wait_for(http.post(f"/threads/{thread}/runs/{run_id}/cancel?wait=true"), 20)
    assert resp.status_code in (200, 202, 204), resp.text
    assert await _status(http, thread, run_id) == "interrupted"  # recorded, not left to the reaper


async def test_a_handle_left_without_an_owner_ends_with_its_run(
    http: httpx.AsyncClient, acme_config: dict[str, Any], server: RunningServer
) -> None:
    """The safety net under every path that should end a handle: an active handle whose run neither
    executes here nor is followed is followed through its row, so no joiner waits on it forever."""
    engine = server.app.state.run_engine
    thread = (await http.post("/threads", json={})).json()["thread_id"]
    done = await http.post(
        f"/threads/{thread}/runs/wait",
        json={"assistant_id": await _slow_assistant(http, acme_config, 1), "input": QUESTION},
    )
    assert done.status_code == 200, done.text
    run_id = (await http.get(f"/threads/{thread}/runs")).json()[0]["run_id"]
    engine.handles.drop(run_id)
    orphan = engine.handles.add(RunHandle(run_id, "tenant", thread, "assistant"))  # as if its executor had vanished
    await asyncio.wait_for(orphan.done.wait(), 20)
    assert orphan.status == "success"


async def test_a_cancel_that_arrives_while_a_run_records_its_success_does_not_cut_the_write(
    http: httpx.AsyncClient, acme_config: dict[str, Any], server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client leaving (`on_disconnect: cancel`) right after the last event cancelled the run's own
    write of its outcome: the waiting client got its answer, but the run stayed 'running' until reaped."""
    engine = server.app.state.run_engine
    assistant = await _slow_assistant(http, acme_config, delay_ms=1)
    thread = (await http.post("/threads", json={})).json()["thread_id"]
    record_end = engine.runs.finish

    async def record_end_while_a_cancel_arrives(**kwargs: Any) -> bool:
        engine.worker.cancel_local(kwargs["run_id"], CancelAction.INTERRUPT)  # as a cancel from a client does
        await asyncio.sleep(0.05)
        ended: bool = await record_end(**kwargs)
        return ended

    monkeypatch.setattr(engine.runs, "finish", record_end_while_a_cancel_arrives)
    answer = await http.post(f"/threads/{thread}/runs/wait", json={"assistant_id": assistant, "input": QUESTION})
    assert [m["type"] for m in answer.json()["messages"]] == ["human", "ai"], answer.text
    runs = (await http.get(f"/threads/{thread}/runs")).json()
    assert [r["status"] for r in runs] == ["success"]  # recorded at once, not left to the reaper
    assert (await http.get(f"/threads/{thread}")).json()["status"] == "idle"
