"""Every stream mode of the Agent Server, alone and together, through the official Python SDK; event ids
and `Last-Event-ID` replay; the request agent-chat-ui's `useStream` sends."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from langgraph_sdk.client import LangGraphClient

from tests.conftest import slow_bot
from tests.sse_events import identified_events

ORDER = {"messages": [{"role": "user", "content": "Where is my order ORD-1001?"}]}  # one tool call


async def _events(sdk: LangGraphClient, assistant_id: str, modes: list[str], **kwargs: Any) -> list[tuple[str, Any]]:
    thread = await sdk.threads.create()
    return [
        (part.event, part.data)
        async for part in sdk.runs.stream(thread["thread_id"], assistant_id, input=ORDER, stream_mode=modes, **kwargs)  # type: ignore[arg-type]
    ]


@pytest.mark.parametrize("mode", ["values", "updates", "custom", "debug", "tasks", "checkpoints"])
async def test_each_mode_alone_streams_its_events(sdk: LangGraphClient, assistant_id: str, mode: str) -> None:
    events = await _events(sdk, assistant_id, [mode])
    names = {name for name, _ in events}
    assert names == {"metadata", mode}, names
    assert events[0][0] == "metadata" and set(events[0][1]) >= {"run_id", "attempt"}


async def test_custom_carries_tool_progress(sdk: LangGraphClient, assistant_id: str) -> None:
    custom = [data for name, data in await _events(sdk, assistant_id, ["custom"]) if name == "custom"]
    assert [(c["tool"], c["status"]) for c in custom] == [
        ("fetch_order_status", "running"),
        ("fetch_order_status", "done"),
    ]


async def test_debug_tasks_and_checkpoints_have_langgraphs_shapes(sdk: LangGraphClient, assistant_id: str) -> None:
    events = await _events(sdk, assistant_id, ["debug", "tasks", "checkpoints"])
    debug = [d for n, d in events if n == "debug"]
    assert {d["type"] for d in debug} >= {"checkpoint", "task", "task_result"}
    tasks = [d for n, d in events if n == "tasks"]
    assert {t["name"] for t in tasks} >= {"agent", "tools"} and all("id" in t for t in tasks)
    checkpoints = [d for n, d in events if n == "checkpoints"]
    assert checkpoints and all({"config", "metadata", "values", "next"} <= set(c) for c in checkpoints)


async def test_messages_mode_sends_metadata_partial_and_complete(sdk: LangGraphClient, assistant_id: str) -> None:
    events = await _events(sdk, assistant_id, ["messages"])
    names = [n for n, _ in events]
    assert "messages/metadata" in names and "messages/partial" in names and "messages/complete" in names
    partials = [d[0] for n, d in events if n == "messages/partial"]
    last_by_id: dict[str, str] = {}
    for message in partials:  # accumulated: each partial of a message extends the one before
        before = last_by_id.get(message["id"], "")
        assert str(message["content"]).startswith(before), (before, message["content"])
        last_by_id[message["id"]] = str(message["content"])
    assert any("shipped" in text for text in last_by_id.values())
    metadata = [d for n, d in events if n == "messages/metadata"]
    assert all(len(d) == 1 and "metadata" in next(iter(d.values())) for d in metadata)
    complete = [d[0] for n, d in events if n == "messages/complete"]
    assert any(m["type"] == "tool" for m in complete)  # the tool's message arrives whole


async def test_events_mode_streams_langchain_events_and_the_other_modes(
    sdk: LangGraphClient, assistant_id: str
) -> None:
    events = await _events(sdk, assistant_id, ["events", "values", "messages-tuple"])
    kinds = {d["event"] for n, d in events if n == "events"}
    assert {"on_chain_start", "on_chat_model_stream", "on_chain_stream", "on_chain_end"} <= kinds, kinds
    assert any(n == "values" for n, _ in events) and any(n == "messages" for n, _ in events)
    final = [d for n, d in events if n == "values"][-1]
    assert "shipped" in str(final["messages"][-1]["content"])


async def test_the_request_agent_chat_ui_sends_streams_an_answer(server: Any, tenant: Any, assistant_id: str) -> None:
    """useStream's body: values + messages-tuple + custom (+ updates), subgraphs, resumable, continue."""
    async with httpx.AsyncClient(base_url=server.url, headers={"x-api-key": tenant.key}, timeout=30) as http:
        thread = (await http.post("/threads", json={"metadata": {}})).json()["thread_id"]
        body = {
            "input": {"messages": [{"type": "human", "content": "Where is my order ORD-1001?"}]},
            "assistant_id": assistant_id,
            "stream_mode": ["values", "messages-tuple", "custom", "updates"],
            "stream_subgraphs": True,
            "stream_resumable": True,
            "on_disconnect": "continue",
        }
        async with http.stream("POST", f"/threads/{thread}/runs/stream", json=body) as resp:
            assert resp.status_code == 200, await resp.aread()
            assert resp.headers["content-location"].startswith(f"/threads/{thread}/runs/")
            assert resp.headers["location"] == resp.headers["content-location"] + "/stream"
            lines = [line async for line in resp.aiter_lines()]
    names = {line[7:] for line in lines if line.startswith("event: ")}
    assert names == {"metadata", "values", "messages", "custom", "updates"}, names
    ids = [line[4:] for line in lines if line.startswith("id: ")]
    assert ids and len(ids) == len(set(ids)), "every event but metadata has an id of its own"


async def test_an_unknown_stream_mode_is_named_in_a_422(http: httpx.AsyncClient, assistant_id: str) -> None:
    thread = (await http.post("/threads", json={})).json()["thread_id"]
    body = {"assistant_id": assistant_id, "input": ORDER, "stream_mode": ["values", "telepathy"]}
    resp = await http.post(f"/threads/{thread}/runs/stream", json=body)
    assert resp.status_code == 422 and "telepathy" in resp.text


async def test_a_reconnect_with_last_event_id_gets_exactly_what_it_missed(
    sdk: LangGraphClient, http: httpx.AsyncClient, acme_config: dict[str, Any]
) -> None:
    slow = (await sdk.assistants.create(graph_id="chatbot", context=slow_bot(acme_config, 20)))["assistant_id"]
    thread = (await sdk.threads.create())["thread_id"]
    body = {"assistant_id": slow, "input": ORDER, "stream_mode": ["messages-tuple"], "stream_resumable": True}
    async with http.stream("POST", f"/threads/{thread}/runs/stream", json=body) as resp:
        run_path = resp.headers["content-location"]
        seen = await identified_events(resp, limit=5)
    rest = await _join(http, run_path, seen[-1][0])
    everything = await _join(http, run_path, "-1")
    assert [i for i, _ in seen] + [i for i, _ in rest] == [i for i, _ in everything]  # no gap, no repeat
    assert [d for _, d in seen] + [d for _, d in rest] == [d for _, d in everything]
    live_only = await _join(http, run_path, None)
    assert live_only == []  # the run has ended: nothing new to follow


async def _join(http: httpx.AsyncClient, run_path: str, last_event_id: str | None) -> list[tuple[str, str]]:
    headers = {"Last-Event-ID": last_event_id} if last_event_id is not None else {}
    async with http.stream("GET", f"{run_path}/stream", headers=headers) as resp:
        assert resp.status_code == 200
        out = await identified_events(resp)
    return out


async def test_a_bad_last_event_id_is_a_422(http: httpx.AsyncClient, assistant_id: str) -> None:
    thread = (await http.post("/threads", json={})).json()["thread_id"]
    run = (await http.post(f"/threads/{thread}/runs", json={"assistant_id": assistant_id, "input": ORDER})).json()
    resp = await http.get(f"/threads/{thread}/runs/{run['run_id']}/stream", headers={"Last-Event-ID": "yesterday"})
    assert resp.status_code == 422 and "Last-Event-ID" in resp.text
    await asyncio.sleep(0)


async def test_run_config_reaches_the_graph(sdk: LangGraphClient, assistant_id: str) -> None:
    """`config.configurable` keys reach the run's checkpoints; `recursion_limit` bounds its steps."""
    events = await _events(
        sdk, assistant_id, ["checkpoints"], config={"configurable": {"customer_tier": "gold"}, "tags": ["vip"]}
    )
    configs = [d["config"]["configurable"] for n, d in events if n == "checkpoints"]
    assert configs and all(c.get("customer_tier") == "gold" for c in configs)
    limited = await _events(sdk, assistant_id, ["values"], config={"recursion_limit": 2})
    errors = [d for n, d in limited if n == "error"]
    assert errors and "recursion" in errors[0]["message"].lower(), limited[-1]


async def test_bad_run_config_is_a_422(http: httpx.AsyncClient, assistant_id: str) -> None:
    thread = (await http.post("/threads", json={})).json()["thread_id"]
    for config, says in [
        ({"configurable": {"thread_id": "x"}}, "set by Chorus"),
        ({"recursion_limit": 0}, "recursion_limit"),
        ({"max_concurrency": 3}, "not supported"),
    ]:
        body = {"assistant_id": assistant_id, "input": ORDER, "config": config}
        resp = await http.post(f"/threads/{thread}/runs", json=body)
        assert resp.status_code == 422 and says in resp.text, (config, resp.text)


async def test_fields_chorus_does_not_serve_are_refused_not_ignored(http: httpx.AsyncClient, assistant_id: str) -> None:
    thread = (await http.post("/threads", json={})).json()["thread_id"]
    for extra, says in [
        ({"webhook": "ftp://hooks.example/done"}, "http:// or https://"),
        ({"feedback_keys": ["helpful"]}, "feedback"),
        ({"telepathy": True}, "telepathy"),
    ]:
        resp = await http.post(f"/threads/{thread}/runs", json={"assistant_id": assistant_id, "input": ORDER, **extra})
        assert resp.status_code == 422 and says in resp.text, (extra, resp.text)
    ok = await http.post(
        f"/threads/{thread}/runs/wait", json={"assistant_id": assistant_id, "input": ORDER, "checkpoint_during": False}
    )
    assert ok.status_code == 200, ok.text  # deprecated, still understood (durability "exit")
