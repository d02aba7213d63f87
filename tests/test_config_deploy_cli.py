"""`chorus config deploy | promote | undeploy | deployments | environments` against a real server over HTTP:
a rollout started, watched, promoted; a deploy rolled back; the key's role and environment respected; bad
input refused with a clear message and nothing changed."""

from __future__ import annotations

import httpx

from chorus.agents.storage.database import Database
from chorus.agents.tenancy.keys import create_api_key
from tests.conftest import Cli, Tenant

ACME = "/api/v1/configs/acme_support_bot"


async def test_a_rollout_from_the_command_line(
    cli: Cli, http: httpx.AsyncClient, db: Database, tenant: Tenant, acme_config: dict[str, object]
) -> None:
    assert (await http.post("/api/v1/configs", json=acme_config)).status_code == 201
    done = await cli("config", "deploy", "acme_support_bot", "--env", "production")
    assert done.code == 0, done.err
    assert "production serves v1 to every new conversation" in done.out
    assert (await http.patch(ACME, json={"system_prompt": {"tone": "empathetic"}})).status_code == 200

    done = await cli("config", "deploy", "acme_support_bot", "--version", "2", "--percent", "25", "--min-turns", "5")
    assert done.code == 0, done.err
    assert "v2 gets 25 % of new conversations, v1 75 %" in done.out and "deploying" in done.out
    deployment_id = done.out.split("deployment ", 1)[1].split()[0]
    history = await cli("config", "deployments", "acme_support_bot")
    assert f"{deployment_id}  production  v1 -> v2  rolling_out 25 %" in history.out
    envs = await cli("config", "environments", "acme_support_bot")
    assert "production v1, v2 to 25 % (rollout)" in envs.out
    assert "staging    v2 (follows the current version)" in envs.out

    done = await cli("config", "promote", "acme_support_bot", deployment_id)
    assert done.code == 0 and "production serves v2 to every new conversation" in done.out
    done = await cli("config", "undeploy", "acme_support_bot", deployment_id, "-m", "too chatty")
    assert done.code == 0, done.err
    assert "production serves v1" in done.out
    assert "rolled back by" in (await cli("config", "deployments", "acme_support_bot")).out

    # Refusals: a staging key on production, a viewer, a percent out of range, an unknown deployment, no reason.
    staging = await create_api_key(db, tenant_id=tenant.tenant_id, role="developer", environment="staging")
    done = await cli("config", "deploy", "acme_support_bot", key=staging)
    assert done.code == 1 and "staging key cannot change production" in done.err
    viewer = await create_api_key(db, tenant_id=tenant.tenant_id, role="viewer")
    done = await cli("config", "deploy", "acme_support_bot", "--env", "staging", key=viewer)
    assert done.code == 1 and "your key may not do this" in done.err
    done = await cli("config", "deploy", "acme_support_bot", "--percent", "0")
    assert done.code == 2 and "--percent" in done.err
    done = await cli("config", "promote", "acme_support_bot", "not-a-deployment")
    assert done.code == 1 and "does not exist" in done.err
    done = await cli("config", "undeploy", "acme_support_bot", deployment_id, "-m", " ")
    assert done.code == 2 and "-m REASON" in done.err
    done = await cli("config", "deploy", "acme_support_bot", "--env", "prod")
    assert done.code == 1 and "'staging' or 'production'" in done.err
    assert len((await http.get(f"{ACME}/deployments")).json()["deployments"]) == 2  # nothing more
