"""Run webhooks: a run that ends POSTs itself, signed, to its `webhook` (a real receiver on loopback, so private
destinations are allowed here as an operator would); a failing receiver is retried under the same delivery
id, a 4xx is not; cron runs carry their cron's webhook; a private, link-local, credentialed or non-http
webhook is a 422 that leaves nothing behind; another tenant never sees a delivery; the signing secret
appears in no response and no log."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request, Response
from langgraph_sdk.client import LangGraphClient

from chorus.agents.storage.database import Database
from chorus.runs.webhooks_repository import prune_deliveries
from tests.conftest import RunningServer, Tenant, make_tenant
from tests.fakes import serve
from tests.test_cli import run_cli

HELLO = {"messages": [{"role": "user", "content": "Where is my order ORD-1001?"}]}


@dataclass
class Receiver:
    """A webhook endpoint on loopback: answers each request with the next scripted status (then 200)."""

    url: str = ""
    script: list[int | tuple[int, dict[str, str]]] = field(default_factory=list)  # status, or (status, headers)
    received: list[tuple[dict[str, str], bytes, str]] = field(default_factory=list)  # headers, body, path+query
    times: list[float] = field(default_factory=list)

    async def wait_for(self, count: int, within: float = 20) -> None:
        for _ in range(int(within * 20)):
            if len(self.received) >= count:
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"the receiver got {len(self.received)} request(s), expected {count}")

    def payloads(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _, body, _ in self.received]


@pytest.fixture
async def receiver(monkeypatch: pytest.MonkeyPatch, server: RunningServer) -> AsyncIterator[Receiver]:
    monkeypatch.setenv("CHORUS_HTTP_TOOLS_ALLOW_PRIVATE", "1")  # the receiver listens on loopback
    sender = server.app.state.webhooks
    monkeypatch.setattr(sender, "retry_base_s", 0.2)  # retries in a fraction of a second, not minutes
    hook = Receiver()
    app = FastAPI()

    @app.post("/hook")
    async def hook_endpoint(request: Request) -> Response:
        hook.received.append((dict(request.headers), await request.body(), f"{request.url.path}?{request.url.query}"))
        hook.times.append(time.monotonic())
        answer = hook.script.pop(0) if hook.script else 200
        status, headers = answer if isinstance(answer, tuple) else (answer, {})
        return Response(status_code=status, headers=headers)

    async with serve(app) as base:
        hook.url = f"{base}/hook?token=t0ken"
        yield hook


def secret_of(server: RunningServer, tenant: Tenant) -> str:
    secret: str = server.app.state.webhooks.signer.secret(tenant.tenant_id)
    return secret


def signed_by(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """The check docs/api.md tells receivers to make, written here independently of Chorus's code."""
    fields = dict(part.split("=", 1) for part in headers["x-chorus-signature"].split(","))
    expected = hmac.new(secret.encode(), fields["t"].encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, fields["v1"]) and abs(time.time() - int(fields["t"])) < 300


async def deliveries(http: httpx.AsyncClient, **params: Any) -> list[dict[str, Any]]:
    resp = await http.get("/api/v1/webhooks/deliveries", params=params)
    assert resp.status_code == 200, resp.text
    rows: list[dict[str, Any]] = resp.json()
    return rows


async def wait_for_outcome(http: httpx.AsyncClient, run_id: str, within: float = 20) -> dict[str, Any]:
    for _ in range(int(within * 10)):
        rows = await deliveries(http, run_id=run_id)
        if rows and rows[0]["status"] != "pending":
            return rows[0]
        await asyncio.sleep(0.1)
    raise AssertionError(f"the delivery of run {run_id} did not end")


async def test_a_finished_run_posts_itself_signed_through_the_sdk(
    sdk: LangGraphClient,
    http: httpx.AsyncClient,
    assistant_id: str,
    receiver: Receiver,
    server: RunningServer,
    tenant: Tenant,
    db: Database,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    thread = (await sdk.threads.create())["thread_id"]
    run: Any = await sdk.runs.create(thread, assistant_id, input=HELLO, webhook=receiver.url, metadata={"k": 1})
    assert run["kwargs"]["webhook"] == receiver.url
    await sdk.runs.join(thread, run["run_id"])
    await receiver.wait_for(1)
    headers, body, path = receiver.received[0]
    assert path == "/hook?token=t0ken"  # the query string (a receiver's own token) goes as given
    assert headers["content-type"] == "application/json"
    assert headers["x-chorus-event"] == "run.completed"
    assert uuid.UUID(headers["x-chorus-delivery"]) and headers["x-chorus-attempt"] == "1"
    secret = secret_of(server, tenant)
    assert signed_by(secret, headers, body)
    assert not signed_by(secret, headers, body.replace(b"success", b"failure"))  # the body is what is signed
    other = secret_of(server, await make_tenant(db))
    assert other != secret and not signed_by(other, headers, body)  # one secret per tenant
    payload = json.loads(body)
    assert {payload["run_id"], payload["thread_id"], payload["assistant_id"]} == {run["run_id"], thread, assistant_id}
    assert payload["status"] == "success" and payload["error"] is None
    assert payload["metadata"]["k"] == 1 and payload["kwargs"]["webhook"] == receiver.url
    assert payload["values"]["messages"][-1]["type"] == "ai"
    assert payload["values"] == (await sdk.threads.get_state(thread))["values"]
    assert payload["webhook_sent_at"] and payload["created_at"] and payload["updated_at"]
    # Recorded for the tenant, and for no one else.
    delivery = await wait_for_outcome(http, run["run_id"])
    assert delivery["delivery_id"] == headers["x-chorus-delivery"]
    assert (delivery["status"], delivery["attempts"], delivery["last_status_code"]) == ("delivered", 1, 200)
    stranger = (await make_tenant(db)).key
    resp = await http.get("/api/v1/webhooks/deliveries", headers={"x-api-key": stranger})
    assert resp.status_code == 200 and resp.json() == []
    # The secret is in no response and no log line.
    answers = [await http.get(f"/threads/{thread}/runs/{run['run_id']}"), await http.get("/api/v1/webhooks/deliveries")]
    assert all(secret not in a.text for a in answers)
    assert secret not in caplog.text and secret[len("whsec_") :] not in caplog.text


async def test_a_failing_receiver_gets_every_attempt_under_one_delivery_id(
    http: httpx.AsyncClient, assistant_id: str, receiver: Receiver, server: RunningServer, tenant: Tenant
) -> None:
    receiver.script = [503, 500]  # then 200
    body = {"assistant_id": assistant_id, "input": HELLO, "webhook": receiver.url}
    done = await http.post("/runs/wait", json=body)  # stateless: its thread is deleted, the delivery stays
    assert done.status_code == 200, done.text
    await receiver.wait_for(3)
    ids = {headers["x-chorus-delivery"] for headers, _, _ in receiver.received}
    assert len(ids) == 1
    assert [headers["x-chorus-attempt"] for headers, _, _ in receiver.received] == ["1", "2", "3"]
    secret = secret_of(server, tenant)
    assert all(signed_by(secret, headers, raw) for headers, raw, _ in receiver.received)
    run_id = receiver.payloads()[0]["run_id"]
    delivery = await wait_for_outcome(http, run_id)
    assert (delivery["status"], delivery["attempts"], delivery["last_status_code"]) == ("delivered", 3, 200)
    metrics = (await http.get("/metrics")).text
    assert 'chorus_webhook_attempts_total{outcome="retried"}' in metrics
    await asyncio.sleep(0.5)
    assert len(receiver.received) == 3  # delivered: no more attempts


async def test_a_short_retry_after_is_honoured(http: httpx.AsyncClient, assistant_id: str, receiver: Receiver) -> None:
    receiver.script = [(429, {"Retry-After": "2"})]  # backoff here is 0.2 s: the wait is the receiver's
    thread = (await http.post("/threads", json={})).json()["thread_id"]
    body = {"assistant_id": assistant_id, "input": HELLO, "webhook": receiver.url}
    assert (await http.post(f"/threads/{thread}/runs/wait", json=body)).status_code == 200
    await receiver.wait_for(2)
    assert receiver.times[1] - receiver.times[0] >= 1.8
    delivery = await wait_for_outcome(http, receiver.payloads()[0]["run_id"])
    assert (delivery["status"], delivery["attempts"]) == ("delivered", 2)


async def test_a_4xx_ends_the_delivery_and_a_failed_run_reports_its_error(
    http: httpx.AsyncClient, assistant_id: str, receiver: Receiver
) -> None:
    receiver.script = [410]
    thread = (await http.post("/threads", json={})).json()["thread_id"]
    # A run that fails (recursion limit) still reports, with its error.
    body = {"assistant_id": assistant_id, "input": HELLO, "webhook": receiver.url, "config": {"recursion_limit": 1}}
    resp = await http.post(f"/threads/{thread}/runs/wait", json=body)
    assert resp.status_code == 200, resp.text
    await receiver.wait_for(1)
    payload = receiver.payloads()[0]
    assert payload["status"] == "error" and "recursion" in payload["error"].lower()
    delivery = await wait_for_outcome(http, payload["run_id"])
    assert (delivery["status"], delivery["attempts"], delivery["last_status_code"]) == ("failed", 1, 410)
    assert "410" in delivery["last_error"]
    await asyncio.sleep(1.0)
    assert len(receiver.received) == 1  # not retried


async def test_a_run_cancelled_before_it_starts_reports_interrupted(
    sdk: LangGraphClient, assistant_id: str, receiver: Receiver
) -> None:
    thread = (await sdk.threads.create())["thread_id"]
    run: Any = await sdk.runs.create(thread, assistant_id, input=HELLO, webhook=receiver.url, after_seconds=60)
    await sdk.runs.cancel(thread, run["run_id"])
    await receiver.wait_for(1)
    assert receiver.payloads()[0]["status"] == "interrupted"
    assert receiver.payloads()[0]["run_id"] == run["run_id"]


async def test_a_cron_passes_its_webhook_to_each_run(
    sdk: LangGraphClient, http: httpx.AsyncClient, assistant_id: str, receiver: Receiver, db: Database
) -> None:
    cron: Any = await sdk.crons.create(assistant_id, schedule="0 9 * * *", input=HELLO, webhook=receiver.url)
    assert cron["payload"]["webhook"] == receiver.url
    moved = receiver.url.replace("token=t0ken", "token=n3w")
    resp = await http.patch(f"/runs/crons/{cron['cron_id']}", json={"webhook": moved})
    assert resp.status_code == 200 and resp.json()["payload"]["webhook"] == moved
    async with db.connection() as conn:
        await conn.execute("UPDATE queue_jobs SET run_after = now() WHERE lane = %s", (f"cron:{cron['cron_id']}",))
        await conn.execute("SELECT pg_notify('chorus_jobs', 'cron')")
    await receiver.wait_for(1)
    path = receiver.received[0][2]
    assert path == "/hook?token=n3w"
    payload = receiver.payloads()[0]
    assert payload["status"] == "success" and payload["values"]["messages"]
    await sdk.crons.delete(cron["cron_id"])


async def test_webhooks_chorus_may_not_call_are_422s_that_leave_nothing_behind(
    http: httpx.AsyncClient, assistant_id: str, sdk: LangGraphClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CHORUS_HTTP_TOOLS_ALLOW_PRIVATE", raising=False)
    thread = (await http.post("/threads", json={})).json()["thread_id"]
    before = await sdk.threads.count()
    refused = [
        ("http://127.0.0.1:9/hook", "private address"),
        ("http://10.1.2.3/hook", "private address"),
        ("http://169.254.169.254/latest/meta-data", "link-local"),
        ("ftp://hooks.example.com/x", "http:// or https://"),
        ("https://user:pw@hooks.example.com/x", "credentials"),
        ("hooks.example.com/x", "http:// or https://"),
    ]
    for url, says in refused:
        body = {"assistant_id": assistant_id, "input": HELLO, "webhook": url}
        for path in (f"/threads/{thread}/runs", f"/threads/{thread}/runs/wait", "/runs/wait", "/runs/stream"):
            resp = await http.post(path, json=body)
            assert resp.status_code == 422 and says in resp.text, (path, url, resp.text)
            assert "$.webhook" in [e["path"] for e in resp.json()["errors"]], resp.json()
    batch = [
        {"assistant_id": assistant_id, "input": HELLO},
        {"assistant_id": assistant_id, "input": HELLO, "webhook": refused[0][0]},
    ]
    resp = await http.post("/runs/batch", json=batch)
    assert resp.status_code == 422 and "$[1].webhook" in [e["path"] for e in resp.json()["errors"]], resp.text
    cron = {"schedule": "0 9 * * *", "assistant_id": assistant_id, "input": HELLO, "webhook": refused[0][0]}
    resp = await http.post("/runs/crons", json=cron)
    assert resp.status_code == 422 and "private address" in resp.text, resp.text
    # Nothing half-written: no run, no new thread, no cron.
    assert await sdk.runs.list(thread) == []
    assert await sdk.threads.count() == before
    assert await sdk.crons.count() == 0
    # Link-local stays refused when private destinations are allowed.
    monkeypatch.setenv("CHORUS_HTTP_TOOLS_ALLOW_PRIVATE", "1")
    body = {"assistant_id": assistant_id, "input": HELLO, "webhook": "http://169.254.169.254/x"}
    resp = await http.post(f"/threads/{thread}/runs", json=body)
    assert resp.status_code == 422 and "link-local" in resp.text


async def test_a_destination_that_turns_private_is_refused_at_delivery(
    http: httpx.AsyncClient, assistant_id: str, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Checked again when sending (a host that resolves elsewhere by then): refused for good, not sent."""
    thread = (await http.post("/threads", json={})).json()["thread_id"]
    body = {"assistant_id": assistant_id, "input": HELLO, "webhook": receiver.url, "after_seconds": 1}
    run = (await http.post(f"/threads/{thread}/runs", json=body)).json()
    monkeypatch.delenv("CHORUS_HTTP_TOOLS_ALLOW_PRIVATE")
    await http.get(f"/threads/{thread}/runs/{run['run_id']}/join")
    delivery = await wait_for_outcome(http, run["run_id"])
    assert delivery["status"] == "failed" and "private address" in delivery["last_error"]
    assert receiver.received == []


async def test_the_deliveries_list_checks_its_filters(http: httpx.AsyncClient) -> None:
    assert (await http.get("/api/v1/webhooks/deliveries", params={"run_id": "nope"})).status_code == 422
    assert (await http.get("/api/v1/webhooks/deliveries", params={"status": "lost"})).status_code == 422


def test_the_operator_prints_a_tenants_signing_secret(
    database_url: str, chorus_home: Path, server: RunningServer, tenant: Tenant
) -> None:
    """`chorus webhooks signing-secret` (the server's home, so the same vault key) prints what the server
    signs with; an unknown tenant is an error, not a new tenant."""
    out = run_cli(["webhooks", "signing-secret", "--tenant", tenant.name], database_url, chorus_home)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == secret_of(server, tenant) and out.stdout.startswith("whsec_")
    missing = run_cli(
        ["webhooks", "signing-secret", "--tenant", f"nobody-{uuid.uuid4().hex[:6]}"], database_url, chorus_home
    )
    assert missing.returncode == 1 and "no tenant called" in missing.stderr


async def test_finished_deliveries_are_pruned_after_their_retention(
    http: httpx.AsyncClient, assistant_id: str, receiver: Receiver, db: Database, tenant: Tenant
) -> None:
    body = {"assistant_id": assistant_id, "input": HELLO, "webhook": receiver.url}
    assert (await http.post("/runs/wait", json=body)).status_code == 200
    await receiver.wait_for(1)
    run_id = receiver.payloads()[0]["run_id"]
    await wait_for_outcome(http, run_id)
    async with db.connection() as conn:  # a pending delivery of the same age stays: it is not finished
        await conn.execute(
            "INSERT INTO webhook_deliveries (delivery_id, tenant_id, run_id, thread_id, url, payload, updated_at)"
            " VALUES (%s, %s, %s, %s, 'https://example.com/hook', '{}', now() - interval '40 days')",
            (uuid.uuid4(), tenant.tenant_id, uuid.uuid4(), uuid.uuid4()),
        )
    assert await prune_deliveries(db) == 0  # today's delivery is within its retention
    async with db.connection() as conn:
        await conn.execute(
            "UPDATE webhook_deliveries SET updated_at = now() - interval '31 days' WHERE run_id = %s", (run_id,)
        )
    assert await prune_deliveries(db) == 1
    async with db.connection() as conn:
        cur = await conn.execute("SELECT status FROM webhook_deliveries WHERE tenant_id = %s", (tenant.tenant_id,))
        assert [r["status"] for r in await cur.fetchall()] == ["pending"]
