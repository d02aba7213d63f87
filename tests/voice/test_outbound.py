"""Outbound calls: `POST /api/v1/calls` and `chorus voice call` dispatch the worker with the call in its metadata
(checked against the stand-in LiveKit's decoded protobuf requests); bad numbers, chatbots, configs without
outbound calls, other tenants and wrong roles are refused clearly; the worker dials the primary trunk, then the
failover one, and a call neither connects is settled failed with both reasons."""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from livekit import api, rtc
from livekit.agents import JobContext

from chorus.agents.configs.models import BotConfig
from chorus.agents.secrets.master_key import load_vault_key
from chorus.agents.secrets.repository import SecretRepository
from chorus.agents.secrets.service import SecretVault
from chorus.agents.settings import Settings
from chorus.agents.storage.database import Database
from chorus.graphs.compiler import CompiledBot
from chorus.voice.call_facts import CallFacts
from chorus.voice.graph_llm import CallThread
from chorus.voice.outbound import OutboundJob, dial, serve_outbound
from chorus.voice.session_factory import build_session
from chorus.voice.simulate import offline_variant
from chorus.voice.sip_sync import AGENT_NAME, SipSync, desired_sip, outbound_providers, provider_credentials
from tests.conftest import Client, Tenant, example, make_tenant
from tests.test_cli import run_cli
from tests.voice.conftest import LiveKit
from tests.voice.test_routing import number, scheduler, store
from tests.voice.test_sip_sync import provider_secrets


async def voicebot_with_trunks(
    lk: LiveKit, db: Database, settings: Settings, tenant: Tenant, tmp_path: Path
) -> dict[str, Any]:
    """A stored voicebot whose SIP objects `chorus sip sync` made on the stand-in."""
    vault = SecretVault(SecretRepository(db), load_vault_key(settings))
    await provider_secrets(vault, tenant)
    raw = scheduler(number(), number())
    await store(db, tenant, tmp_path, raw)
    cfg = BotConfig.model_validate(raw)
    creds = {p: await provider_credentials(db, vault, tenant.tenant_id, p) for p, _ in outbound_providers(cfg).values()}
    desired = desired_sip(
        cfg, tenant_id=tenant.tenant_id, config_key=raw["config_metadata"]["config_id"], credentials=creds
    )
    async with lk.client() as client:
        await SipSync(client, desired).run()
    return raw


async def test_the_api_dispatches_the_worker_with_the_call(
    livekit: LiveKit,
    db: Database,
    tenant: Tenant,
    client_of: Client,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in livekit.env().items():
        monkeypatch.setenv(name, value)
    raw = scheduler(number(), number())
    await store(db, tenant, tmp_path, raw)
    key = raw["config_metadata"]["config_id"]
    developer = await client_of("developer")
    resp = await developer.post("/api/v1/calls", json={"config_id": key, "to": "+15551234567"})
    assert resp.status_code == 202, resp.text
    body = resp.json()
    assert body["status"] == "dispatched" and body["from"] == raw["sip_config"]["primary_endpoint"]
    (request,) = [req for method, req in livekit.state.requests if method == "CreateDispatch"]
    assert request.agent_name == AGENT_NAME
    assert request.room == body["room"] and request.room.startswith("healthcare_plus-out-")
    meta = json.loads(request.metadata)
    assert meta == {
        "tenant_id": tenant.tenant_id,
        "config_id": key,
        "call_id": body["call_id"],
        "to": "+15551234567",
        "from_number": raw["sip_config"]["primary_endpoint"],
        "direction": "outbound",
    }
    assert OutboundJob.parse(request.metadata) == OutboundJob(**meta)
    chosen = await developer.post(
        "/api/v1/calls", json={"config_id": key, "to": "+15551234567", "from": raw["sip_config"]["failover_endpoint"]}
    )
    assert chosen.status_code == 202 and chosen.json()["from"] == raw["sip_config"]["failover_endpoint"]


async def test_the_api_refuses_what_cannot_be_called(
    livekit: LiveKit,
    db: Database,
    tenant: Tenant,
    client_of: Client,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in livekit.env().items():
        monkeypatch.setenv(name, value)
    raw = scheduler(number(), number())
    await store(db, tenant, tmp_path, raw)
    key = raw["config_metadata"]["config_id"]
    quiet = scheduler(number(), number())
    quiet["sip_config"]["outbound_calls_enabled"] = False
    await store(db, tenant, tmp_path, quiet)
    chatbot = example("acme_support_bot")
    chatbot["config_metadata"]["config_id"] = f"acme-{uuid.uuid4().hex[:6]}"
    await store(db, tenant, tmp_path, chatbot)
    developer = await client_of("developer")

    async def post(client: httpx.AsyncClient, body: dict[str, Any]) -> httpx.Response:
        return await client.post("/api/v1/calls", json=body)

    for bad in ("555-1234", "15551234567", "+1 555 123 4567", "+0123456789", "", "+1555123456789012"):
        resp = await post(developer, {"config_id": key, "to": bad})
        assert resp.status_code == 422 and "E.164" in resp.text, (bad, resp.text)
    not_ours = await post(developer, {"config_id": key, "to": "+15551234567", "from": "+15550000000"})
    assert not_ours.status_code == 422 and "is not one of" in not_ours.json()["detail"]
    bot = await post(developer, {"config_id": chatbot["config_metadata"]["config_id"], "to": "+15551234567"})
    assert bot.status_code == 400 and "only a voicebot" in bot.json()["detail"]
    off = await post(developer, {"config_id": quiet["config_metadata"]["config_id"], "to": "+15551234567"})
    assert off.status_code == 409 and "outbound_calls_enabled" in off.json()["detail"]
    viewer = await client_of("viewer")
    assert (await post(viewer, {"config_id": key, "to": "+15551234567"})).status_code == 403
    other = await make_tenant(db, role="developer")
    async with httpx.AsyncClient(base_url=str(developer.base_url), headers={"x-api-key": other.key}) as stranger:
        theirs = await post(stranger, {"config_id": key, "to": "+15551234567"})
    assert theirs.status_code == 404 and tenant.tenant_id not in theirs.text
    assert [m for m, _ in livekit.state.requests] == []  # nothing refused reached LiveKit
    livekit.state.fail["CreateDispatch"] = (500, "internal", "dispatch is down")
    down = await post(developer, {"config_id": key, "to": "+15551234567"})
    assert down.status_code == 503 and "dispatch is down" in down.json()["detail"]
    monkeypatch.delenv("LIVEKIT_URL")
    unconfigured = await post(developer, {"config_id": key, "to": "+15551234567"})
    assert unconfigured.status_code == 503 and "LIVEKIT_URL" in unconfigured.json()["detail"]


async def test_the_worker_fails_over_to_the_second_trunk(
    livekit: LiveKit, db: Database, settings: Settings, tenant: Tenant, tmp_path: Path
) -> None:
    raw = await voicebot_with_trunks(livekit, db, settings, tenant, tmp_path)
    trunks = {t.name.rsplit(":", 1)[1]: t.sip_trunk_id for t in livekit.state.outbound.values()}
    job = OutboundJob(tenant.tenant_id, raw["config_metadata"]["config_id"], str(uuid.uuid4()), "+15551234567", "")
    livekit.state.dial[trunks["primary"]] = (486, "Busy Here")
    facts = CallFacts(call_id=job.call_id, direction="outbound")
    async with livekit.client() as lk:
        callee = await dial(lk, job, room="room-1", facts=facts)
    assert callee == f"callee-{job.call_id}"
    dialed = [req for method, req in livekit.state.requests if method == "CreateSIPParticipant"]
    assert [req.sip_trunk_id for req in dialed] == [trunks["primary"], trunks["failover"]]
    assert all(req.sip_call_to == "+15551234567" and req.wait_until_answered for req in dialed)
    assert facts.dial is not None and (facts.dial["trunk"], facts.dial["sip_status"]) == ("failover", 200)
    assert facts.dial["attempts"][0]["sip_status"] == 486 and facts.outcome is None
    # Both trunks failing: the call is settled failed with each trunk's reason.
    livekit.state.dial[trunks["failover"]] = (480, "Temporarily Unavailable")
    failed = CallFacts(call_id=job.call_id, direction="outbound")
    async with livekit.client() as lk:
        assert await dial(lk, job, room="room-2", facts=failed) is None
    assert failed.outcome == "failed" and failed.failure is not None
    assert "primary: 486 Busy Here" in failed.failure and "failover: 480 Temporarily Unavailable" in failed.failure


async def test_the_worker_without_trunks_or_livekit_settles_the_call_failed(livekit: LiveKit) -> None:
    job = OutboundJob(str(uuid.uuid4()), "never-synced", str(uuid.uuid4()), "+15551234567", "")
    facts = CallFacts(call_id=job.call_id, direction="outbound")
    async with livekit.client() as lk:
        assert await dial(lk, job, room="room-3", facts=facts) is None
    assert facts.outcome == "failed" and facts.failure is not None and "chorus sip sync" in facts.failure
    livekit.state.fail["ListSIPOutboundTrunk"] = (503, "unavailable", "SIP service down")
    down = CallFacts(call_id=job.call_id, direction="outbound")
    async with livekit.client() as lk:
        assert await dial(lk, job, room="room-4", facts=down) is None
    assert down.outcome == "failed" and down.failure is not None and "SIP service down" in down.failure


def test_outbound_job_metadata_is_checked() -> None:
    assert OutboundJob.parse(json.dumps({"tenant_id": "t", "config_id": "c"})) is None  # an inbound dispatch
    assert OutboundJob.parse("not json") is None
    with pytest.raises(Exception, match="malformed"):
        OutboundJob.parse(json.dumps({"direction": "outbound", "tenant_id": "t", "config_id": "c", "to": "+1"}))


async def test_cli_call(
    livekit: LiveKit, db: Database, settings: Settings, tenant: Tenant, tmp_path: Path, database_url: str
) -> None:
    raw = scheduler(number(), number())
    await store(db, tenant, tmp_path, raw)
    key = raw["config_metadata"]["config_id"]

    def cli(*args: str, **env: str) -> Any:
        return run_cli(
            ["voice", "call", *args, "--tenant", tenant.name], database_url, tmp_path, **{**livekit.env(), **env}
        )

    bad = await asyncio.to_thread(cli, key, "555-1234")
    assert bad.returncode == 2 and "E.164" in bad.stderr
    unconfigured = await asyncio.to_thread(cli, key, "+15551234567", LIVEKIT_API_KEY="")
    assert unconfigured.returncode == 2 and "LIVEKIT_API_KEY" in unconfigured.stderr
    unknown = await asyncio.to_thread(cli, "no-such-bot", "+15551234567")
    assert unknown.returncode == 2 and "no-such-bot" in unknown.stderr
    ok = await asyncio.to_thread(cli, key, "+15551234567")
    assert ok.returncode == 0, ok.stderr
    assert "dispatched" in ok.stdout and "+15551234567" in ok.stdout
    (request,) = [req for method, req in livekit.state.requests if method == "CreateDispatch"]
    assert json.loads(request.metadata)["config_id"] == key


@dataclass
class JobStandIn:
    """What `serve_outbound` uses of LiveKit's JobContext: the server API and the job's room (never connected
    here: no LiveKit server can run)."""

    api: api.LiveKitAPI
    room: rtc.Room


async def test_the_worker_hangs_up_a_call_no_trunk_connects(
    livekit: LiveKit, db: Database, settings: Settings, tenant: Tenant, tmp_path: Path, scheduler_graph: CompiledBot
) -> None:
    raw = await voicebot_with_trunks(livekit, db, settings, tenant, tmp_path)
    for trunk in livekit.state.outbound.values():
        livekit.state.dial[trunk.sip_trunk_id] = (503, "Service Unavailable")
    cfg = offline_variant(BotConfig.model_validate(raw))
    job = OutboundJob(tenant.tenant_id, raw["config_metadata"]["config_id"], str(uuid.uuid4()), "+15551234567", "")
    voice = build_session(cfg, scheduler_graph, CallThread(tenant.tenant_id, job.call_id))
    closed = asyncio.Event()
    voice.session.on("close", lambda _ev: closed.set())
    async with livekit.client() as lk:
        ctx = JobStandIn(lk, rtc.Room())
        await asyncio.wait_for(serve_outbound(cast(JobContext, ctx), voice, cfg, job, offline=True), timeout=30)
        await asyncio.wait_for(closed.wait(), timeout=10)
    facts = voice.facts
    assert (facts.direction, facts.dialed_number, facts.final_outcome()) == ("outbound", "+15551234567", "failed")
    assert facts.failure is not None and "primary: 503 Service Unavailable" in facts.failure
    assert "failover: 503 Service Unavailable" in facts.failure
    assert livekit.state.deleted_rooms == [ctx.room.name]  # the line is closed, the session too


async def test_the_worker_dials_then_screens_the_answer(
    livekit: LiveKit, db: Database, settings: Settings, tenant: Tenant, tmp_path: Path, scheduler_graph: CompiledBot
) -> None:
    """The primary trunk answers; no callee audio ever arrives in the stand-in room, so LiveKit's detection
    settles `uncertain` (participant missing) and the call goes on as with a person: the first message."""
    raw = await voicebot_with_trunks(livekit, db, settings, tenant, tmp_path)
    cfg = offline_variant(BotConfig.model_validate(raw))
    job = OutboundJob(tenant.tenant_id, raw["config_metadata"]["config_id"], str(uuid.uuid4()), "+15551234567", "")
    voice = build_session(cfg, scheduler_graph, CallThread(tenant.tenant_id, job.call_id))
    async with livekit.client() as lk:
        ctx = JobStandIn(lk, rtc.Room())
        try:
            await asyncio.wait_for(serve_outbound(cast(JobContext, ctx), voice, cfg, job, offline=True), timeout=30)
        finally:
            await voice.session.aclose()
    facts = voice.facts
    assert facts.dial is not None and (facts.dial["trunk"], facts.dial["sip_status"]) == ("primary", 200)
    (dialed,) = livekit.state.participants
    assert (dialed.room_name, dialed.sip_call_to) == (ctx.room.name, "+15551234567")
    assert facts.voicemail is not None and facts.voicemail["verdict"] == "uncertain"
    assert facts.outcome is None and livekit.state.deleted_rooms == []  # not hung up
    assert voice.agent.greeting is not None  # the first message was said
