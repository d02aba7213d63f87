"""The voice worker: explicit agent name, LiveKit settings required, provider keys from the tenant's vault."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from chorus.agents.secrets.master_key import load_vault_key
from chorus.agents.secrets.repository import Actor, SecretRepository
from chorus.agents.secrets.service import SecretVault
from chorus.agents.settings import Settings
from chorus.agents.storage.database import Database
from chorus.agents.tools.builtins import build_registry
from chorus.graphs.checkpointer import ChorusCheckpointer
from chorus.graphs.compiler import GraphCache, GraphDeps
from chorus.voice.provider_keys import ProviderKeys
from chorus.voice.routing import route_call
from chorus.voice.worker import (
    AGENT_NAME,
    DEEPGRAM_SECRET,
    ELEVENLABS_SECRET,
    WorkerResources,
    create_server,
    entrypoint,
    provider_keys,
)
from tests.conftest import Tenant, make_tenant
from tests.test_cli import run_cli
from tests.voice.test_routing import number, scheduler, store


def test_the_worker_registers_for_explicit_dispatch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LIVEKIT_AGENT_NAME_OVERRIDE", raising=False)
    server = create_server()
    assert server._agent_name == AGENT_NAME
    assert server._entrypoint_fnc is entrypoint


def test_start_without_livekit_settings_says_what_to_set(database_url: str, tmp_path: Path) -> None:
    for command in ("start", "dev"):
        out = run_cli(
            ["voice", command], database_url, tmp_path, LIVEKIT_URL="", LIVEKIT_API_KEY="", LIVEKIT_API_SECRET=""
        )
        assert out.returncode == 2, out.stderr
        assert "LIVEKIT_URL, LIVEKIT_API_KEY, LIVEKIT_API_SECRET" in out.stderr


async def test_speech_keys_come_from_the_calls_tenant_vault(
    db: Database, settings: Settings, checkpointer: ChorusCheckpointer, tenant: Tenant, tmp_path: Path
) -> None:
    vault = SecretVault(SecretRepository(db), load_vault_key(settings))
    deps = GraphDeps(db=db, registry=build_registry(), checkpointer=checkpointer, offline=True, secrets=vault)
    res = WorkerResources(settings, db, GraphCache(deps), vault)
    primary = number()
    await store(db, tenant, tmp_path, scheduler(primary, number()))
    route = await route_call(db, call_id=str(uuid.uuid4()), metadata=None, dialed=primary)
    assert await provider_keys(res, route, "call-1") == ProviderKeys()  # none in the vault yet
    await vault.create(tenant.tenant_id, name=DEEPGRAM_SECRET, value="dg-key", description=None, actor=Actor("t"))
    await vault.create(tenant.tenant_id, name=ELEVENLABS_SECRET, value="el-key", description=None, actor=Actor("t"))
    other = await make_tenant(db)  # another tenant's keys are never used
    await vault.create(other.tenant_id, name=DEEPGRAM_SECRET, value="not-yours", description=None, actor=Actor("t"))
    keys = await provider_keys(res, route, "call-2")
    assert (keys.deepgram, keys.elevenlabs) == ("dg-key", "el-key")
