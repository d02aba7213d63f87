"""Delayed runs (`after_seconds`), batch creation and bulk cancel, through the official Python SDK."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
from langgraph_sdk.client import LangGraphClient

from tests.conftest import slow_bot

HELLO = {"messages": [{"role": "user", "content": "hello"}]}


async def _status(sdk: LangGraphClient, thread_id: str, run_id: str) -> str:
    return str((await sdk.runs.get(thread_id, run_id))["status"])


async def test_a_delayed_run_waits_then_runs(sdk: LangGraphClient, assistant_id: str) -> None:
    thread = (await sdk.threads.create())["thread_id"]
    started = time.monotonic()
    run = await sdk.runs.create(thread, assistant_id, input=HELLO, after_seconds=1)
    await asyncio.sleep(0.5)
    assert await _status(sdk, thread, run["run_id"]) == "pending"
    final: Any = await sdk.runs.join(thread, run["run_id"])
    assert final["messages"][-1]["type"] == "ai"
    assert time.monotonic() - started >= 1.0


async def test_a_batch_creates_runs_on_their_threads_and_new_ones(sdk: LangGraphClient, assistant_id: str) -> None:
    thread = (await sdk.threads.create())["thread_id"]
    runs = await sdk.runs.create_batch(
        [
            {"assistant_id": assistant_id, "input": HELLO, "thread_id": thread},  # type: ignore[typeddict-item]
            {"assistant_id": assistant_id, "input": HELLO},  # type: ignore[typeddict-item]
        ]
    )
    assert len(runs) == 2 and runs[0]["thread_id"] == thread and runs[1]["thread_id"] != thread
    for run in runs:
        final: Any = await sdk.runs.join(run["thread_id"], run["run_id"])
        assert final["messages"][-1]["type"] == "ai"


async def test_a_batch_with_a_bad_item_creates_nothing(http: httpx.AsyncClient, assistant_id: str) -> None:
    thread = (await http.post("/threads", json={})).json()["thread_id"]
    body = [
        {"assistant_id": assistant_id, "input": HELLO, "thread_id": thread},
        {"assistant_id": assistant_id, "input": HELLO, "thread_id": "00000000-0000-0000-0000-000000000000"},
    ]
    resp = await http.post("/runs/batch", json=body)
    assert resp.status_code == 404, resp.text
    assert (await http.get(f"/threads/{thread}/runs")).json() == []
    assert (await http.post("/runs/batch", json=[])).status_code == 422


async def test_cancel_many_by_ids_and_by_status(
    sdk: LangGraphClient, http: httpx.AsyncClient, acme_config: dict[str, Any]
) -> None:
    slow = (await sdk.assistants.create(graph_id="chatbot", context=slow_bot(acme_config, 40)))["assistant_id"]
    threads = [(await sdk.threads.create())["thread_id"] for _ in range(3)]
    runs = [await sdk.runs.create(t, slow, input=HELLO) for t in threads]
    await sdk.runs.cancel_many(thread_id=threads[0], run_ids=[runs[0]["run_id"]])
    assert (await sdk.runs.join(threads[0], runs[0]["run_id"])) is not None
    assert await _status(sdk, threads[0], runs[0]["run_id"]) == "interrupted"
    await sdk.runs.cancel_many(status="all")
    for t, r in zip(threads[1:], runs[1:], strict=True):
        await sdk.runs.join(t, r["run_id"])
        assert await _status(sdk, t, r["run_id"]) == "interrupted"
    assert (await http.post("/runs/cancel", json={})).status_code == 422
