"""The chat API through the official langgraph-sdk client: assistants, threads, runs, streaming."""

from __future__ import annotations

import itertools
import time
from typing import Any

import httpx
from langgraph_sdk.client import LangGraphClient

from chorus.agents.storage.database import Database
from tests.conftest import Tenant, slow_bot

ORDER_QUESTION = {"messages": [{"role": "user", "content": "Where is my order ORD-1001?"}]}


async def test_chat_turn_with_a_tool_call(
    sdk: LangGraphClient, assistant_id: str, db: Database, tenant: Tenant
) -> None:
    thread = await sdk.threads.create(metadata={"channel": "test"})
    result: Any = await sdk.runs.wait(thread["thread_id"], assistant_id, input=ORDER_QUESTION)
    types = [m["type"] for m in result["messages"]]
    assert types == ["human", "ai", "tool", "ai"]
    assert result["messages"][1]["tool_calls"][0]["name"] == "fetch_order_status"
    assert "shipped" in result["messages"][-1]["content"]

    state = await sdk.threads.get_state(thread["thread_id"])
    assert [m["type"] for m in state["values"]["messages"]] == types
    history = await sdk.threads.get_history(thread["thread_id"], limit=20)
    # Durability "sync" (the default): every step is checkpointed before the next one starts, so the
    # user's message and each tool result are in Postgres before the next model call.
    assert [h["metadata"]["step"] for h in history] == [4, 3, 2, 1, 0, -1]
    assert [len(h["values"].get("messages", [])) for h in history] == [4, 3, 2, 1, 1, 0]
    assert history[0]["checkpoint"]["checkpoint_id"] == state["checkpoint"]["checkpoint_id"]
    for newer, older in itertools.pairwise(history):
        assert newer["parent_checkpoint"]["checkpoint_id"] == older["checkpoint"]["checkpoint_id"]

    got = await sdk.threads.get(thread["thread_id"])
    assert got["status"] == "idle"
    assert got["values"]["messages"][-1]["content"] == result["messages"][-1]["content"]
    found = await sdk.threads.search(metadata={"channel": "test"})
    assert [t["thread_id"] for t in found] == [thread["thread_id"]]

    async with db.connection() as conn:
        cur = await conn.execute(
            "SELECT sum(input_tokens) AS i, sum(output_tokens) AS o FROM token_usage WHERE tenant_id = %s",
            (tenant.tenant_id,),
        )
        usage = await cur.fetchone()
    assert usage is not None and usage["i"] > 0 and usage["o"] > 0


async def test_tokens_arrive_incrementally_over_sse(sdk: LangGraphClient, acme_config: dict[str, Any]) -> None:
    assistant = await sdk.assistants.create(graph_id="chatbot", context=slow_bot(acme_config, delay_ms=25))
    thread = await sdk.threads.create()
    arrivals: list[float] = []
    events: list[str] = []
    async for part in sdk.runs.stream(
        thread["thread_id"],
        assistant["assistant_id"],
        input={"messages": [{"role": "user", "content": "hello"}]},
        stream_mode=["messages-tuple", "values", "updates"],
    ):
        events.append(part.event)
        if part.event == "messages":
            chunk, meta = part.data
            if chunk.get("content"):
                arrivals.append(time.perf_counter())
                assert meta["langgraph_node"] == "agent"
    assert events[0] == "metadata"
    assert {"values", "updates", "messages"} <= set(events)
    assert len(arrivals) >= 5
    # Delivered as produced, not buffered to the end: tokens spread over the model's own pacing.
    assert arrivals[-1] - arrivals[0] > 0.08


async def test_background_run_get_join_and_list(sdk: LangGraphClient, assistant_id: str) -> None:
    thread = await sdk.threads.create()
    run = await sdk.runs.create(thread["thread_id"], assistant_id, input=ORDER_QUESTION)
    assert run["status"] in ("pending", "running")
    final: Any = await sdk.runs.join(thread["thread_id"], run["run_id"])
    assert "shipped" in final["messages"][-1]["content"]
    got = await sdk.runs.get(thread["thread_id"], run["run_id"])
    assert got["status"] == "success"
    listed = await sdk.runs.list(thread["thread_id"])
    assert [r["run_id"] for r in listed] == [run["run_id"]]


async def test_escalation_shows_on_the_thread(sdk: LangGraphClient, assistant_id: str) -> None:
    thread = await sdk.threads.create()
    result: Any = await sdk.runs.wait(
        thread["thread_id"],
        assistant_id,
        input={"messages": [{"role": "user", "content": "I want to talk to a human"}]},
    )
    assert result["escalated"] is True
    got = await sdk.threads.get(thread["thread_id"])
    assert got["metadata"]["escalated"] is True
    escalated = await sdk.threads.search(metadata={"escalated": True})
    assert thread["thread_id"] in [t["thread_id"] for t in escalated]
    again: Any = await sdk.runs.wait(thread["thread_id"], assistant_id, input=ORDER_QUESTION)
    assert not any(m["type"] == "tool" for m in again["messages"])


async def test_versions_and_pinning(sdk: LangGraphClient, assistant_id: str, acme_config: dict[str, Any]) -> None:
    old_thread = await sdk.threads.create()
    await sdk.runs.wait(old_thread["thread_id"], assistant_id, input=ORDER_QUESTION)
    changed = dict(acme_config)
    changed["system_prompt"] = {**acme_config["system_prompt"], "tone": "empathetic_professional"}
    updated = await sdk.assistants.update(assistant_id, context=changed)
    assert updated["version"] == 2
    versions = await sdk.assistants.get_versions(assistant_id)
    assert [v["version"] for v in versions] == [2, 1]

    # The conversation in flight keeps version 1; a new one gets version 2.
    old = await sdk.runs.wait(
        old_thread["thread_id"], assistant_id, input={"messages": [{"role": "user", "content": "hello"}]}
    )
    assert old["messages"][-1]["content"].startswith("Thanks!")  # type: ignore[index]
    assert (await sdk.threads.get(old_thread["thread_id"]))["config_version"] == 1  # type: ignore[typeddict-item]
    new_thread = await sdk.threads.create()
    new = await sdk.runs.wait(
        new_thread["thread_id"], assistant_id, input={"messages": [{"role": "user", "content": "hello"}]}
    )
    assert new["messages"][-1]["content"].startswith("I understand.")  # type: ignore[index]

    # Choosing version 1 again is a new version with its content (a rollback), so the history shows it.
    rolled_back = await sdk.assistants.set_latest(assistant_id, 1)
    assert rolled_back["version"] == 3
    first = (await sdk.assistants.get_versions(assistant_id))[-1]
    assert rolled_back["context"]["system_prompt"] == first["context"]["system_prompt"]  # type: ignore[index]


async def test_seed_config_upload_api(http: httpx.AsyncClient, acme_config: dict[str, Any]) -> None:
    created = await http.post("/api/v1/configs", json=acme_config)
    assert created.status_code == 201
    body = created.json()
    assert body["validation_status"] == "passed"
    assert body["parsed_config"]["config_metadata"]["config_id"] == body["config_id"]
    assert any("check_product_availability" in w["message"] for w in body["warnings"])
    got = await http.get(f"/api/v1/configs/{body['config_id']}")
    assert got.json()["version"] == 1
    bad = dict(acme_config, llm_config={"provider": "openai"})
    rejected = await http.post("/api/v1/configs", json=bad)
    assert rejected.status_code == 422
    assert rejected.json()["errors"][0]["path"] == "$.llm_config.model"  # the missing field itself
    assert body["config_id"] == acme_config["config_metadata"]["config_id"]  # the file's own id, kept
    assistant = await http.get(f"/assistants/{body['assistant_id']}")
    assert assistant.json()["graph_id"] == "chatbot"


async def test_stateless_runs_and_joining_a_stream(
    sdk: LangGraphClient, assistant_id: str, acme_config: dict[str, Any]
) -> None:
    result: Any = await sdk.runs.wait(None, assistant_id, input=ORDER_QUESTION)
    assert "shipped" in result["messages"][-1]["content"]
    parts = [p.event async for p in sdk.runs.stream(None, assistant_id, input=ORDER_QUESTION, stream_mode="updates")]
    assert parts[0] == "metadata" and "updates" in parts

    slow = await sdk.assistants.create(graph_id="chatbot", context=slow_bot(acme_config, delay_ms=20))
    thread = await sdk.threads.create()
    run = await sdk.runs.create(
        thread["thread_id"],
        slow["assistant_id"],
        input={"messages": [{"role": "user", "content": "hello"}]},
        stream_mode=["messages-tuple"],
    )
    joined = [p.event async for p in sdk.runs.join_stream(thread["thread_id"], run["run_id"])]
    assert joined[0] == "metadata"
    assert "messages" in joined  # tokens still to come were delivered to the late joiner
    assert (await sdk.runs.get(thread["thread_id"], run["run_id"]))["status"] == "success"
