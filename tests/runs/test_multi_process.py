"""Two server processes on one database (here: two apps, each with its own run manager, lease owner and
caches): a thread's turns never overlap, and a turn written by one is seen by the other."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from langgraph_sdk import get_client

from chorus.agents.settings import Settings
from chorus.agents.storage.database import Database
from chorus.server import create_app
from tests.conftest import RunningServer, Tenant, slow_bot
from tests.fakes import serve

HELLO = {"messages": [{"role": "user", "content": "hello"}]}
THANKS = {"messages": [{"role": "user", "content": "thanks"}]}


async def test_a_thread_is_run_by_one_process_at_a_time(
    server: RunningServer, settings: Settings, db: Database, tenant: Tenant, acme_config: dict[str, Any]
) -> None:
    first = get_client(url=server.url, api_key=tenant.key)
    assistant = await first.assistants.create(graph_id="chatbot", context=slow_bot(acme_config, delay_ms=40))
    thread = await first.threads.create()
    async with serve(create_app(settings, database=db)) as other_url:
        second = get_client(url=other_url, api_key=tenant.key)
        run = await first.runs.create(thread["thread_id"], assistant["assistant_id"], input=HELLO)
        for _ in range(100):
            if (await first.runs.get(thread["thread_id"], run["run_id"]))["status"] == "running":
                break
            await asyncio.sleep(0.02)

        async with httpx.AsyncClient(base_url=other_url, headers={"x-api-key": tenant.key}) as http:
            rejected = await http.post(
                f"/threads/{thread['thread_id']}/runs",
                json={"assistant_id": assistant["assistant_id"], "input": THANKS, "multitask_strategy": "reject"},
            )
        assert rejected.status_code == 409
        assert f"is busy with run '{run['run_id']}'" in rejected.json()["detail"]

        queued = await second.runs.create(
            thread["thread_id"], assistant["assistant_id"], input=THANKS, multitask_strategy="enqueue"
        )
        final: Any = await second.runs.join(thread["thread_id"], queued["run_id"])
    assert (await first.runs.get(thread["thread_id"], run["run_id"]))["status"] == "success"
    assert [m["content"] for m in final["messages"] if m["type"] == "human"] == ["hello", "thanks"]
    assert [m["type"] for m in final["messages"]] == ["human", "ai", "human", "ai"]
    # And back on the first process, the turn the second one ran is there.
    again: Any = await first.runs.wait(thread["thread_id"], assistant["assistant_id"], input=HELLO)
    assert [m["content"] for m in again["messages"] if m["type"] == "human"] == ["hello", "thanks", "hello"]


async def test_a_dead_process_run_is_resumed_by_a_live_one(
    http: httpx.AsyncClient, db: Database, assistant_id: str, server: RunningServer
) -> None:
    """A run held by a process that stopped renewing its lease is queued again and finished by a live one."""
    thread_id = (await http.post("/threads", json={})).json()["thread_id"]
    done = await http.post(f"/threads/{thread_id}/runs/wait", json={"assistant_id": assistant_id, "input": HELLO})
    assert done.status_code == 200
    queued = await http.post(
        f"/threads/{thread_id}/runs",
        json={"assistant_id": assistant_id, "input": THANKS, "multitask_strategy": "enqueue"},
    )
    run_id = queued.json()["run_id"]
    await http.get(f"/threads/{thread_id}/runs/{run_id}/join")
    async with db.connection() as conn:  # as a process that died right after taking the run would leave it
        await conn.execute("UPDATE runs SET status = 'running' WHERE run_id = %s", (run_id,))
        await conn.execute(
            "INSERT INTO queue_jobs (job_id, tenant_id, kind, lane, status, worker, lease_until, attempts)"
            " SELECT run_id, tenant_id, 'run', thread_id::text, 'running', 'dead-process',"
            " now() - interval '1 second', 1"
            " FROM runs WHERE run_id = %s",
            (run_id,),
        )
    for _ in range(100):  # the reaper runs every ~2 s in every process
        if (await http.get(f"/threads/{thread_id}/runs/{run_id}")).json()["status"] == "success":
            break
        await asyncio.sleep(0.1)
    assert (await http.get(f"/threads/{thread_id}/runs/{run_id}")).json()["status"] == "success"
    state = (await http.get(f"/threads/{thread_id}/state")).json()
    # The run had already checkpointed its whole turn: resuming it adds nothing twice.
    assert [m["content"] for m in state["values"]["messages"] if m["type"] == "human"] == ["hello", "thanks"]
    again = await http.post(f"/threads/{thread_id}/runs/wait", json={"assistant_id": assistant_id, "input": HELLO})
    assert again.status_code == 200 and again.json()["messages"][-1]["type"] == "ai"
