"""Two real `chorus serve` processes on one database: a run started on one is joined and cancelled from
the other, and a run whose process is killed (kill -9) is resumed by the other, without calling a
side-effecting tool a second time."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from langgraph_sdk import get_client

from chorus.agents.storage.database import Database
from tests.conftest import PICKUP, example, make_tenant, slow_bot, start_server_process, with_pickup_tool
from tests.fakes import inventory_api, serve
from tests.sse_events import identified_events

ORDER = {"messages": [{"role": "user", "content": "Where is my order ORD-1001?"}]}
HELLO = {"messages": [{"role": "user", "content": "hello"}]}


@pytest.fixture
def two_servers(database_url: str, tmp_path: Path) -> Iterator[tuple[str, str, subprocess.Popen[bytes]]]:
    env = {"CHORUS_HTTP_TOOLS_ALLOW_PRIVATE": "1"}  # the stand-in tool backends listen on loopback
    first = start_server_process(database_url, tmp_path / "a", env=env)
    second = start_server_process(database_url, tmp_path / "b", env=env)
    try:
        yield first.url, second.url, first.process
    finally:
        for server in (first, second):
            if server.process.poll() is None:
                server.process.send_signal(signal.SIGTERM)
                server.process.wait(timeout=30)


async def _running(client: Any, thread_id: str, run_id: str) -> None:
    for _ in range(200):
        if (await client.runs.get(thread_id, run_id))["status"] == "running":
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the run did not start")


async def test_join_and_cancel_from_the_other_process(
    db: Database, acme_config: dict[str, Any], two_servers: tuple[str, str, Any]
) -> None:
    url_a, url_b, _ = two_servers
    tenant = await make_tenant(db)
    a, b = get_client(url=url_a, api_key=tenant.key), get_client(url=url_b, api_key=tenant.key)
    assistant = await a.assistants.create(graph_id="chatbot", context=slow_bot(acme_config, delay_ms=40))

    # Joined from B while it runs on A: B's client sees its tokens and its end.
    thread = await a.threads.create()
    run = await a.runs.create(thread["thread_id"], assistant["assistant_id"], input=HELLO, stream_mode="messages-tuple")
    await _running(a, thread["thread_id"], run["run_id"])
    events = [part.event async for part in b.runs.join_stream(thread["thread_id"], run["run_id"])]
    assert "messages" in events
    final: Any = await b.runs.join(thread["thread_id"], run["run_id"])
    assert final["messages"][-1]["type"] == "ai"
    assert (await b.runs.get(thread["thread_id"], run["run_id"]))["status"] == "success"

    # Cancelled from B while it runs on A: it stops at once and the thread takes the next turn.
    run = await a.runs.create(thread["thread_id"], assistant["assistant_id"], input=HELLO)
    await _running(a, thread["thread_id"], run["run_id"])
    started = time.monotonic()
    await b.runs.cancel(thread["thread_id"], run["run_id"], wait=True)
    assert time.monotonic() - started < 5
    assert (await a.runs.get(thread["thread_id"], run["run_id"]))["status"] == "interrupted"
    after: Any = await b.runs.wait(thread["thread_id"], assistant["assistant_id"], input=HELLO)
    assert after["messages"][-1]["type"] == "ai"


async def test_a_killed_process_run_is_resumed_by_the_other(
    db: Database, acme_config: dict[str, Any], two_servers: tuple[str, str, subprocess.Popen[bytes]]
) -> None:
    url_a, url_b, process_a = two_servers
    tenant = await make_tenant(db)
    a, b = get_client(url=url_a, api_key=tenant.key), get_client(url=url_b, api_key=tenant.key)
    assistant = await a.assistants.create(graph_id="chatbot", context=slow_bot(acme_config, delay_ms=60))
    thread = await a.threads.create()
    run = await a.runs.create(thread["thread_id"], assistant["assistant_id"], input=ORDER)
    await _running(a, thread["thread_id"], run["run_id"])
    await asyncio.sleep(0.5)  # mid-turn
    os.kill(process_a.pid, signal.SIGKILL)
    process_a.wait(timeout=10)
    killed = time.monotonic()

    final: Any = await b.runs.join(thread["thread_id"], run["run_id"])
    assert time.monotonic() - killed < 20
    assert (await b.runs.get(thread["thread_id"], run["run_id"]))["status"] == "success"
    humans = [m["content"] for m in final["messages"] if m["type"] == "human"]
    assert humans == ["Where is my order ORD-1001?"]  # accepted once, kept, not repeated
    assert final["messages"][-1]["type"] == "ai"
    # The thread takes a new turn at once.
    again: Any = await b.runs.wait(thread["thread_id"], assistant["assistant_id"], input=HELLO)
    assert [m["content"] for m in again["messages"] if m["type"] == "human"][-1] == "hello"


async def _until(check: Any, what: str, timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        await asyncio.sleep(0.02)


async def _ledger(db: Database, tenant_id: str) -> list[dict[str, Any]]:
    async with db.connection() as conn:
        cur = await conn.execute("SELECT status, result FROM tool_calls WHERE tenant_id = %s", (tenant_id,))
        return await cur.fetchall()


async def test_a_side_effecting_call_cut_off_by_kill_9_is_not_repeated(
    db: Database, two_servers: tuple[str, str, subprocess.Popen[bytes]]
) -> None:
    """Killed while the backend holds its request: whether the pickup was scheduled is unknown, so the
    resumed run does not send it again; the model is told the outcome is unknown."""
    url_a, url_b, process_a = two_servers
    tenant = await make_tenant(db)
    a, b = get_client(url=url_a, api_key=tenant.key), get_client(url=url_b, api_key=tenant.key)
    backend = inventory_api()
    async with serve(backend) as base:
        assistant = await a.assistants.create(
            graph_id="chatbot", context=with_pickup_tool(example("acme_support_bot"), base)
        )
        thread = await a.threads.create()
        run = await a.runs.create(thread["thread_id"], assistant["assistant_id"], input=PICKUP)

        async def in_flight() -> bool:
            return bool(backend.state.seen)

        await _until(in_flight, "the backend has the request")
        os.kill(process_a.pid, signal.SIGKILL)
        process_a.wait(timeout=10)
        backend.state.release.set()  # the dead process's request completes at the backend

        final: Any = await b.runs.join(thread["thread_id"], run["run_id"])
    assert (await b.runs.get(thread["thread_id"], run["run_id"]))["status"] == "success"
    assert [s["path"] for s in backend.state.seen] == ["/pickups"]  # exactly one request
    [tool] = [m for m in final["messages"] if m["type"] == "tool"]
    assert tool["status"] == "error" and "unknown" in tool["content"] and "schedule_pickup" in tool["content"]
    assert final["messages"][-1]["type"] == "ai"
    assert [r["status"] for r in await _ledger(db, tenant.tenant_id)] == ["started"]


async def test_a_call_that_returned_before_kill_9_is_answered_from_the_ledger(
    db: Database, database_url: str, two_servers: tuple[str, str, subprocess.Popen[bytes]]
) -> None:
    """Killed after the tool returned but before its step's checkpoint was stored: the resumed run runs the
    tools step again and gets the recorded result, without a second request."""
    url_a, url_b, process_a = two_servers
    tenant = await make_tenant(db)
    a, b = get_client(url=url_a, api_key=tenant.key), get_client(url=url_b, api_key=tenant.key)
    backend = inventory_api()
    async with serve(backend) as base, await psycopg.AsyncConnection.connect(database_url) as blocker:
        assistant = await a.assistants.create(
            graph_id="chatbot", context=with_pickup_tool(example("acme_support_bot"), base)
        )
        thread = await a.threads.create()
        run = await a.runs.create(thread["thread_id"], assistant["assistant_id"], input=PICKUP)

        async def in_flight() -> bool:
            return bool(backend.state.seen)

        await _until(in_flight, "the backend has the request")
        # Hold the step's checkpoint back (a transaction locking the checkpoint tables) to kill the
        # process in the window between the tool's answer and the checkpoint of its step.
        await blocker.execute("LOCK TABLE checkpoints, checkpoint_writes IN SHARE MODE")
        backend.state.release.set()

        async def recorded() -> bool:
            return [r["status"] for r in await _ledger(db, tenant.tenant_id)] == ["succeeded"]

        await _until(recorded, "the ledger has the result")
        blocked_sql = "SELECT pid FROM pg_stat_activity WHERE pg_backend_pid() = ANY(pg_blocking_pids(pid))"

        async def checkpoint_waits() -> bool:
            return bool(await (await blocker.execute(blocked_sql)).fetchall())

        await _until(checkpoint_waits, "the step's checkpoint is being written")
        os.kill(process_a.pid, signal.SIGKILL)
        process_a.wait(timeout=10)
        # The dead process's statement waits in Postgres; end it there, uncommitted, like the process.
        await blocker.execute(f"SELECT pg_terminate_backend(pid) FROM ({blocked_sql}) AS waiting")
        await blocker.rollback()

        final: Any = await b.runs.join(thread["thread_id"], run["run_id"])
    assert (await b.runs.get(thread["thread_id"], run["run_id"]))["status"] == "success"
    assert [s["path"] for s in backend.state.seen] == ["/pickups"]  # exactly one request
    [row] = await _ledger(db, tenant.tenant_id)
    [tool] = [m for m in final["messages"] if m["type"] == "tool"]
    assert tool["status"] == "success" and tool["content"] == row["result"]["content"]
    assert "PU-1" in tool["content"]


async def _events(url: str, key: str, path: str, last_event_id: str | None) -> list[tuple[str, str]]:
    headers = {"x-api-key": key, **({"Last-Event-ID": last_event_id} if last_event_id is not None else {})}
    async with (
        httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as http,
        http.stream("GET", f"{path}/stream") as resp,
    ):
        assert resp.status_code == 200
        out = await identified_events(resp)
    return out


async def test_a_client_that_reconnects_to_the_other_process_gets_what_it_missed(
    db: Database, acme_config: dict[str, Any], two_servers: tuple[str, str, Any]
) -> None:
    """A browser's stream from A drops; its reconnect (Last-Event-ID) reaches B through the load balancer:
    B asks A for the events after that id, while the run goes on and after it has ended."""
    url_a, url_b, _ = two_servers
    tenant = await make_tenant(db)
    a = get_client(url=url_a, api_key=tenant.key)
    assistant = await a.assistants.create(graph_id="chatbot", context=slow_bot(acme_config, delay_ms=30))
    thread = await a.threads.create()
    body = {
        "assistant_id": assistant["assistant_id"],
        "input": ORDER,
        "stream_mode": ["messages-tuple", "custom"],
        "stream_resumable": True,
    }
    async with (
        httpx.AsyncClient(base_url=url_a, headers={"x-api-key": tenant.key}, timeout=60) as http,
        http.stream("POST", f"/threads/{thread['thread_id']}/runs/stream", json=body) as resp,
    ):
        run_path = resp.headers["content-location"]
        seen = await identified_events(resp, limit=4)
    rest = await _events(url_b, tenant.key, run_path, seen[-1][0])  # while the run goes on, on A
    everything = await _events(url_b, tenant.key, run_path, "-1")  # after it has ended, from B again
    assert seen + rest == everything, "no event lost or repeated across the two processes"
    assert any('"status":"done"' in data for _, data in everything)  # the tool's progress, the answer's tokens


async def test_a_deploy_in_one_process_is_served_and_announced_by_the_other(
    db: Database, acme_config: dict[str, Any], two_servers: tuple[str, str, Any]
) -> None:
    url_a, url_b, _ = two_servers
    tenant = await make_tenant(db)
    headers = {"x-api-key": tenant.key}
    async with (
        httpx.AsyncClient(base_url=url_a, headers=headers, timeout=30) as a,
        httpx.AsyncClient(base_url=url_b, headers=headers, timeout=30) as b,
    ):
        created = await a.post("/api/v1/configs", json=acme_config)
        assistant_id = created.json()["assistant_id"]
        config = f"/api/v1/configs/{created.json()['config_id']}"
        assert (await a.post(f"{config}/deploy", json={"environment": "production"})).status_code == 202
        events: list[dict[str, Any]] = []

        async def listen() -> None:
            async with b.stream("GET", "/api/v1/configs/events", params={"max_seconds": 20}) as resp:
                async for line in resp.aiter_lines():
                    if line.startswith("data: "):
                        events.append(json.loads(line[6:]))
                        return

        listener = asyncio.create_task(listen())
        await asyncio.sleep(0.5)  # B's stream is subscribed
        version = (await a.patch(config, json={"system_prompt": {"tone": "empathetic"}})).json()["version"]

        async def new_conversation_on_b() -> tuple[int, str]:
            thread_id = str(uuid.uuid4())
            answer: Any = (
                await b.post(
                    f"/threads/{thread_id}/runs/wait",
                    json={"assistant_id": assistant_id, "input": HELLO, "if_not_exists": "create"},
                )
            ).json()
            return (await b.get(f"/threads/{thread_id}")).json()["config_version"], answer["messages"][-1]["content"]

        # Production is deployed at version 1: the new version is not served yet, in either process.
        assert (await new_conversation_on_b())[0] == 1
        deployed = await a.post(f"{config}/deploy", json={"environment": "production", "version": version})
        assert deployed.status_code == 202, deployed.text
        # The next new conversation on B gets it: no cache to expire, no poll to wait for.
        served, answer = await new_conversation_on_b()
        assert served == version and answer.startswith("I understand.")
        await asyncio.wait_for(listener, 10)
    assert events[0]["event_type"] == "config_deployed"
    assert (events[0]["version"], events[0]["environment"]) == (version, "production")
    assert events[0]["deployment_id"] == deployed.json()["deployment_id"]
