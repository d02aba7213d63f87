"""A graph id as the assistant id (LangGraph clients are set up with one: agent-chat-ui's assistant id is
often a graph name) resolves to the tenant's default bot; an ambiguous or unknown one is a 422 that says
what to send instead."""

from __future__ import annotations

from typing import Any

import httpx

HELLO = {"messages": [{"role": "user", "content": "hello"}]}


async def _run(http: httpx.AsyncClient, assistant: str) -> httpx.Response:
    thread = (await http.post("/threads", json={})).json()["thread_id"]
    return await http.post(f"/threads/{thread}/runs/wait", json={"assistant_id": assistant, "input": HELLO})


async def test_the_graph_id_resolves_to_the_only_bot(http: httpx.AsyncClient, assistant_id: str) -> None:
    resp = await _run(http, "chatbot")
    assert resp.status_code == 200, resp.text
    runs = (await http.post("/threads/search", json={"metadata": {"graph_id": "chatbot"}})).json()
    assert runs and runs[0]["metadata"]["assistant_id"] == assistant_id  # agent-chat-ui's thread list finds it


async def test_several_bots_need_a_default(
    http: httpx.AsyncClient, assistant_id: str, acme_config: dict[str, Any]
) -> None:
    second = {**acme_config, "config_metadata": {**acme_config["config_metadata"], "name": "Second bot"}}
    other = (await http.post("/assistants", json={"graph_id": "chatbot", "context": second})).json()
    resp = await _run(http, "chatbot")
    assert resp.status_code == 422 and assistant_id in resp.text and other["assistant_id"] in resp.text
    assert '"default": true' in resp.json()["detail"]
    await http.patch(f"/assistants/{other['assistant_id']}", json={"metadata": {"default": True}})
    resp = await _run(http, "chatbot")
    assert resp.status_code == 200, resp.text
    thread = (await http.post("/threads/search", json={"limit": 1})).json()[0]
    assert thread["metadata"]["assistant_id"] == other["assistant_id"]


async def test_an_unknown_name_is_a_422(http: httpx.AsyncClient, assistant_id: str) -> None:
    resp = await _run(http, "agent")
    assert resp.status_code == 422 and "neither an assistant's id nor a graph id" in resp.text
