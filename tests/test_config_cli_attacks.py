"""Adversarial audit of issue 9's command line (`chorus config apply | pull | deploy`): path tricks in the
directories it reads and writes, another tenant's ids, a staging key. Each test passes when the CLI behaves
as docs/operations.md says; a failing one is a finding."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from chorus.agents.storage.database import Database
from chorus.agents.tenancy.keys import create_api_key
from tests.conftest import Cli, RunningServer, Tenant, example, make_tenant

CONFIGS = "/api/v1/configs"


async def test_pull_does_not_write_through_a_symlink_out_of_the_directory(
    cli: Cli, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    assert (await http.post(CONFIGS, json=example("acme_support_bot"))).status_code == 201
    outside = tmp_path / "outside.json"
    outside.write_text(json.dumps({"config_metadata": {"config_id": "acme_support_bot"}}))
    pulled = tmp_path / "repo"
    pulled.mkdir()
    (pulled / "acme.json").symlink_to(outside)
    done = await cli("config", "pull", str(pulled))
    assert json.loads(outside.read_text()) == {"config_metadata": {"config_id": "acme_support_bot"}}, done.out


async def test_apply_does_not_read_a_symlinked_file_from_outside(
    cli: Cli, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    secret = tmp_path / "private.json"
    config = example("acme_support_bot")
    config["system_prompt"]["instructions"] = "PRIVATE-FILE-CONTENT"
    secret.write_text(json.dumps(config))
    folder = tmp_path / "repo"
    folder.mkdir()
    (folder / "bot.json").symlink_to(secret)
    done = await cli("config", "apply", str(folder), "-m", "x", "--yes")
    if done.code == 0:  # followed the link: acceptable only if that is what the user's repo holds
        stored = (await http.get(f"{CONFIGS}/acme_support_bot")).json()
        assert stored["parsed_config"]["system_prompt"]["instructions"] == "PRIVATE-FILE-CONTENT"
    else:
        assert "bot.json" in done.err


async def test_pull_of_another_tenants_config_id_writes_nothing(
    cli: Cli, db: Database, server: RunningServer, tmp_path: Path
) -> None:
    other = await make_tenant(db)
    async with httpx.AsyncClient(base_url=server.url, headers={"x-api-key": other.key}) as stranger:
        assert (await stranger.post(CONFIGS, json=example("acme_support_bot"))).status_code == 201
    done = await cli("config", "pull", str(tmp_path / "out"), "--config", "acme_support_bot")
    assert done.code == 1 and "does not exist" in done.err, (done.out, done.err)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


async def test_pull_holds_no_secret_value(cli: Cli, http: httpx.AsyncClient, tmp_path: Path) -> None:
    made = await http.post("/api/v1/secrets", json={"name": "SHOP_KEY", "value": "sk-live-VALUE-123"})
    assert made.status_code == 201
    config = example("acme_support_bot")
    config["tools_needed"][1]["http"]["headers"] = {"Authorization": "Bearer ${secret:SHOP_KEY}"}
    assert (await http.post(CONFIGS, json=config)).status_code == 201
    done = await cli("config", "pull", str(tmp_path / "out"))
    assert done.code == 0, done.err
    text = "".join(p.read_text() for p in (tmp_path / "out").iterdir())
    assert "${secret:SHOP_KEY}" in text and "sk-live-VALUE-123" not in text


async def test_cli_deploy_with_a_staging_key_to_production_is_refused_clearly(
    cli: Cli, http: httpx.AsyncClient, db: Database, tenant: Tenant
) -> None:
    assert (await http.post(CONFIGS, json=example("acme_support_bot"))).status_code == 201
    staging = await create_api_key(db, tenant_id=tenant.tenant_id, role="organization_admin", environment="staging")
    done = await cli("config", "deploy", "acme_support_bot", "--env", "production", key=staging)
    assert done.code == 1 and "staging key" in done.err, (done.out, done.err)
    assert (await http.get(f"{CONFIGS}/acme_support_bot/deployments")).json()["total"] == 0
    bad = await cli("config", "deploy", "acme_support_bot", "--env", "production", "--percent", "0")
    assert bad.code != 0 and "--percent" in bad.err, (bad.out, bad.err)
