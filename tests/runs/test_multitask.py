"""Multitask strategies for a message that arrives while the thread's run is active."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from langgraph_sdk.client import LangGraphClient

from tests.conftest import slow_bot

HELLO = {"messages": [{"role": "user", "content": "hello"}]}
THANKS = {"messages": [{"role": "user", "content": "thanks"}]}


@pytest.fixture
async def slow_assistant(sdk: LangGraphClient, acme_config: dict[str, Any]) -> str:
    created = await sdk.assistants.create(graph_id="chatbot", context=slow_bot(acme_config, delay_ms=40))
    return str(created["assistant_id"])


async def _busy_thread(sdk: LangGraphClient, assistant: str) -> tuple[str, str]:
    thread = await sdk.threads.create()
    first = await sdk.runs.create(thread["thread_id"], assistant, input=HELLO)
    for _ in range(100):
        if (await sdk.runs.get(thread["thread_id"], first["run_id"]))["status"] == "running":
            break
        await asyncio.sleep(0.02)
    return thread["thread_id"], first["run_id"]


async def test_reject(sdk: LangGraphClient, slow_assistant: str, http: httpx.AsyncClient) -> None:
    thread_id, first = await _busy_thread(sdk, slow_assistant)
    resp = await http.post(
        f"/threads/{thread_id}/runs",
        json={"assistant_id": slow_assistant, "input": THANKS, "multitask_strategy": "reject"},
    )
    assert resp.status_code == 409
    assert "busy" in resp.json()["detail"]
    final: Any = await sdk.runs.join(thread_id, first)
    assert [m["type"] for m in final["messages"]] == ["human", "ai"]  # nothing lost, nothing added


async def test_interrupt(sdk: LangGraphClient, slow_assistant: str) -> None:
    thread_id, first = await _busy_thread(sdk, slow_assistant)
    second = await sdk.runs.create(thread_id, slow_assistant, input=THANKS, multitask_strategy="interrupt")
    final: Any = await sdk.runs.join(thread_id, second["run_id"])
    assert (await sdk.runs.get(thread_id, first))["status"] == "interrupted"
    assert (await sdk.runs.get(thread_id, second["run_id"]))["status"] == "success"
    contents = [m["content"] for m in final["messages"] if m["type"] == "human"]
    assert contents == ["hello", "thanks"]  # the interrupted run's input is kept


async def test_rollback(sdk: LangGraphClient, slow_assistant: str, http: httpx.AsyncClient) -> None:
    thread_id, first = await _busy_thread(sdk, slow_assistant)
    second = await sdk.runs.create(thread_id, slow_assistant, input=THANKS, multitask_strategy="rollback")
    final: Any = await sdk.runs.join(thread_id, second["run_id"])
    assert (await http.get(f"/threads/{thread_id}/runs/{first}")).status_code == 404
    assert [m["content"] for m in final["messages"] if m["type"] == "human"] == ["thanks"]


async def test_enqueue(sdk: LangGraphClient, slow_assistant: str) -> None:
    thread_id, first = await _busy_thread(sdk, slow_assistant)
    second = await sdk.runs.create(thread_id, slow_assistant, input=THANKS, multitask_strategy="enqueue")
    final: Any = await sdk.runs.join(thread_id, second["run_id"])
    assert (await sdk.runs.get(thread_id, first))["status"] == "success"
    assert [m["type"] for m in final["messages"]] == ["human", "ai", "human", "ai"]


async def test_cancel_then_next_turn_works(sdk: LangGraphClient, slow_assistant: str) -> None:
    thread_id, first = await _busy_thread(sdk, slow_assistant)
    await sdk.runs.cancel(thread_id, first, wait=True)
    assert (await sdk.runs.get(thread_id, first))["status"] == "interrupted"
    result: Any = await sdk.runs.wait(thread_id, slow_assistant, input=THANKS)
    assert result["messages"][-1]["type"] == "ai"


async def test_run_timeout(sdk: LangGraphClient, slow_assistant: str, http: httpx.AsyncClient, server: Any) -> None:
    engine = server.app.state.run_engine
    previous = engine.run_timeout_s
    engine.run_timeout_s = 0.2
    try:
        thread = await sdk.threads.create()
        resp = await http.post(
            f"/threads/{thread['thread_id']}/runs/wait", json={"assistant_id": slow_assistant, "input": HELLO}
        )
    finally:
        engine.run_timeout_s = previous
    assert resp.json().get("__error__", {}).get("error") == "timeout", resp.text
    runs = await sdk.runs.list(thread["thread_id"])
    assert runs[0]["status"] == "timeout"
    after: Any = await sdk.runs.wait(thread["thread_id"], slow_assistant, input=THANKS)
    assert after["messages"][-1]["type"] == "ai"
