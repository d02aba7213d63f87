"""`chorus sip sync` against a stand-in of LiveKit's Twirp API that decodes the real protobuf requests: the first
run creates the inbound trunk, the dispatch rule and both outbound trunks; the next changes nothing; a change
touches only what it changes; LiveKit's errors and missing settings are said clearly, secrets never shown."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from chorus.agents.configs.models import BotConfig
from chorus.agents.errors import BadRequest, NotFound
from chorus.agents.secrets.master_key import load_vault_key
from chorus.agents.secrets.repository import Actor, SecretRepository
from chorus.agents.secrets.service import SecretVault
from chorus.agents.settings import Settings
from chorus.agents.storage.database import Database
from chorus.voice.sip_sync import (
    AGENT_NAME,
    SipSync,
    desired_sip,
    load_voicebot,
    outbound_providers,
    provider_credentials,
)
from tests.conftest import Tenant, example, make_tenant
from tests.fakes import LiveKitState
from tests.test_cli import run_cli
from tests.voice.conftest import LiveKit
from tests.voice.test_routing import number, scheduler, store

PASSWORD = "twilio-pa55word-never-shown"


@pytest.fixture
def vault(db: Database, settings: Settings) -> SecretVault:
    return SecretVault(SecretRepository(db), load_vault_key(settings))


async def provider_secrets(vault: SecretVault, tenant: Tenant) -> None:
    for name, value in {
        "SIP_TWILIO_ADDRESS": "chorus-test.pstn.twilio.com",
        "SIP_TWILIO_USERNAME": "chorus",
        "SIP_TWILIO_PASSWORD": PASSWORD,
        "SIP_TELNYX_ADDRESS": "sip.telnyx.com",
    }.items():
        await vault.create(tenant.tenant_id, name=name, value=value, description=None, actor=Actor("test"))


async def sync(
    lk: LiveKit, db: Database, vault: SecretVault, tenant: Tenant, raw: dict[str, Any], *, dry_run: bool = False
) -> SipSync:
    cfg = BotConfig.model_validate(raw)
    creds = {p: await provider_credentials(db, vault, tenant.tenant_id, p) for p, _ in outbound_providers(cfg).values()}
    key = raw["config_metadata"]["config_id"]
    desired = desired_sip(cfg, tenant_id=tenant.tenant_id, config_key=key, credentials=creds)
    async with lk.client() as client:
        run = SipSync(client, desired, dry_run=dry_run)
        await run.run()
    return run


def sent(state: LiveKitState, method: str) -> list[Any]:
    return [req for m, req in state.requests if m == method]


async def test_first_run_creates_the_four_objects_and_the_second_changes_nothing(
    livekit: LiveKit, db: Database, vault: SecretVault, tenant: Tenant
) -> None:
    await provider_secrets(vault, tenant)
    primary, failover = number(), number()
    raw = scheduler(primary, failover)
    key = raw["config_metadata"]["config_id"]
    await sync(livekit, db, vault, tenant, raw)
    state = livekit.state
    assert sorted(state.writes()) == sorted(
        ["CreateSIPInboundTrunk", "CreateSIPDispatchRule", "CreateSIPOutboundTrunk", "CreateSIPOutboundTrunk"]
    )
    (inbound,) = sent(state, "CreateSIPInboundTrunk")
    assert list(inbound.trunk.numbers) == [primary, failover]
    assert inbound.trunk.name == f"chorus:{key}:inbound"
    (rule,) = sent(state, "CreateSIPDispatchRule")
    info = rule.dispatch_rule
    assert list(info.trunk_ids) == list(state.inbound)  # the trunk just made
    assert info.rule.dispatch_rule_individual.room_prefix == "healthcare_plus-"
    (agent,) = info.room_config.agents
    assert agent.agent_name == AGENT_NAME
    assert json.loads(agent.metadata) == {"tenant_id": tenant.tenant_id, "config_id": key, "direction": "inbound"}
    trunks = {t.trunk.name: t.trunk for t in sent(state, "CreateSIPOutboundTrunk")}
    twilio, telnyx = trunks[f"chorus:{key}:outbound:primary"], trunks[f"chorus:{key}:outbound:failover"]
    assert (twilio.address, list(twilio.numbers), twilio.auth_username, twilio.auth_password) == (
        "chorus-test.pstn.twilio.com",
        [primary],
        "chorus",
        PASSWORD,
    )
    assert (telnyx.address, list(telnyx.numbers), telnyx.auth_password) == ("sip.telnyx.com", [failover], "")
    assert PASSWORD not in twilio.metadata  # only a fingerprint of the credentials
    state.requests.clear()
    again = await sync(livekit, db, vault, tenant, raw)
    assert state.writes() == []
    assert {c.action for c in again.changes} == {"unchanged"}


async def test_a_change_updates_exactly_what_it_changes(
    livekit: LiveKit, db: Database, vault: SecretVault, tenant: Tenant
) -> None:
    await provider_secrets(vault, tenant)
    primary = number()
    raw = scheduler(primary, number())
    await sync(livekit, db, vault, tenant, raw)
    state = livekit.state
    primary_trunk = next(t for t in state.outbound.values() if t.name.endswith(":primary"))
    state.requests.clear()
    await vault.rotate(
        tenant.tenant_id, "SIP_TWILIO_PASSWORD", value="rotated-password", reason=None, actor=Actor("test")
    )
    run = await sync(livekit, db, vault, tenant, raw)
    (update,) = sent(state, "UpdateSIPOutboundTrunk")
    assert state.writes() == ["UpdateSIPOutboundTrunk"]
    assert update.sip_trunk_id == primary_trunk.sip_trunk_id and update.replace.auth_password == "rotated-password"
    assert [c.details for c in run.changes if c.action == "update"] == [["credentials changed"]]
    state.requests.clear()
    moved = number()
    raw["sip_config"]["failover_endpoint"] = moved
    await sync(livekit, db, vault, tenant, raw)
    assert sorted(state.writes()) == ["UpdateSIPInboundTrunk", "UpdateSIPOutboundTrunk"]
    (inbound,) = sent(state, "UpdateSIPInboundTrunk")
    assert list(inbound.replace.numbers) == [primary, moved]
    (outbound,) = sent(state, "UpdateSIPOutboundTrunk")
    assert outbound.replace.name.endswith(":failover") and list(outbound.replace.numbers) == [moved]
    state.requests.clear()
    raw["livekit_config"]["room_prefix"] = "clinic"
    await sync(livekit, db, vault, tenant, raw)
    assert state.writes() == ["UpdateSIPDispatchRule"]
    (rule,) = sent(state, "UpdateSIPDispatchRule")
    assert rule.replace.rule.dispatch_rule_individual.room_prefix == "clinic-"
    assert list(rule.replace.trunk_ids) == list(state.inbound)  # still on the same inbound trunk


async def test_dry_run_plans_without_writing_and_disabled_parts_are_removed(
    livekit: LiveKit, db: Database, vault: SecretVault, tenant: Tenant
) -> None:
    await provider_secrets(vault, tenant)
    raw = scheduler(number(), number())
    plan = await sync(livekit, db, vault, tenant, raw, dry_run=True)
    assert livekit.state.writes() == []
    assert [c.action for c in plan.changes] == ["create"] * 4
    await sync(livekit, db, vault, tenant, raw)
    raw["sip_config"]["outbound_calls_enabled"] = False
    livekit.state.requests.clear()
    await sync(livekit, db, vault, tenant, raw)
    assert livekit.state.writes() == ["DeleteSIPTrunk", "DeleteSIPTrunk"]
    assert livekit.state.outbound == {} and len(livekit.state.inbound) == 1


async def test_other_configs_objects_are_left_alone(
    livekit: LiveKit, db: Database, vault: SecretVault, tenant: Tenant
) -> None:
    await provider_secrets(vault, tenant)
    first, second = scheduler(number(), number()), scheduler(number(), number())
    await sync(livekit, db, vault, tenant, first)
    await sync(livekit, db, vault, tenant, second)
    assert len(livekit.state.inbound) == 2 and len(livekit.state.outbound) == 4 and len(livekit.state.rules) == 2
    # Another tenant with a config of the same id gets objects of its own, tagged with its tenant.
    other = await make_tenant(db)
    await provider_secrets(vault, other)
    same_id = scheduler(number(), number())
    same_id["config_metadata"]["config_id"] = first["config_metadata"]["config_id"]
    before = {k: v.SerializeToString() for k, v in livekit.state.inbound.items()}
    await sync(livekit, db, vault, other, same_id)
    assert len(livekit.state.inbound) == 3 and len(livekit.state.rules) == 3
    assert all(livekit.state.inbound[k].SerializeToString() == v for k, v in before.items())
    theirs = [r for r in livekit.state.rules.values() if other.tenant_id in r.room_config.agents[0].metadata]
    assert len(theirs) == 1


async def test_cli_syncs_then_says_no_changes_and_never_prints_a_secret(
    livekit: LiveKit, db: Database, vault: SecretVault, tenant: Tenant, settings: Settings, database_url: str
) -> None:
    await provider_secrets(vault, tenant)
    path = settings.home / f"{tenant.name}.json"
    path.write_text(json.dumps(scheduler(number(), number())))
    args = ["sip", "sync", str(path), "--tenant", tenant.name]
    first = await asyncio.to_thread(run_cli, args, database_url, settings.home, **livekit.env())
    assert first.returncode == 0, first.stderr
    assert first.stdout.count("create ") == 4, first.stdout
    assert "not stored" in first.stdout or "no stored config" in first.stdout  # a file not applied yet
    second = await asyncio.to_thread(run_cli, args, database_url, settings.home, **livekit.env())
    assert second.returncode == 0 and "no changes" in second.stdout, second.stdout + second.stderr
    for out in (first, second):
        assert PASSWORD not in out.stdout + out.stderr


async def test_cli_errors_are_clear(
    livekit: LiveKit, db: Database, vault: SecretVault, tenant: Tenant, settings: Settings, database_url: str
) -> None:
    path = settings.home / f"{tenant.name}-errors.json"
    path.write_text(json.dumps(scheduler(number(), number())))
    args = ["sip", "sync", str(path), "--tenant", tenant.name]

    async def cli(**env: str) -> Any:
        return await asyncio.to_thread(run_cli, args, database_url, settings.home, **{**livekit.env(), **env})

    unconfigured = await cli(LIVEKIT_URL="", LIVEKIT_API_SECRET="")
    assert unconfigured.returncode == 2 and "LIVEKIT_URL, LIVEKIT_API_SECRET" in unconfigured.stderr
    no_address = await cli()
    assert no_address.returncode == 2 and "chorus secrets set SIP_TWILIO_ADDRESS" in no_address.stderr
    await provider_secrets(vault, tenant)
    wrong_secret = await cli(LIVEKIT_API_SECRET="not-the-secret-of-this-livekit-server-at-all")
    assert wrong_secret.returncode == 1 and "unauthenticated" in wrong_secret.stderr, wrong_secret.stderr
    livekit.state.fail["CreateSIPDispatchRule"] = (500, "internal", "dispatch rules are down")
    half = await cli()
    assert half.returncode == 1
    assert "LiveKit refused to create dispatch rule" in half.stderr and "dispatch rules are down" in half.stderr
    assert "done before the failure: create inbound trunk" in half.stdout  # what was left half-done
    unreachable = await cli(LIVEKIT_URL="http://127.0.0.1:9")
    assert unreachable.returncode == 1 and "cannot reach LiveKit" in unreachable.stderr
    missing = await asyncio.to_thread(
        run_cli,
        ["sip", "sync", "no-such-config", "--tenant", tenant.name],
        database_url,
        settings.home,
        **livekit.env(),
    )
    assert missing.returncode == 2 and "no-such-config" in missing.stderr


async def test_the_config_comes_from_a_file_or_the_tenants_store(
    db: Database, tenant: Tenant, tmp_path: Path, livekit: LiveKit, vault: SecretVault
) -> None:
    raw = scheduler(number(), number())
    key = raw["config_metadata"]["config_id"]
    path = tmp_path / "bot.json"
    path.write_text(json.dumps(raw))
    cfg, found_key, stored = await load_voicebot(db, tenant.tenant_id, str(path))
    assert (found_key, stored, cfg.sip_config is not None) == (key, False, True)
    assistant_id, _ = await store(db, tenant, tmp_path, raw)
    for ref in (key, assistant_id):
        assert (await load_voicebot(db, tenant.tenant_id, ref))[1:] == (key, True)
    with pytest.raises(NotFound):
        await load_voicebot(db, (await make_tenant(db)).tenant_id, key)  # another tenant's config
    nameless = example("healthcare_scheduler")
    del nameless["config_metadata"]["config_id"]
    path.write_text(json.dumps(nameless))
    with pytest.raises(BadRequest, match=r"config_metadata\.config_id"):
        await load_voicebot(db, tenant.tenant_id, str(path))
    with pytest.raises(BadRequest, match="no such file"):
        await load_voicebot(db, tenant.tenant_id, str(tmp_path / "missing.json"))
    chatbot = BotConfig.model_validate(example("acme_support_bot"))
    with pytest.raises(BadRequest, match="only a voicebot"):
        desired_sip(chatbot, tenant_id=tenant.tenant_id, config_key="acme", credentials={})
