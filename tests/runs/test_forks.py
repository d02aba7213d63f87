"""Edit and regenerate as agent-chat-ui's `useStream` sends them: a run from a `checkpoint` of the thread
forks it (the new branch is the thread's state, history keeps both); a checkpoint of another thread is
refused and nothing is written."""

from __future__ import annotations

from typing import Any

import httpx
from langgraph_sdk.client import LangGraphClient

ORDER = {"messages": [{"role": "user", "content": "Where is my order ORD-1001?"}]}
RETURNS = {"messages": [{"role": "user", "content": "How do I return an item?"}]}


def _first_seen(history: list[dict[str, Any]], message_id: str) -> dict[str, Any]:
    """The oldest state holding the message (useStream's `firstSeenState`)."""
    holding = [s for s in history if any(m.get("id") == message_id for m in s["values"].get("messages", []))]
    return holding[-1]  # history is newest first


async def _two_turns(sdk: LangGraphClient, assistant_id: str) -> tuple[str, list[dict[str, Any]]]:
    thread = (await sdk.threads.create())["thread_id"]
    await sdk.runs.wait(thread, assistant_id, input=ORDER)
    await sdk.runs.wait(thread, assistant_id, input=RETURNS)
    history: list[dict[str, Any]] = await sdk.threads.get_history(thread, limit=100)  # type: ignore[assignment]
    return thread, history


async def test_editing_a_message_forks_the_thread(sdk: LangGraphClient, assistant_id: str) -> None:
    thread, history = await _two_turns(sdk, assistant_id)
    second_question = [m for m in history[0]["values"]["messages"] if m["type"] == "human"][1]
    parent = _first_seen(history, second_question["id"])["parent_checkpoint"]
    edited = {"messages": [{"role": "user", "content": "Where is my order ORD-1003?"}]}
    final: Any = await sdk.runs.wait(thread, assistant_id, input=edited, checkpoint=parent)
    humans = [m["content"] for m in final["messages"] if m["type"] == "human"]
    assert humans == ["Where is my order ORD-1001?", "Where is my order ORD-1003?"]  # the old second turn is gone
    state: Any = await sdk.threads.get_state(thread)
    assert [m["content"] for m in state["values"]["messages"] if m["type"] == "human"] == humans
    after: list[dict[str, Any]] = await sdk.threads.get_history(thread, limit=100)  # type: ignore[assignment]
    branches = {s["parent_checkpoint"]["checkpoint_id"] for s in after if s["parent_checkpoint"]}
    ids = [s["checkpoint"]["checkpoint_id"] for s in after]
    assert parent["checkpoint_id"] in ids and len(ids) > len(history)  # both branches are in the history
    assert (
        sum(
            1
            for s in after
            if s["parent_checkpoint"] and s["parent_checkpoint"]["checkpoint_id"] == parent["checkpoint_id"]
        )
        == 2
    )
    assert branches


async def test_regenerating_an_answer_runs_again_from_before_it(sdk: LangGraphClient, assistant_id: str) -> None:
    thread, history = await _two_turns(sdk, assistant_id)
    last_answer = history[0]["values"]["messages"][-1]
    assert last_answer["type"] == "ai"
    parent = _first_seen(history, last_answer["id"])["parent_checkpoint"]
    final: Any = await sdk.runs.wait(thread, assistant_id, input=None, checkpoint=parent)
    messages = final["messages"]
    assert [m["type"] for m in messages].count("human") == 2  # no question added
    assert messages[-1]["type"] == "ai" and messages[-1]["id"] != last_answer["id"]  # a new answer


async def test_a_checkpoint_of_another_thread_is_refused(
    sdk: LangGraphClient, http: httpx.AsyncClient, assistant_id: str
) -> None:
    _other, history = await _two_turns(sdk, assistant_id)
    thread = (await sdk.threads.create())["thread_id"]
    await sdk.runs.wait(thread, assistant_id, input=ORDER)
    body = {"assistant_id": assistant_id, "input": RETURNS, "checkpoint": history[0]["checkpoint"]}
    resp = await http.post(f"/threads/{thread}/runs/wait", json=body)
    assert resp.status_code == 422 and "is not a checkpoint of thread" in resp.text
    runs = (await http.get(f"/threads/{thread}/runs")).json()
    assert len(runs) == 1  # nothing half-written


async def test_no_input_and_no_checkpoint_is_a_422(http: httpx.AsyncClient, assistant_id: str) -> None:
    thread = (await http.post("/threads", json={})).json()["thread_id"]
    resp = await http.post(f"/threads/{thread}/runs/wait", json={"assistant_id": assistant_id})
    assert resp.status_code == 422 and "input.messages is required" in resp.text
