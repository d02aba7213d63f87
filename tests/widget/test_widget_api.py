"""The widget API through real HTTP, as the widget's script calls it from a shop's page: the bot's look,
a visitor session, a conversation streamed in the Agent Server's SSE format, a reload, a dropped stream
resumed with Last-Event-ID, an expired token renewed."""

from __future__ import annotations

import copy
from typing import Any

import httpx

from tests.conftest import RunningServer, slow_bot
from tests.widget.conftest import HELLO, ORIGIN, Site, create_key, make_assistant, read_sse


async def test_a_visitor_chats_and_finds_the_conversation_again(site: Site) -> None:
    visitor, _ = await site.visitor()
    thread_id = await site.thread(visitor)

    body = {**HELLO, "stream_mode": ["messages-tuple", "values", "custom"]}
    async with visitor.stream("POST", f"/widget/v1/threads/{thread_id}/runs/stream", json=body) as resp:
        assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/event-stream")
        assert resp.headers["access-control-allow-origin"] == ORIGIN
        run_path = resp.headers["content-location"]
        assert run_path.startswith(f"/widget/v1/threads/{thread_id}/runs/")
        events = await read_sse(resp)
    names = [e.name for e in events]
    assert names[0] == "metadata" and "messages" in names and "values" in names, names
    assert all(e.id for e in events[1:]), "every event after metadata has an id to resume from"
    progress = [e.data for e in events if e.name == "custom"]
    assert [p["tool"] for p in progress] == ["fetch_order_status", "fetch_order_status"]
    # Tool results (an order's address, a customer's e-mail) never reach the visitor's browser: no tool
    # message in any event, in the token stream or in the state snapshots.
    streamed = [e.data[0] for e in events if e.name == "messages"]
    assert streamed and all(m["type"] != "tool" for m in streamed), streamed
    # An allow-list, field by field: a token is its words (no tool calls and their arguments, no model or
    # usage metadata), a snapshot the transcript and whether a person took over (no PII, no escalation record).
    assert all(set(m) == {"type", "id", "content"} for m in streamed), streamed[0]
    assert all(e.data[1] == {} for e in events if e.name == "messages")
    assert 'ORD-1001"}' not in str([e.data for e in events if e.name == "messages"])  # no tool-call arguments
    assert all(set(e.data) == {"messages", "escalated"} for e in events if e.name == "values")
    snapshots = [m for e in events if e.name == "values" for m in e.data["messages"]]
    assert snapshots and all(m["type"] in ("human", "ai") for m in snapshots), snapshots
    assert all(set(p) == {"type", "tool", "tool_call_id", "status"} for p in progress), progress

    state = (await visitor.get(f"/widget/v1/threads/{thread_id}/state")).json()
    assert [m["type"] for m in state["messages"]] == ["human", "ai"]
    assert state["messages"][0]["content"] == HELLO["input"]["messages"][0]["content"]
    assert "ORD-1001" in state["messages"][1]["content"]
    assert state["active_run"] is None and state["assistant_id"] == site.assistant_id
    assert "tool" not in str(state["messages"]) and "[citation]" not in str(state)

    listed = (await visitor.get("/widget/v1/threads")).json()
    assert [t["thread_id"] for t in listed] == [thread_id]
    # The operator sees the conversation in the management API, marked as the widget's.
    thread = (await site.admin.get(f"/threads/{thread_id}")).json()
    assert thread["metadata"]["source"] == "widget" and thread["metadata"]["publishable_key_id"] == site.key_id


async def test_config_gives_the_bots_look(
    server: RunningServer, http: httpx.AsyncClient, acme_config: dict[str, Any]
) -> None:
    config = copy.deepcopy(acme_config)
    config["webchat"] = {
        "title": "Acme help",
        "colors": {"primary": "#0a7cff", "text": "#fff"},
        "avatar_url": "https://cdn.example.com/acme.png",
        "position": "bottom-left",
    }
    assistant_id = await make_assistant(http, config)
    key = (await create_key(http, [assistant_id]))["key"]
    async with httpx.AsyncClient(base_url=server.url, headers={"Origin": ORIGIN, "X-Publishable-Key": key}) as c:
        look = (await c.get("/widget/v1/config")).json()
    assert look["assistant_id"] == assistant_id and look["title"] == "Acme help"
    assert look["greeting"] == acme_config["first_message"]  # no greeting in the block: the bot's first message
    assert look["webchat"]["colors"]["primary"] == "#0a7cff" and look["webchat"]["position"] == "bottom-left"


async def test_a_webchat_block_that_could_inject_markup_is_refused(
    http: httpx.AsyncClient, acme_config: dict[str, Any]
) -> None:
    for bad in (
        {"avatar_url": "javascript:alert(1)"},
        {"avatar_url": 'https://x.example/a.png");background:url(https://evil.example'},
        {"colors": {"primary": "red;position:fixed"}},
        {"position": "center"},
        {"title": "x" * 81},
        {"launcher": "unknown field"},
    ):
        config = {**acme_config, "webchat": bad}
        resp = await http.post("/assistants", json={"graph_id": "chatbot", "context": config})
        assert resp.status_code == 422, (bad, resp.text)
        assert "webchat" in resp.text


async def test_a_dropped_stream_resumes_where_it_stopped(site: Site, acme_config: dict[str, Any]) -> None:
    slow = await make_assistant(site.admin, slow_bot(acme_config, 20))
    key = (await create_key(site.admin, [slow]))["key"]
    site.key = key
    visitor, _ = await site.visitor()
    thread_id = await site.thread(visitor)
    body = {**HELLO, "stream_mode": ["messages-tuple"]}
    async with visitor.stream("POST", f"/widget/v1/threads/{thread_id}/runs/stream", json=body) as resp:
        run_path = resp.headers["content-location"]
        seen = await read_sse(resp, stop_after=5)  # the network drops mid-answer
    seen = [e for e in seen if e.id]

    async def join(last_event_id: str) -> list[Any]:
        headers = {"Last-Event-ID": last_event_id}
        async with visitor.stream("GET", f"{run_path}/stream", headers=headers) as resp:
            assert resp.status_code == 200
            return [e for e in await read_sse(resp) if e.id]

    rest = await join(seen[-1].id or "")
    everything = await join("-1")
    assert [e.id for e in seen + rest] == [e.id for e in everything]  # no gap, no repeat
    assert len(rest) > 0


async def test_a_reload_during_an_answer_finds_the_run_to_rejoin(site: Site, acme_config: dict[str, Any]) -> None:
    slow = await make_assistant(site.admin, slow_bot(acme_config, 40))
    site.key = (await create_key(site.admin, [slow]))["key"]
    visitor, _ = await site.visitor()
    thread_id = await site.thread(visitor)
    async with visitor.stream("POST", f"/widget/v1/threads/{thread_id}/runs/stream", json=HELLO) as resp:
        run_id = resp.headers["content-location"].rsplit("/", 1)[1]
        await read_sse(resp, stop_after=1)
    state = (await visitor.get(f"/widget/v1/threads/{thread_id}/state")).json()
    assert state["active_run"] == {"run_id": run_id, "status": "running"}
    async with visitor.stream("GET", f"/widget/v1/threads/{thread_id}/runs/{run_id}/stream") as resp:
        await read_sse(resp)
    state = (await visitor.get(f"/widget/v1/threads/{thread_id}/state")).json()
    assert state["active_run"] is None and [m["type"] for m in state["messages"]] == ["human", "ai"]


async def test_an_expired_token_is_renewed_for_the_same_visitor(site: Site, server: RunningServer) -> None:
    visitor, token = await site.visitor()
    thread_id = await site.thread(visitor)
    tokens = site.tokens()
    current = tokens.verify(token)
    expired, _ = tokens.issue(
        tenant_id=current.tenant_id, key_id=current.key_id, visitor_id=current.visitor_id, ttl_s=-60
    )
    stale = site.client(token=expired)
    refused = await stale.get(f"/widget/v1/threads/{thread_id}/state")
    assert refused.status_code == 401 and "expired" in refused.json()["detail"]

    renew = site.client(token=expired)
    renew.headers["X-Publishable-Key"] = site.key
    renewed = (await renew.post("/widget/v1/session")).json()
    assert renewed["renewed"] is True and renewed["visitor_id"] == current.visitor_id
    again = site.client(token=renewed["visitor_token"])
    assert (await again.get(f"/widget/v1/threads/{thread_id}/state")).status_code == 200


async def test_a_preflight_from_any_origin_is_answered_but_grants_nothing(site: Site) -> None:
    client = site.client(origin=None)
    headers = {
        "Origin": "https://elsewhere.example",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "x-publishable-key, content-type",
    }
    pre = await client.options("/widget/v1/session", headers=headers)
    assert pre.status_code == 204
    assert "x-publishable-key" in pre.headers["access-control-allow-headers"].lower()
    # The request itself, from that origin, is refused, and its answer is not readable there.
    resp = await client.post(
        "/widget/v1/session", headers={"Origin": "https://elsewhere.example", "X-Publishable-Key": site.key}
    )
    assert resp.status_code == 403 and "https://elsewhere.example" in resp.json()["detail"]
    assert "access-control-allow-origin" not in resp.headers
