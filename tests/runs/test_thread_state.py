"""A thread's state through the official SDK: at one of its checkpoints (GET and POST), updated as if a node
had run (the messages reducer appends, the thread's values follow), created with supersteps. An update
never races a run (409 while one is queued or running); a checkpoint of another thread, or another
tenant's thread, is a 404 that names nothing but what was sent."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from langgraph_sdk.client import LangGraphClient
from langgraph_sdk.errors import ConflictError, NotFoundError, UnprocessableEntityError

from chorus.agents.storage.database import Database
from chorus.runs.threads_repository import ThreadRepository
from tests.conftest import RunningServer, Tenant, make_tenant, slow_bot

ORDER = {"messages": [{"role": "user", "content": "Where is my order ORD-1001?"}]}
RETURNS = {"messages": [{"role": "user", "content": "How do I return an item?"}]}


async def _talked(sdk: LangGraphClient, assistant_id: str) -> str:
    thread = (await sdk.threads.create())["thread_id"]
    await sdk.runs.wait(thread, assistant_id, input=ORDER)
    await sdk.runs.wait(thread, assistant_id, input=RETURNS)
    return str(thread)


def _humans(state: Any) -> list[str]:
    return [m["content"] for m in state["values"]["messages"] if m["type"] == "human"]


async def test_state_at_a_checkpoint(sdk: LangGraphClient, assistant_id: str) -> None:
    thread = await _talked(sdk, assistant_id)
    history = await sdk.threads.get_history(thread, limit=100)
    older = next(s for s in history if _humans(s) == [ORDER["messages"][0]["content"]])
    checkpoint = older["checkpoint"]
    by_id = await sdk.threads.get_state(thread, checkpoint_id=checkpoint["checkpoint_id"], subgraphs=True)
    by_post = await sdk.threads.get_state(thread, checkpoint=checkpoint)
    assert by_id["values"] == by_post["values"] == older["values"]
    assert by_id["checkpoint"] == by_post["checkpoint"] == checkpoint
    now = await sdk.threads.get_state(thread, subgraphs=True)
    assert len(_humans(now)) == 2

    only: Any = await sdk.threads.get_state(thread, select=["values.messages", "next"])
    assert set(only) == {"values", "next"} and set(only["values"]) == {"messages"}
    picked: Any = await sdk.threads.get_history(thread, limit=2, select=["checkpoint"])
    assert [set(s) for s in picked] == [{"checkpoint"}, {"checkpoint"}]
    with pytest.raises(UnprocessableEntityError):
        await sdk.threads.get_state(thread, select=["values.password"])


async def test_a_checkpoint_of_another_thread_or_tenant_is_not_found(
    sdk: LangGraphClient, assistant_id: str, server: RunningServer, db: Database
) -> None:
    mine = await _talked(sdk, assistant_id)
    other = await _talked(sdk, assistant_id)
    foreign = (await sdk.threads.get_state(other))["checkpoint"]["checkpoint_id"]
    for attempt in (
        sdk.threads.get_state(mine, checkpoint_id=foreign),
        sdk.threads.get_state(mine, checkpoint={"checkpoint_id": foreign}),
        sdk.threads.update_state(mine, {"suggest_handoff": True}, as_node="agent", checkpoint_id=foreign),
    ):
        with pytest.raises(NotFoundError) as refused:
            await attempt
        assert other not in refused.value.response.text
    stranger = await make_tenant(db)
    own = (await sdk.threads.get_state(mine))["checkpoint"]["checkpoint_id"]
    async with httpx.AsyncClient(base_url=server.url, headers={"x-api-key": stranger.key}) as them:
        for answer in (
            await them.get(f"/threads/{mine}/state/{own}"),
            await them.post(f"/threads/{mine}/state/checkpoint", json={"checkpoint": {"checkpoint_id": own}}),
            await them.post(f"/threads/{mine}/state", json={"values": {"escalated": True}, "as_node": "agent"}),
        ):
            assert answer.status_code == 404 and own not in answer.text
    assert "escalated" not in (await sdk.threads.get_state(mine))["values"]


async def test_update_state_goes_through_the_reducers(
    sdk: LangGraphClient, http: httpx.AsyncClient, assistant_id: str
) -> None:
    thread = (await sdk.threads.create())["thread_id"]
    await sdk.runs.wait(thread, assistant_id, input=ORDER)
    before = await sdk.threads.get_state(thread)
    note = {"role": "assistant", "content": "A refund of $20 was approved by Sam."}
    done = await sdk.threads.update_state(thread, {"messages": [note], "pii": {"email": "a@b.co"}}, as_node="agent")
    assert done["checkpoint"]["thread_id"] == thread and done["checkpoint"]["checkpoint_id"]
    after = await sdk.threads.get_state(thread)
    assert after["checkpoint"] == {k: v for k, v in done["checkpoint"].items() if k != "checkpoint_map"}
    added = after["values"]["messages"][-1]
    assert len(after["values"]["messages"]) == len(before["values"]["messages"]) + 1  # appended
    assert added["type"] == "ai" and added["content"] == note["content"] and added["id"]
    assert after["values"]["pii"]["email"] == "a@b.co"
    assert (await sdk.threads.get(thread))["values"]["messages"][-1]["content"] == note["content"]
    await sdk.threads.update_state(thread, {"pii": {"phone": "555-0100"}})  # as the node that ran last
    pii = (await sdk.threads.get_state(thread))["values"]["pii"]
    assert pii["email"] == "a@b.co" and pii["phone"] == "555-0100"  # merged by the pii reducer

    # The same id replaces the message (the messages reducer), and the conversation goes on from there.
    fixed = {**note, "id": added["id"], "content": "A refund of $25 was approved by Sam."}
    await sdk.threads.update_state(thread, {"messages": [fixed]}, as_node="agent")
    state = await sdk.threads.get_state(thread)
    assert [m["content"] for m in state["values"]["messages"]].count(fixed["content"]) == 1
    assert len(state["values"]["messages"]) == len(after["values"]["messages"])
    final: Any = await sdk.runs.wait(thread, assistant_id, input=RETURNS)
    assert fixed["content"] in [m["content"] for m in final["messages"]]
    await sdk.threads.update_state(thread, {"messages": [{"type": "remove", "id": added["id"]}]}, as_node="agent")
    remaining = (await sdk.threads.get_state(thread))["values"]["messages"]
    assert added["id"] not in [m["id"] for m in remaining] and len(remaining) == len(final["messages"]) - 1

    # From an older checkpoint: a fork, the old branch stays in the history.
    first = before["checkpoint"]
    forked = await sdk.threads.update_state(thread, {"escalated": True}, as_node="agent", checkpoint=first)
    assert forked["checkpoint"]["checkpoint_id"] != first["checkpoint_id"]
    branch = await sdk.threads.get_state(thread)
    assert branch["values"]["escalated"] is True and branch["parent_checkpoint"] == first
    assert branch["values"]["messages"] == before["values"]["messages"]


@pytest.mark.parametrize(
    ("body", "named", "words"),
    [
        ({"values": {"mood": "happy"}, "as_node": "agent"}, "$.values.mood", "'mood'"),
        ({"values": {"escalated": "yes"}, "as_node": "agent"}, "$.values.escalated", "escalated"),
        ({"values": {"messages": "hello"}, "as_node": "agent"}, "$.values.messages", "list"),
        (
            {"values": {"messages": [{"role": "wizard", "content": "x"}]}, "as_node": "agent"},
            "$.values.messages[0]",
            "",
        ),
        ({"values": {"escalated": True}, "as_node": "planner"}, "$.as_node", "['intake', 'agent', 'tools']"),
        ({"values": {"escalated": True}, "as_node": "__start__"}, "$.as_node", "intake"),
        ({"values": [{"escalated": True}], "as_node": "agent"}, "$.values", ""),
        ({"values": {}, "checkpoint": {"checkpoint_ns": "sub"}}, "$.checkpoint.checkpoint_ns", "subgraphs"),
        ({"values": {}, "command": {"goto": "agent"}}, "$.command", ""),
    ],
)
async def test_a_wrong_update_is_a_422_naming_it(
    sdk: LangGraphClient, http: httpx.AsyncClient, assistant_id: str, body: dict[str, Any], named: str, words: str
) -> None:
    thread = (await sdk.threads.create())["thread_id"]
    await sdk.runs.wait(thread, assistant_id, input=ORDER)
    before = await sdk.threads.get_state(thread)
    answer = await http.post(f"/threads/{thread}/state", json=body)
    assert answer.status_code == 422, answer.text
    assert named in [e["path"] for e in answer.json()["errors"]], answer.json()
    assert words in answer.json()["detail"]
    assert (await sdk.threads.get_state(thread))["checkpoint"] == before["checkpoint"]  # nothing written


async def test_update_state_on_a_busy_thread_is_a_409(sdk: LangGraphClient, acme_config: dict[str, Any]) -> None:
    slow = await sdk.assistants.create(graph_id="chatbot", context=slow_bot(acme_config, delay_ms=40))
    thread = (await sdk.threads.create())["thread_id"]
    run = await sdk.runs.create(thread, slow["assistant_id"], input=ORDER)
    with pytest.raises(ConflictError) as busy:
        await sdk.threads.update_state(thread, {"escalated": True}, as_node="agent")
    assert run["run_id"] in busy.value.response.text
    await sdk.runs.join(thread, run["run_id"])
    await sdk.threads.update_state(thread, {"escalated": True}, as_node="agent")
    assert (await sdk.threads.get_state(thread))["values"]["escalated"] is True


async def test_a_run_submitted_during_a_state_update_runs_after_it(
    sdk: LangGraphClient, server: RunningServer, tenant: Tenant, assistant_id: str
) -> None:
    thread = (await sdk.threads.create())["thread_id"]
    await sdk.runs.wait(thread, assistant_id, input=ORDER)
    threads: ThreadRepository = server.app.state.threads
    async with threads.idle(tenant.tenant_id, thread, doing="update its state") as locked:
        submitted = asyncio.create_task(sdk.runs.create(thread, assistant_id, input=RETURNS))
        await asyncio.sleep(0.5)
        assert not submitted.done()  # storing the run needs the thread's row, which the update holds
        await locked.record_state({"marker": True})
    run = await asyncio.wait_for(submitted, 10)
    final: Any = await sdk.runs.join(thread, run["run_id"])
    assert len(_humans({"values": final})) == 2
    assert "marker" not in (await sdk.threads.get(thread))["values"]  # the run's values came after


async def test_a_thread_without_runs_takes_its_graph_from_graph_id(
    sdk: LangGraphClient, http: httpx.AsyncClient, assistant_id: str
) -> None:
    bare = (await sdk.threads.create())["thread_id"]
    refused = await http.post(f"/threads/{bare}/state", json={"values": {"escalated": True}, "as_node": "agent"})
    assert refused.status_code == 422 and "graph_id" in refused.json()["detail"]
    thread = (await sdk.threads.create(graph_id="chatbot"))["thread_id"]
    greeting = {"messages": [{"role": "assistant", "content": "Hi, I am the Acme assistant."}]}
    await sdk.threads.update_state(thread, greeting, as_node="agent")
    assert (await sdk.threads.get(thread))["assistant_id"] == assistant_id  # type: ignore[typeddict-item]
    final: Any = await sdk.runs.wait(thread, assistant_id, input=ORDER)
    assert final["messages"][0]["content"] == greeting["messages"][0]["content"]


async def test_create_with_supersteps(sdk: LangGraphClient, http: httpx.AsyncClient, assistant_id: str) -> None:
    supersteps = [
        {"updates": [{"values": {"messages": [{"role": "user", "content": "Hello"}]}, "as_node": "intake"}]},
        {"updates": [{"values": {"messages": [{"role": "assistant", "content": "Hi there!"}]}, "as_node": "agent"}]},
    ]
    thread = await sdk.threads.create(graph_id="chatbot", supersteps=supersteps)
    state = await sdk.threads.get_state(thread["thread_id"])
    assert [(m["type"], m["content"]) for m in state["values"]["messages"]] == [("human", "Hello"), ("ai", "Hi there!")]
    assert thread["values"]["messages"][-1]["content"] == "Hi there!"  # type: ignore[index]
    assert len(await sdk.threads.get_history(thread["thread_id"], limit=10)) == 2
    final: Any = await sdk.runs.wait(thread["thread_id"], assistant_id, input=ORDER)
    assert [m["content"] for m in final["messages"]][:2] == ["Hello", "Hi there!"]

    # A wrong update is refused before anything exists.
    wanted = "7d3f4c1e-0000-4000-8000-00000000abcd"
    bad = [{"updates": [{"values": {"mood": 1}, "as_node": "agent"}]}]
    refused = await http.post("/threads", json={"thread_id": wanted, "graph_id": "chatbot", "supersteps": bad})
    assert (
        refused.status_code == 422 and refused.json()["errors"][0]["path"] == "$.supersteps[0].updates[0].values.mood"
    )
    assert (await http.get(f"/threads/{wanted}")).status_code == 404
    without_graph = await http.post("/threads", json={"supersteps": supersteps})
    assert without_graph.status_code == 422 and "graph_id" in without_graph.json()["detail"]
