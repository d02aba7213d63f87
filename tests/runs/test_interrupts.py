"""Breakpoints and resume, as LangGraph clients use them: `interrupt_before`/`interrupt_after` stop a run at
a node (the thread is `interrupted`, its state names what comes next), a run without input or with a
`command` goes on from there; unknown nodes and a resume of a thread that is not paused are 422s."""

from __future__ import annotations

from typing import Any

import httpx
from langgraph_sdk.client import LangGraphClient

ORDER = {"messages": [{"role": "user", "content": "Where is my order ORD-1001?"}]}


async def _paused_before_tools(sdk: LangGraphClient, assistant_id: str) -> str:
    thread = (await sdk.threads.create())["thread_id"]
    await sdk.runs.wait(thread, assistant_id, input=ORDER, interrupt_before=["tools"])
    return thread


async def test_a_breakpoint_pauses_the_thread_before_the_tool(sdk: LangGraphClient, assistant_id: str) -> None:
    thread = await _paused_before_tools(sdk, assistant_id)
    assert (await sdk.threads.get(thread))["status"] == "interrupted"
    state: Any = await sdk.threads.get_state(thread)
    assert state["next"] == ["tools"]
    assert state["values"]["messages"][-1]["tool_calls"][0]["name"] == "fetch_order_status"
    runs = await sdk.runs.list(thread)
    assert runs[0]["status"] == "success"  # the run did what it was asked: run up to the breakpoint


async def test_a_run_without_input_goes_on_from_the_breakpoint(sdk: LangGraphClient, assistant_id: str) -> None:
    thread = await _paused_before_tools(sdk, assistant_id)
    final: Any = await sdk.runs.wait(thread, assistant_id, input=None)
    assert final["messages"][-2]["type"] == "tool" and "shipped" in final["messages"][-1]["content"]
    assert (await sdk.threads.get(thread))["status"] == "idle"


async def test_a_command_resumes_or_ends_the_paused_thread(sdk: LangGraphClient, assistant_id: str) -> None:
    thread = await _paused_before_tools(sdk, assistant_id)
    final: Any = await sdk.runs.wait(thread, assistant_id, command={"resume": "approved"})
    assert "shipped" in final["messages"][-1]["content"]
    other = await _paused_before_tools(sdk, assistant_id)
    # agent-inbox's "mark as resolved": LangGraph runs the pending step and ends; the thread is no longer paused.
    await sdk.runs.wait(other, assistant_id, command={"goto": "__end__"})
    assert (await sdk.threads.get(other))["status"] == "idle"
    assert (await sdk.threads.get_state(other))["next"] == []


async def test_bad_breakpoints_and_resumes_are_422s(http: httpx.AsyncClient, assistant_id: str) -> None:
    thread = (await http.post("/threads", json={})).json()["thread_id"]
    body = {"assistant_id": assistant_id, "input": ORDER, "interrupt_before": ["toolz"]}
    resp = await http.post(f"/threads/{thread}/runs", json=body)
    assert resp.status_code == 422 and "toolz" in resp.text and "'tools'" in resp.text
    resp = await http.post(f"/threads/{thread}/runs", json={"assistant_id": assistant_id})
    assert resp.status_code == 422 and "input.messages is required" in resp.text  # nothing to go on from
    resp = await http.post(
        f"/threads/{thread}/runs", json={"assistant_id": assistant_id, "command": {"resume": 1, "jump": 2}}
    )
    assert resp.status_code == 422 and "jump" in resp.text
    assert (await http.get(f"/threads/{thread}/runs")).json() == []  # nothing half-written:
    assert "assistant_id" not in (await http.get(f"/threads/{thread}")).json()["metadata"]  # not even a pin


async def test_a_paused_thread_names_its_pending_step_in_state_and_history(
    sdk: LangGraphClient, assistant_id: str
) -> None:
    thread = await _paused_before_tools(sdk, assistant_id)
    state: Any = await sdk.threads.get_state(thread)
    assert [t["name"] for t in state["tasks"]] == ["tools"] and state["tasks"][0]["id"]
    history: Any = await sdk.threads.get_history(thread, limit=1)
    assert history[0]["tasks"][0]["name"] == "tools" and history[0]["next"] == ["tools"]
