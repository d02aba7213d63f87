"""Which voicebot answers a call: dispatch metadata, else the dialed number; unknown, ambiguous, malformed and
other tenants' configs answer no one."""

from __future__ import annotations

import json
import random
import uuid
from pathlib import Path
from typing import Any

import pytest

from chorus.agents.errors import BadRequest
from chorus.agents.storage.database import Database
from chorus.agents.tools.builtins import build_registry
from chorus.demo import load_config_file
from chorus.voice.routing import NoVoicebot, route_call
from tests.conftest import Tenant, example, make_tenant


def number() -> str:
    return "+1415" + "".join(random.choice("0123456789") for _ in range(7))


async def store(db: Database, tenant: Tenant, tmp_path: Path, raw: dict[str, Any]) -> tuple[str, int]:
    path = tmp_path / f"{uuid.uuid4().hex}.json"
    path.write_text(json.dumps(raw))
    assistant_id, version, _ = await load_config_file(db, tenant.tenant_id, path, registry=build_registry())
    return assistant_id, version


def scheduler(primary: str, failover: str) -> dict[str, Any]:
    raw = example("healthcare_scheduler")
    raw["config_metadata"]["config_id"] = f"scheduler-{uuid.uuid4().hex[:8]}"
    raw["sip_config"]["primary_endpoint"], raw["sip_config"]["failover_endpoint"] = primary, failover
    return raw


async def test_the_dialed_number_finds_its_voicebot_at_its_current_version(
    db: Database, tenant: Tenant, tmp_path: Path
) -> None:
    primary, failover = number(), number()
    raw = scheduler(primary, failover)
    assistant_id, version = await store(db, tenant, tmp_path, raw)
    for dialed in (primary, failover):
        route = await route_call(db, call_id=str(uuid.uuid4()), metadata=None, dialed=dialed)
        assert (route.tenant_id, route.assistant_id, route.serving.version) == (tenant.tenant_id, assistant_id, version)
        assert route.serving.environment == "production"
        assert route.config.first_message == raw["first_message"]
    raw["first_message"] = "Hello from version two."
    _, second = await store(db, tenant, tmp_path, raw)
    route = await route_call(db, call_id=str(uuid.uuid4()), metadata=None, dialed=primary)
    assert route.serving.version == second == version + 1
    assert route.config.first_message == "Hello from version two."


async def test_dispatch_metadata_names_the_config(db: Database, tenant: Tenant, tmp_path: Path) -> None:
    raw = scheduler(number(), number())
    assistant_id, _ = await store(db, tenant, tmp_path, raw)
    key = raw["config_metadata"]["config_id"]
    meta = json.dumps({"tenant_id": tenant.tenant_id, "config_id": key})
    route = await route_call(db, call_id=str(uuid.uuid4()), metadata=meta, dialed="+19999999999")
    assert route.assistant_id == assistant_id and route.config_key == key


async def test_calls_no_voicebot_answers(db: Database, tenant: Tenant, tmp_path: Path) -> None:
    raw = scheduler(number(), number())
    await store(db, tenant, tmp_path, raw)
    other = await make_tenant(db)
    key = raw["config_metadata"]["config_id"]
    chatbot = example("acme_support_bot")
    chatbot["config_metadata"]["config_id"] = f"acme-{uuid.uuid4().hex[:6]}"
    await store(db, tenant, tmp_path, chatbot)
    chatbot_key = chatbot["config_metadata"]["config_id"]
    refused = {
        "unknown number": (None, number()),
        "malformed number": (None, "555-1234"),
        "nothing to go on": (None, None),
        "another tenant's config": (json.dumps({"tenant_id": other.tenant_id, "config_id": key}), None),
        "not a tenant id": (json.dumps({"tenant_id": "x' OR 1=1", "config_id": key}), None),
        "a chatbot": (json.dumps({"tenant_id": tenant.tenant_id, "config_id": chatbot_key}), None),
    }
    for what, (meta, dialed) in refused.items():
        with pytest.raises(NoVoicebot):
            await route_call(db, call_id=str(uuid.uuid4()), metadata=meta, dialed=dialed)
            pytest.fail(what)
    with pytest.raises(BadRequest, match="not JSON"):
        await route_call(db, call_id=str(uuid.uuid4()), metadata="{not json", dialed=None)


async def test_a_number_claimed_by_two_voicebots_answers_no_one(db: Database, tenant: Tenant, tmp_path: Path) -> None:
    shared = number()
    await store(db, tenant, tmp_path, scheduler(shared, number()))
    await store(db, await make_tenant(db), tmp_path, scheduler(number(), shared))
    with pytest.raises(NoVoicebot, match="more than one"):
        await route_call(db, call_id=str(uuid.uuid4()), metadata=None, dialed=shared)
