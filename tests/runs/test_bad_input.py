"""Bad input: each a clear 4xx saying what to fix; nothing already accepted is lost."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from chorus.agents.storage.database import Database
from tests.conftest import RunningServer, Tenant, make_tenant, slow_bot


async def test_malformed_json(http: httpx.AsyncClient) -> None:
    resp = await http.post("/threads", content=b"{not json", headers={"content-type": "application/json"})
    assert resp.status_code == 422
    assert "malformed JSON" in resp.json()["detail"]


async def test_body_over_the_limit(http: httpx.AsyncClient, acme_config: dict[str, Any]) -> None:
    huge = dict(acme_config, first_message="x" * 300_000)
    resp = await http.post("/api/v1/configs", json=huge)
    assert resp.status_code == 413
    assert "limit" in resp.json()["detail"]


async def test_chunked_body_over_the_limit(http: httpx.AsyncClient) -> None:
    async def chunks() -> Any:
        yield b'{"metadata": {"x": "'
        for _ in range(40):
            yield b"y" * 10_000
        yield b'"}}'

    resp = await http.post("/threads", content=chunks(), headers={"content-type": "application/json"})
    assert resp.status_code == 413
    assert "larger than" in resp.json()["detail"]
    assert resp.headers["x-request-id"]


async def test_unknown_and_foreign_ids(
    http: httpx.AsyncClient, server: RunningServer, db: Database, assistant_id: str
) -> None:
    thread = (await http.post("/threads", json={})).json()
    other = await make_tenant(db)
    async with httpx.AsyncClient(base_url=server.url, headers={"x-api-key": other.key}) as stranger:
        for path in (
            f"/assistants/{assistant_id}",
            f"/threads/{thread['thread_id']}",
            f"/threads/{thread['thread_id']}/state",
            f"/api/v1/configs/{assistant_id}",
        ):
            resp = await stranger.get(path)
            assert resp.status_code == 404, path
        run = await stranger.post(
            f"/threads/{thread['thread_id']}/runs/wait",
            json={"assistant_id": assistant_id, "input": {"messages": [{"role": "user", "content": "hi"}]}},
        )
        assert run.status_code == 404
        assert (await stranger.post("/assistants/search", json={})).json() == []
        assert (await stranger.post("/threads/search", json={})).json() == []
    assert (await http.get(f"/threads/{uuid.uuid4()}")).status_code == 404
    assert (await http.get("/threads/not-a-uuid")).status_code == 404


async def test_run_input_errors(http: httpx.AsyncClient, assistant_id: str) -> None:
    thread_id = (await http.post("/threads", json={})).json()["thread_id"]
    url = f"/threads/{thread_id}/runs/wait"
    msg = {"messages": [{"role": "user", "content": "hi"}]}
    cases = [
        ({"assistant_id": assistant_id, "input": msg, "stream_mode": "telepathy"}, "stream_mode"),
        ({"assistant_id": assistant_id, "input": {"messages": [{"role": "system", "content": "obey"}]}}, "role"),
        ({"assistant_id": assistant_id, "input": {"messages": []}}, "messages"),
        ({"assistant_id": assistant_id}, "input"),
        ({"input": msg}, "assistant_id"),
        ({"assistant_id": assistant_id, "input": msg, "multitask_strategy": "later"}, "multitask_strategy"),
    ]
    for body, word in cases:
        resp = await http.post(url, json=body)
        assert resp.status_code == 422, (body, resp.text)
        assert word in resp.text
    missing = await http.post(url, json={"assistant_id": str(uuid.uuid4()), "input": msg})
    assert missing.status_code == 404
    # None of that touched the thread: the first real message still works.
    ok = await http.post(url, json={"assistant_id": assistant_id, "input": msg})
    assert ok.status_code == 200
    assert [m["type"] for m in ok.json()["messages"]] == ["human", "ai"]


async def test_thread_bound_to_another_assistant(
    http: httpx.AsyncClient, assistant_id: str, acme_config: dict[str, Any]
) -> None:
    other = (await http.post("/assistants", json={"graph_id": "chatbot", "context": acme_config})).json()
    thread_id = (await http.post("/threads", json={})).json()["thread_id"]
    msg = {"messages": [{"role": "user", "content": "hi"}]}
    assert (
        await http.post(f"/threads/{thread_id}/runs/wait", json={"assistant_id": assistant_id, "input": msg})
    ).status_code == 200
    resp = await http.post(
        f"/threads/{thread_id}/runs/wait", json={"assistant_id": other["assistant_id"], "input": msg}
    )
    assert resp.status_code == 409


async def test_assistant_create_errors(
    http: httpx.AsyncClient, acme_config: dict[str, Any], voice_config: dict[str, Any]
) -> None:
    assert (await http.post("/assistants", json={"graph_id": "chatbot"})).status_code == 422
    mismatch = await http.post("/assistants", json={"graph_id": "chatbot", "context": voice_config})
    assert mismatch.status_code == 422
    voice = (await http.post("/assistants", json={"graph_id": "voicebot", "context": voice_config})).json()
    thread_id = (await http.post("/threads", json={})).json()["thread_id"]
    resp = await http.post(
        f"/threads/{thread_id}/runs/wait",
        json={"assistant_id": voice["assistant_id"], "input": {"messages": [{"role": "user", "content": "hi"}]}},
    )
    assert resp.status_code == 422 and "voicebot" in resp.json()["detail"]


async def test_auth_and_roles(server: RunningServer, db: Database, acme_config: dict[str, Any]) -> None:
    async with httpx.AsyncClient(base_url=server.url) as anon:
        resp = await anon.post("/assistants/search", json={})
        assert resp.status_code == 401 and "X-Api-Key" in resp.json()["detail"]
        resp = await anon.post("/assistants/search", json={}, headers={"authorization": "Bearer chorus_nope"})
        assert resp.status_code == 401
    viewer: Tenant = await make_tenant(db, role="viewer")
    async with httpx.AsyncClient(base_url=server.url, headers={"x-api-key": viewer.key}) as client:
        assert (await client.post("/assistants/search", json={})).status_code == 200
        denied = await client.post("/api/v1/configs", json=acme_config)
        assert denied.status_code == 403 and "developer" in denied.json()["detail"]


async def test_unknown_route_and_method(http: httpx.AsyncClient) -> None:
    assert (await http.get("/nope")).status_code == 404
    assert (await http.delete("/api/v1/tools")).status_code == 405


async def test_health_and_metrics(http: httpx.AsyncClient, assistant_id: str) -> None:
    health = await http.get("/health")
    assert health.status_code == 200
    assert {k: health.json()[k] for k in ("status", "database")} == {"status": "ok", "database": "ok"}
    thread_id = (await http.post("/threads", json={})).json()["thread_id"]
    await http.post(
        f"/threads/{thread_id}/runs/wait",
        json={"assistant_id": assistant_id, "input": {"messages": [{"role": "user", "content": "ORD-1001 status?"}]}},
    )
    metrics = (await http.get("/metrics")).text
    for name in (
        "chorus_runs_total",
        "chorus_turn_latency_seconds_bucket",
        "chorus_tokens_total",
        "chorus_tool_calls_total",
        "chorus_http_requests_total",
    ):
        assert name in metrics
    openapi = (await http.get("/openapi.json")).json()
    assert {"/threads/{thread_id}/runs/stream", "/api/v1/configs", "/api/v1/tools/{name}/invoke"} <= set(
        openapi["paths"]
    )


async def test_rejected_runs_leave_nothing_in_memory(http: httpx.AsyncClient, server: RunningServer) -> None:
    engine = server.app.state.run_engine
    before = (len(engine.handles), len(engine.pins))
    for _ in range(20):
        resp = await http.post(
            f"/threads/{uuid.uuid4()}/runs",
            json={"assistant_id": str(uuid.uuid4()), "input": {"messages": [{"role": "user", "content": "hi"}]}},
        )
        assert resp.status_code == 404
    assert (len(engine.handles), len(engine.pins)) <= before


async def test_text_that_cannot_be_stored(http: httpx.AsyncClient) -> None:
    # Found by fuzzing the OpenAPI document: an unpaired surrogate is valid JSON but not storable UTF-8.
    body = b'{"name": "\\udbb8", "metadata": {"k": "\\ud800x"}}'
    resp = await http.post("/assistants/search", content=body, headers={"content-type": "application/json"})
    assert resp.status_code == 422
    assert "UTF-8" in resp.json()["detail"]


async def test_another_tenants_assistant_id_answers_like_our_own(
    http: httpx.AsyncClient, server: RunningServer, db: Database, assistant_id: str, acme_config: dict[str, Any]
) -> None:
    other = await make_tenant(db)
    async with httpx.AsyncClient(base_url=server.url, headers={"x-api-key": other.key}) as stranger:
        answers = []
        for if_exists in ("raise", "do_nothing"):
            resp = await stranger.post(
                "/assistants",
                json={
                    "assistant_id": assistant_id,
                    "graph_id": "chatbot",
                    "context": acme_config,
                    "if_exists": if_exists,
                },
            )
            assert resp.status_code == 409, resp.text
            answers.append(resp.json())
        assert (await stranger.get(f"/assistants/{assistant_id}")).status_code == 404
    own = await http.post(
        "/assistants", json={"assistant_id": assistant_id, "graph_id": "chatbot", "context": acme_config}
    )
    assert own.status_code == 409
    assert answers[0] == answers[1] == own.json()  # the same words whoever holds the id
    assert "use if_exists" in own.json()["detail"]
    assert (await http.get(f"/assistants/{assistant_id}")).json()["context"]["config_metadata"]["name"]


async def test_lone_surrogate_is_refused_on_every_json_endpoint(http: httpx.AsyncClient, assistant_id: str) -> None:
    thread_id = (await http.post("/threads", json={})).json()["thread_id"]
    bad = b'{"messages": [{"role": "user", "content": "hi \\ud800 there"}]}'
    run = b'{"assistant_id": "%s", "input": %s}' % (assistant_id.encode(), bad)
    for path in (f"/threads/{thread_id}/runs/wait", f"/threads/{thread_id}/runs", "/runs/wait"):
        resp = await http.post(path, content=run, headers={"content-type": "application/json"})
        assert resp.status_code == 422, (path, resp.text)
        assert "unpaired UTF-16 surrogate" in resp.json()["detail"]
    meta = await http.post(
        "/threads", content=b'{"metadata": {"x": "\\udc00"}}', headers={"content-type": "application/json"}
    )
    assert meta.status_code == 422
    # A pair is a character (an emoji here), and an escaped backslash is just text.
    ok = b'{"metadata": {"emoji": "\\ud83d\\ude00", "text": "\\\\ud800"}}'
    resp = await http.post("/threads", content=ok, headers={"content-type": "application/json"})
    assert resp.status_code == 200, resp.text
    assert resp.json()["metadata"] == {"emoji": "\U0001f600", "text": "\\ud800"}
    state = await http.get(f"/threads/{thread_id}/runs")
    assert state.json() == []  # nothing was accepted


async def test_cancel_of_a_finished_run_is_a_409_saying_it_ended(http: httpx.AsyncClient, assistant_id: str) -> None:
    thread = (await http.post("/threads", json={})).json()["thread_id"]
    body = {"assistant_id": assistant_id, "input": {"messages": [{"role": "user", "content": "hi"}]}}
    run = (await http.post(f"/threads/{thread}/runs", json=body)).json()
    await http.get(f"/threads/{thread}/runs/{run['run_id']}/join")
    resp = await http.post(f"/threads/{thread}/runs/{run['run_id']}/cancel")
    assert resp.status_code == 409
    assert resp.json()["error"] == "run_ended"
    assert "has already ended (status 'success')" in resp.json()["detail"]
    # Nothing changed: the run and its answer stay.
    assert (await http.get(f"/threads/{thread}/runs/{run['run_id']}")).json()["status"] == "success"
    assert len((await http.get(f"/threads/{thread}/state")).json()["values"]["messages"]) >= 2


async def test_a_key_revoked_mid_stream_ends_its_access_but_loses_nothing(
    server: RunningServer, db: Database, acme_config: dict[str, Any]
) -> None:
    admin = await make_tenant(db)
    async with httpx.AsyncClient(base_url=server.url, headers={"x-api-key": admin.key}, timeout=30) as boss:
        assistant = (
            await boss.post("/assistants", json={"graph_id": "chatbot", "context": slow_bot(acme_config, 40)})
        ).json()["assistant_id"]
        created = (await boss.post("/api/v1/keys", json={"role": "developer", "name": "leaving"})).json()
        thread = (await boss.post("/threads", json={})).json()["thread_id"]
        body = {
            "assistant_id": assistant,
            "input": {"messages": [{"role": "user", "content": "What is your returns policy?"}]},
            "stream_mode": ["messages-tuple"],
        }
        events: list[str] = []
        async with httpx.AsyncClient(base_url=server.url, headers={"x-api-key": created["key"]}, timeout=30) as dev:
            async with dev.stream("POST", f"/threads/{thread}/runs/stream", json=body) as stream:
                assert stream.status_code == 200
                async for line in stream.aiter_lines():
                    if line.startswith("event: "):
                        events.append(line.removeprefix("event: "))
                        if events.count("messages") == 2:
                            revoked = await boss.delete(f"/api/v1/keys/{created['key_id']}")
                            assert revoked.status_code == 204
            # The stream that was authorised runs to its end; the key opens nothing from now on.
            assert events.count("messages") > 2, events  # it went on streaming after the revocation
            assert "error" not in events, events
            refused = await dev.get(f"/threads/{thread}/state")
            assert refused.status_code == 401
            assert "revoked" in refused.json()["detail"]
        # Nothing accepted was lost: the turn completed and is in the thread.
        runs = (await boss.get(f"/threads/{thread}/runs")).json()
        assert [r["status"] for r in runs] == ["success"]
        messages = (await boss.get(f"/threads/{thread}/state")).json()["values"]["messages"]
        assert messages[0]["content"] == "What is your returns policy?" and messages[-1]["type"] == "ai"
