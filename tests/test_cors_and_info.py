"""A browser UI on another origin (agent-chat-ui on http://localhost:3000 by default) can call the API:
preflights are answered before authentication, the run's location headers are readable, other origins
get no CORS grant; `GET /info` answers as the Agent Server does; a malformed origin list stops the start."""

from __future__ import annotations

import httpx
import pytest

from chorus.agents.errors import ServerMisconfigured
from chorus.cors import parse_origins
from tests.conftest import RunningServer, Tenant

UI = "http://localhost:3000"


async def test_a_preflight_from_the_default_dev_origin_is_granted(server: RunningServer) -> None:
    async with httpx.AsyncClient(base_url=server.url) as client:
        resp = await client.options(
            "/threads/search",
            headers={
                "Origin": UI,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type,x-api-key,last-event-id,x-auth-scheme",
            },
        )
    assert resp.status_code == 200, resp.text
    assert resp.headers["access-control-allow-origin"] == UI
    allowed = resp.headers["access-control-allow-headers"].lower()
    assert "x-api-key" in allowed and "last-event-id" in allowed


async def test_responses_expose_the_run_location_to_the_ui(
    server: RunningServer, tenant: Tenant, assistant_id: str
) -> None:
    headers = {"Origin": UI, "x-api-key": tenant.key}
    async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=30) as client:
        thread = (await client.post("/threads", json={})).json()["thread_id"]
        body = {"assistant_id": assistant_id, "input": {"messages": [{"role": "user", "content": "hi"}]}}
        async with client.stream("POST", f"/threads/{thread}/runs/stream", json=body) as resp:
            await resp.aread()
        unauthorized = await client.post("/threads/search", json={}, headers={"x-api-key": "chorus_wrong"})
    exposed = resp.headers["access-control-expose-headers"]
    assert "Content-Location" in exposed and "Location" in exposed and "X-Pagination-Total" in exposed
    assert resp.headers["access-control-allow-origin"] == UI
    # An error is readable too: the UI can show why (not an opaque CORS failure).
    assert unauthorized.status_code == 401 and unauthorized.headers["access-control-allow-origin"] == UI


async def test_another_origin_gets_no_grant(server: RunningServer) -> None:
    async with httpx.AsyncClient(base_url=server.url) as client:
        resp = await client.options(
            "/threads/search",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
        )
    assert resp.status_code == 400 and "access-control-allow-origin" not in resp.headers


async def test_info_answers_like_the_agent_server(server: RunningServer) -> None:
    async with httpx.AsyncClient(base_url=server.url) as client:
        resp = await client.get("/info", headers={"Origin": UI})
    assert resp.status_code == 200
    body = resp.json()
    assert body["version"] and body["langgraph_py_version"].startswith("1.")
    assert body["flags"]["assistants"] is True


@pytest.mark.parametrize("value", ["localhost:3000", "ftp://x.example", "https://x.example/path", "https://"])
def test_a_malformed_origin_is_refused_with_the_fix(value: str) -> None:
    with pytest.raises(ServerMisconfigured, match="scheme://host"):
        parse_origins(value)


def test_origins_parse() -> None:
    assert parse_origins(" https://a.example/ , http://localhost:3000") == [
        "https://a.example",
        "http://localhost:3000",
    ]
    assert parse_origins("*") == ["*"] and parse_origins("") == []
