"""The calls API and what follows a call's end on a running server: the post-call job analyses the call with
its config's plan and POSTs the signed call.ended webhook; `GET /api/v1/calls` filters by config, outcome,
direction and time; every role of the tenant reads, another tenant hears 404; bad parameters are a 422 that
names the parameter."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from chorus.agents.storage.database import Database
from chorus.agents.tenancy.keys import create_api_key
from chorus.agents.tenancy.permissions import ROLES
from chorus.voice.call_facts import CallFacts, Direction, Outcome
from chorus.voice.call_recorder import CallRecorder
from chorus.voice.routing import route_call
from tests.conftest import RunningServer, Tenant, make_tenant
from tests.runs.test_webhooks import Receiver, receiver, secret_of, signed_by
from tests.voice.test_routing import number, scheduler, store

__all__ = ["receiver"]  # the fixture, shared with the run webhooks' tests

PLAN = {
    "summary": {"enabled": True},
    "structured_data": {
        "json_schema": {"type": "object", "properties": {"appointment_date": {"type": "string"}}},
    },
    "success_evaluation": {"rubric": "numeric_scale"},
}


async def voicebot(db: Database, tenant: Tenant, tmp_path: Path, **changes: Any) -> dict[str, Any]:
    raw = scheduler(number(), number()) | changes
    await store(db, tenant, tmp_path, raw)
    return raw


async def a_call(
    db: Database,
    tenant: Tenant,
    raw: dict[str, Any],
    *,
    outcome: Outcome = "completed",
    direction: Direction = "inbound",
    started: datetime | None = None,
) -> str:
    """A call of `raw` as the voice worker records it when it ends."""
    meta = json.dumps({"tenant_id": tenant.tenant_id, "config_id": raw["config_metadata"]["config_id"]})
    call_id = str(uuid.uuid4())
    route = await route_call(db, call_id=call_id, metadata=meta, dialed=None)
    started = started or datetime.now(UTC)
    facts = CallFacts(call_id=call_id, direction=direction, caller_number="+14155550100", started_at=started)
    recorder = CallRecorder(db, facts)
    await recorder.serve(route)
    recorder.transcript = [
        {"role": "bot", "text": raw["first_message"], "interrupted": False},
        {"role": "caller", "text": "I need an appointment on 2030-01-07.", "interrupted": False},
        {"role": "bot", "text": "You are booked for 2030-01-07 at 09:00.", "interrupted": False},
    ]
    if outcome != "completed":
        facts.settle(outcome, "the line dropped" if outcome == "failed" else None)
    facts.ended_at = started + timedelta(seconds=42)
    await recorder.finish()
    return call_id


async def analysed(http: httpx.AsyncClient, call_id: str, within: float = 20) -> dict[str, Any]:
    for _ in range(int(within * 10)):
        resp = await http.get(f"/api/v1/calls/{call_id}")
        assert resp.status_code == 200, resp.text
        if resp.json()["analysis_status"] != "pending":
            body: dict[str, Any] = resp.json()
            return body
        await asyncio.sleep(0.1)
    raise AssertionError(f"call {call_id} was not analysed")


async def test_an_ended_call_is_analysed_and_posted_signed(
    db: Database,
    tenant: Tenant,
    tmp_path: Path,
    http: httpx.AsyncClient,
    receiver: Receiver,
    server: RunningServer,
) -> None:
    raw = await voicebot(db, tenant, tmp_path, analysis_plan=PLAN, call_webhook={"url": receiver.url})
    call_id = await a_call(db, tenant, raw)
    call = await analysed(http, call_id)
    assert call["analysis_status"] == "done"
    assert call["analysis"]["summary"].startswith("The caller said: I need an appointment on 2030-01-07.")
    assert call["analysis"]["structured_data"] == {"data": {"appointment_date": "2030-01-07"}}
    assert call["analysis"]["success_evaluation"] == {"rubric": "numeric_scale", "value": 8}
    assert call["duration_s"] == 42 and call["outcome"] == "completed"
    assert [line["role"] for line in call["transcript"]] == ["bot", "caller", "bot"]
    await receiver.wait_for(1)
    headers, body, _ = receiver.received[0]
    assert headers["x-chorus-event"] == "call.ended"
    assert signed_by(secret_of(server, tenant), headers, body)
    payload = json.loads(body)
    assert payload["event"] == "call.ended" and payload["webhook_sent_at"]
    assert payload["call"]["call_id"] == call_id and payload["call"]["analysis"] == call["analysis"]
    assert payload["call"]["transcript"] == call["transcript"]
    deliveries = (await http.get("/api/v1/webhooks/deliveries")).json()
    assert any(d["delivery_id"] == headers["x-chorus-delivery"] and d["run_id"] is None for d in deliveries)


async def test_a_config_without_a_plan_is_not_analysed(
    db: Database, tenant: Tenant, tmp_path: Path, http: httpx.AsyncClient, server: RunningServer
) -> None:
    raw = await voicebot(db, tenant, tmp_path)
    call = await analysed(http, await a_call(db, tenant, raw, outcome="failed"))
    assert (call["analysis_status"], call["analysis"]) == ("none", None)
    assert (call["outcome"], call["failure"]) == ("failed", "the line dropped")


async def test_listing_filters_by_config_outcome_direction_and_time(
    db: Database, tenant: Tenant, tmp_path: Path, http: httpx.AsyncClient
) -> None:
    first, second = await voicebot(db, tenant, tmp_path), await voicebot(db, tenant, tmp_path)
    now = datetime.now(UTC)
    old = await a_call(db, tenant, first, started=now - timedelta(days=3))
    done = await a_call(db, tenant, first, started=now - timedelta(hours=1))
    out = await a_call(db, tenant, second, outcome="voicemail", direction="outbound", started=now - timedelta(hours=2))

    async def ids(**params: Any) -> list[str]:
        resp = await http.get("/api/v1/calls", params=params)
        assert resp.status_code == 200, resp.text
        return [c["call_id"] for c in resp.json()]

    key = first["config_metadata"]["config_id"]
    assert await ids(config_id=key) == [done, old]  # newest first
    assistant_id = (await http.get(f"/api/v1/calls/{done}")).json()["assistant_id"]
    assert await ids(config_id=assistant_id) == [done, old]
    assert await ids(outcome="voicemail", config_id=second["config_metadata"]["config_id"]) == [out]
    assert await ids(direction="outbound", config_id=second["config_metadata"]["config_id"]) == [out]
    since = (now - timedelta(days=1)).isoformat()
    assert await ids(config_id=key, since=since) == [done]
    assert await ids(config_id=key, until=since) == [old]
    naive = (now - timedelta(days=1)).replace(tzinfo=None).isoformat()  # UTC when no zone is given
    assert await ids(config_id=key, since=naive) == [done]
    assert await ids(config_id=key, limit=1, offset=1) == [old]
    listed = (await http.get("/api/v1/calls", params={"config_id": key, "limit": 1})).json()[0]
    assert "transcript" not in listed and listed["outcome"] == "completed"  # the list is light


async def test_every_role_reads_and_another_tenant_hears_404(
    db: Database, tenant: Tenant, tmp_path: Path, server: RunningServer
) -> None:
    call_id = await a_call(db, tenant, await voicebot(db, tenant, tmp_path))
    for role in ROLES:
        key = await create_api_key(db, tenant_id=tenant.tenant_id, role=role)
        async with httpx.AsyncClient(base_url=server.url, headers={"x-api-key": key}) as client:
            assert (await client.get(f"/api/v1/calls/{call_id}")).status_code == 200, role
            assert call_id in [c["call_id"] for c in (await client.get("/api/v1/calls")).json()]
    other = await make_tenant(db)
    async with httpx.AsyncClient(base_url=server.url, headers={"x-api-key": other.key}) as client:
        resp = await client.get(f"/api/v1/calls/{call_id}")
        assert resp.status_code == 404 and call_id in resp.json()["detail"]
        assert (await client.get("/api/v1/calls")).json() == []
    async with httpx.AsyncClient(base_url=server.url) as client:
        assert (await client.get(f"/api/v1/calls/{call_id}")).status_code == 401


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"outcome": "hung_up"}, "outcome"),
        ({"direction": "sideways"}, "direction"),
        ({"since": "yesterday"}, "since"),
        ({"until": "2026-13-40"}, "until"),
        ({"limit": "0"}, "limit"),
        ({"limit": "1000"}, "limit"),
        ({"offset": "-1"}, "offset"),
        ({"config_id": ""}, "config_id"),
        ({"since": "2026-11-22T10:00:00Z", "until": "2026-11-22T09:00:00Z"}, "until"),
    ],
)
async def test_bad_parameters_are_a_422_naming_the_field(
    http: httpx.AsyncClient, params: dict[str, str], field: str
) -> None:
    resp = await http.get("/api/v1/calls", params=params)
    assert resp.status_code == 422, resp.text
    assert any(e["path"].endswith(f".{field}") for e in resp.json()["errors"]), resp.json()


@pytest.mark.parametrize("call_id", ["not-a-call", str(uuid.uuid4()), "'; DROP TABLE calls; --"])
async def test_an_unknown_call_is_a_404(http: httpx.AsyncClient, call_id: str) -> None:
    resp = await http.get(f"/api/v1/calls/{call_id}")
    assert resp.status_code == 404 and resp.json()["error"] == "not_found"
