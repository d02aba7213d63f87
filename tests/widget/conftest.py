"""A web shop that embeds the widget: a tenant's bot, a publishable key for it, clients that call the widget
API from the shop's origin (as the widget's script would), and SSE reading."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from chorus.webchat.visitor_tokens import VisitorTokens
from tests.conftest import RunningServer, Tenant

ORIGIN = "https://shop.example.com"
HELLO = {"input": {"messages": [{"role": "user", "content": "Where is my order ORD-1001?"}]}}


@dataclass
class Event:
    name: str
    id: str | None
    data: Any


async def read_sse(response: httpx.Response, *, stop_after: int | None = None) -> list[Event]:
    """The events of an SSE response (all, or the first `stop_after` with an id: a dropped connection)."""
    events: list[Event] = []
    name, event_id, data = "", None, None
    async for line in response.aiter_lines():
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            data = json.loads(line[6:])
        elif line.startswith("id: "):
            event_id = line[4:]
        elif line == "" and name:
            events.append(Event(name, event_id, data))
            name, event_id, data = "", None, None
            if stop_after is not None and len([e for e in events if e.id]) >= stop_after:
                break
    return events


@dataclass
class Site:
    """A shop with the widget: its publishable key (for one bot) and the widget API's base URL."""

    server: RunningServer
    tenant: Tenant
    admin: httpx.AsyncClient
    assistant_id: str
    key: str
    key_id: str
    clients: list[httpx.AsyncClient] = field(default_factory=list)

    def client(self, *, origin: str | None = ORIGIN, token: str | None = None, key: bool = False) -> httpx.AsyncClient:
        headers = {}
        if origin is not None:
            headers["Origin"] = origin
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        if key:
            headers["X-Publishable-Key"] = self.key
        client = httpx.AsyncClient(base_url=self.server.url, headers=headers, timeout=30)
        self.clients.append(client)
        return client

    def tokens(self) -> VisitorTokens:
        tokens: VisitorTokens = self.server.app.state.visitor_tokens
        return tokens

    async def visitor(self, *, origin: str = ORIGIN) -> tuple[httpx.AsyncClient, str]:
        """A new visitor: a client holding its token, and the token."""
        resp = await self.client(origin=origin, key=True).post("/widget/v1/session")
        assert resp.status_code == 200, resp.text
        token = resp.json()["visitor_token"]
        return self.client(origin=origin, token=token), token

    async def thread(self, visitor: httpx.AsyncClient) -> str:
        resp = await visitor.post("/widget/v1/threads", json={})
        assert resp.status_code == 200, resp.text
        return str(resp.json()["thread_id"])


async def create_key(admin: httpx.AsyncClient, assistant_ids: list[str], **options: Any) -> dict[str, Any]:
    body = {"assistant_ids": assistant_ids, "allowed_origins": [ORIGIN], **options}
    resp = await admin.post("/api/v1/publishable-keys", json=body)
    assert resp.status_code == 201, resp.text
    created: dict[str, Any] = resp.json()
    return created


async def make_assistant(admin: httpx.AsyncClient, config: dict[str, Any], graph_id: str = "chatbot") -> str:
    config = {**config, "config_metadata": {**config["config_metadata"], "name": f"shop-{uuid.uuid4().hex[:6]}"}}
    resp = await admin.post("/assistants", json={"graph_id": graph_id, "context": config})
    assert resp.status_code == 200, resp.text
    return str(resp.json()["assistant_id"])


@pytest.fixture
async def site(
    server: RunningServer, tenant: Tenant, http: httpx.AsyncClient, acme_config: dict[str, Any]
) -> AsyncIterator[Site]:
    assistant_id = await make_assistant(http, acme_config)
    created = await create_key(http, [assistant_id], name="shop")
    s = Site(server, tenant, http, assistant_id, created["key"], created["key_id"])
    yield s
    for client in s.clients:
        await client.aclose()
