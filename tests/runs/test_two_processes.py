"""Two real `chorus serve` processes on one database: a run started on one is joined and cancelled from
the other, and a run whose process is killed (kill -9) is resumed by the other."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langgraph_sdk import get_client

from chorus.agents.storage.database import Database
from tests.conftest import make_tenant, slow_bot, start_server_process

ORDER = {"messages": [{"role": "user", "content": "Where is my order ORD-1001?"}]}
HELLO = {"messages": [{"role": "user", "content": "hello"}]}


@pytest.fixture
def two_servers(database_url: str, tmp_path: Path) -> Iterator[tuple[str, str, subprocess.Popen[bytes]]]:
    first = start_server_process(database_url, tmp_path / "a")
    second = start_server_process(database_url, tmp_path / "b")
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
