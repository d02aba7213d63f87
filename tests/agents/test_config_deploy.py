"""Environments and deploys: a deploy changes what new conversations get in its environment and nothing else;
a blue-green rollout splits new conversations by a stable hash of the thread (sticky), is promoted or rolled
back (by the monitor, on its error rate); overrides are per environment and pinned like versions; per-version
metrics; the eval gate; roles, other tenants and bad input."""

from __future__ import annotations

import copy
import uuid
from typing import Any

import httpx
import pytest

from chorus.agents.configs.deploy_gate import DeployGate, NoSuiteResults
from chorus.agents.configs.deployments import Deployments
from chorus.agents.configs.deployments_repository import DeploymentRepository
from chorus.agents.configs.environments import bucket
from chorus.agents.configs.history import Author
from chorus.agents.configs.repository import ConfigRepository
from chorus.agents.configs.rollout_monitor import RolloutMonitor
from chorus.agents.configs.service import ConfigService
from chorus.agents.storage.database import Database
from chorus.agents.tools.builtins import build_registry
from tests.conftest import Client, RunningServer, Tenant, make_tenant

CONFIGS = "/api/v1/configs"
ACME = f"{CONFIGS}/acme_support_bot"
HELLO = {"messages": [{"role": "user", "content": "hello"}]}
FRIENDLY, EMPATHETIC = "Thanks! ", "I understand. "  # the offline model's openers for those tones


@pytest.fixture
async def acme(http: httpx.AsyncClient, acme_config: dict[str, Any]) -> str:
    """Acme's support bot, version 1 (friendly); its assistant id."""
    resp = await http.post(CONFIGS, json=acme_config)
    assert resp.status_code == 201, resp.text
    return str(resp.json()["assistant_id"])


async def new_version(http: httpx.AsyncClient, tone: str) -> int:
    """A new current version with another tone (a low risk change: current at once)."""
    resp = await http.patch(ACME, json={"system_prompt": {"tone": tone}})
    assert resp.status_code == 200, resp.text
    return int(resp.json()["version"])


async def turn(client: httpx.AsyncClient, assistant_id: str, thread_id: str | None = None) -> tuple[str, str, int]:
    """One "hello" turn on the thread (a new one if None): (thread id, the answer, the version that answered)."""
    if thread_id is None:
        thread_id = str(uuid.uuid4())
    resp = await client.post(
        f"/threads/{thread_id}/runs/wait",
        json={"assistant_id": assistant_id, "input": HELLO, "if_not_exists": "create"},
    )
    assert resp.status_code == 200, resp.text
    answer = resp.json()["messages"][-1]["content"]
    thread = (await client.get(f"/threads/{thread_id}")).json()
    return thread_id, answer, int(thread["config_version"])


async def deploy(client: httpx.AsyncClient, **body: Any) -> httpx.Response:
    return await client.post(f"{ACME}/deploy", json={"environment": "production", **body})


def thread_ids_in(percent: int, *, inside: bool, count: int) -> list[str]:
    """Thread ids the rollout's hash sends to the new version (`inside`) or keeps on the stable one."""
    found: list[str] = []
    while len(found) < count:
        candidate = str(uuid.uuid4())
        if (bucket(candidate) < percent) == inside:
            found.append(candidate)
    return found


async def test_a_deploy_changes_new_conversations_of_its_environment_only(
    http: httpx.AsyncClient, client_of: Client, acme: str
) -> None:
    staging = await client_of(environment="staging")
    before, answer, version = await turn(http, acme)
    assert (answer.startswith(FRIENDLY), version) == (True, 1)

    resp = await deploy(http, version=1, deployment_strategy="immediate")
    assert resp.status_code == 202, resp.text
    body = resp.json()
    assert body["status"] == "deployed" and body["environment"] == "production"
    assert body["rollout_status"] == {
        "blue_version": 1,
        "green_version": None,
        "traffic_split": {"blue": 100, "green": 0},
    }

    # A new version: production stays on its deployed version 1; staging, never deployed to, follows it.
    assert await new_version(http, "empathetic") == 2
    _, answer, version = await turn(http, acme)
    assert (answer.startswith(FRIENDLY), version) == (True, 1)
    _, answer, version = await turn(staging, acme)
    assert (answer.startswith(EMPATHETIC), version) == (True, 2)
    assert (await staging.get(f"/threads/{_}")).json()["environment"] == "staging"

    resp = await deploy(http, version=2, deployment_strategy="immediate")
    assert resp.status_code == 202, resp.text
    _, answer, version = await turn(http, acme)
    assert (answer.startswith(EMPATHETIC), version) == (True, 2)
    # The conversation started before both deploys keeps its version (pinned).
    _, answer, version = await turn(http, acme, before)
    assert (answer.startswith(FRIENDLY), version) == (True, 1)

    history = (await http.get(f"{ACME}/deployments")).json()
    assert [(d["version"], d["previous_version"], d["status"]) for d in history["deployments"]] == [
        (2, 1, "completed"),
        (1, 1, "completed"),
    ]
    assert history["deployments"][0]["deployed_by"]["role"] == "organization_admin"
    envs = (await http.get(f"{ACME}/environments")).json()["environments"]
    assert envs["production"]["stable_version"] == 2 and not envs["production"]["follows_current_version"]
    assert envs["staging"]["follows_current_version"] and envs["staging"]["stable_version"] == 2


async def test_a_rollout_splits_new_conversations_by_thread_and_each_keeps_its_version(
    http: httpx.AsyncClient, acme: str
) -> None:
    assert (await deploy(http, deployment_strategy="immediate")).status_code == 202
    await new_version(http, "empathetic")
    resp = await deploy(http, version="v2", rollout_percent=30)
    assert resp.status_code == 202, resp.text
    rollout = resp.json()
    assert rollout["status"] == "deploying"
    assert rollout["rollout_status"]["traffic_split"] == {"blue": 70, "green": 30}
    deployment_id = rollout["deployment_id"]

    for inside, expected in ((True, 2), (False, 1)):
        for thread_id in thread_ids_in(30, inside=inside, count=3):
            _, answer, version = await turn(http, acme, thread_id)
            assert version == expected
            assert answer.startswith(EMPATHETIC if expected == 2 else FRIENDLY)
            _, _, again = await turn(http, acme, thread_id)
            assert again == expected  # sticky

    # More traffic, then all of it: the rollout ends and version 2 is production's stable version.
    resp = await http.post(f"{ACME}/deployments/{deployment_id}/promote", json={"rollout_percent": 60})
    assert resp.json()["rollout_status"]["traffic_split"] == {"blue": 40, "green": 60}
    resp = await http.post(f"{ACME}/deployments/{deployment_id}/promote", json={})
    assert resp.status_code == 200, resp.text
    assert resp.json()["status"] == "deployed" and resp.json()["rollout_status"]["blue_version"] == 2
    for thread_id in thread_ids_in(30, inside=False, count=2):
        assert (await turn(http, acme, thread_id))[2] == 2
    # An ended rollout cannot be promoted again.
    again = await http.post(f"{ACME}/deployments/{deployment_id}/promote", json={})
    assert again.status_code == 409 and "completed" in again.json()["detail"]

    # Per-version metrics, side by side.
    metrics = (await http.get(f"{ACME}/metrics", params={"versions": "1,2"})).json()["versions"]
    by_version = {m["version"]: m for m in metrics}
    assert by_version[1]["turns"] >= 6 and by_version[2]["turns"] >= 8
    assert by_version[2]["errors"] == 0 and by_version[2]["latency_ms"]["p50"] is not None
    assert by_version[2]["tokens"]["output"] > 0
    # The offline model has no public price: it costs nothing, and says so.
    assert by_version[2]["cost_usd"] == 0 and by_version[2]["unpriced_models"][0].startswith("offline")
    detail = (await http.get(f"{ACME}/deployments/{deployment_id}")).json()
    assert [m["version"] for m in detail["metrics"]["versions"]] == [1, 2]


async def test_the_monitor_rolls_a_rollout_back_when_its_error_rate_passes_the_threshold(
    http: httpx.AsyncClient, server: RunningServer, db: Database, tenant: Tenant, acme: str, acme_config: dict[str, Any]
) -> None:
    assert (await deploy(http, deployment_strategy="immediate")).status_code == 202
    # Version 2 answers slowly: with a short run timeout, each of its turns times out (an error).
    service = ConfigService(ConfigRepository(db), build_registry())
    slow = copy.deepcopy(acme_config)
    slow["llm_config"] = {"provider": "offline", "model": "chorus-offline", "offline_token_delay_ms": 400}
    await service.upload(tenant.tenant_id, slow, author=Author.cli())
    resp = await deploy(http, version=2, rollout_percent=50, min_turns=2, rollback_on_error_rate=0.4)
    assert resp.status_code == 202, resp.text
    deployment_id = resp.json()["deployment_id"]

    engine = server.app.state.run_engine
    timeout = engine.run_timeout_s
    engine.run_timeout_s = 1.0
    try:
        for thread_id in thread_ids_in(50, inside=True, count=2):
            resp = await http.post(
                f"/threads/{thread_id}/runs/wait",
                json={"assistant_id": acme, "input": HELLO, "if_not_exists": "create"},
            )
            assert (await http.get(f"/threads/{thread_id}")).json()["config_version"] == 2
    finally:
        engine.run_timeout_s = timeout
    runs = (await http.get(f"{ACME}/metrics", params={"versions": "2"})).json()["versions"][0]
    assert (runs["turns"], runs["errors"]) == (2, 2)

    monitor = RolloutMonitor(Deployments(service, DeployGate(NoSuiteResults())))
    await monitor.check_once()  # (or the server's own monitor got there first)
    detail = (await http.get(f"{ACME}/deployments/{deployment_id}")).json()
    assert detail["status"] == "rolled_back"
    assert "error rate 100.0% (2 of 2 turns)" in detail["status_reason"]
    assert "automatic" in detail["status_reason"]
    # New conversations the hash sent to version 2 now get version 1.
    thread_id = thread_ids_in(50, inside=True, count=1)[0]
    assert (await turn(http, acme, thread_id))[2] == 1
    assert await monitor.check_once() == []  # nothing left to judge


async def test_overrides_apply_to_their_environment_and_a_conversation_keeps_its_revision(
    http: httpx.AsyncClient, client_of: Client, acme: str
) -> None:
    staging = await client_of(environment="staging")
    early, answer, _ = await turn(staging, acme)
    assert answer.startswith(FRIENDLY)

    resp = await http.patch(
        f"{ACME}/environments/staging",
        json={"overrides": {"system_prompt": {"tone": "empathetic"}}, "commit_message": "kinder in staging"},
    )
    assert resp.status_code == 200, resp.text
    view = resp.json()
    assert view["overrides_revision"] == 1
    assert view["overrides_diff"] == {"system_prompt.tone": {"old": "friendly_professional", "new": "empathetic"}}

    _, answer, version = await turn(staging, acme)
    assert (answer.startswith(EMPATHETIC), version) == (True, 1)
    _, answer, _ = await turn(http, acme)  # production: no overrides
    assert answer.startswith(FRIENDLY)
    _, answer, _ = await turn(staging, acme, early)  # started before the overrides: keeps revision 0
    assert answer.startswith(FRIENDLY)

    # Overrides that break the config are refused, and nothing is stored.
    bad = await http.patch(f"{ACME}/environments/staging", json={"overrides": {"llm_config": {"temperature": 7}}})
    assert bad.status_code == 422 and "temperature" in bad.text
    fixed = await http.patch(f"{ACME}/environments/staging", json={"overrides": {"config_metadata": {"version": 9}}})
    assert fixed.status_code == 422 and "config_metadata" in fixed.json()["detail"]
    empty = await http.patch(f"{ACME}/environments/staging", json={})
    assert empty.status_code == 422 and "nothing to change" in empty.json()["detail"]
    envs = (await http.get(f"{ACME}/environments")).json()["environments"]
    assert envs["staging"]["overrides_revision"] == 1 and envs["production"]["overrides_revision"] == 0


async def test_the_eval_gate_blocks_a_deploy_until_its_suites_pass(http: httpx.AsyncClient, acme: str) -> None:
    resp = await http.patch(f"{ACME}/environments/production", json={"required_eval_suites": ["smoke"]})
    assert resp.status_code == 200 and resp.json()["required_eval_suites"] == ["smoke"]
    blocked = await deploy(http)
    assert blocked.status_code == 409
    assert blocked.json()["error"] == "deployment_blocked"
    assert blocked.json()["deployment_blocked_by"] == ["eval suite 'smoke' has not been executed on version 1"]
    assert (await http.get(f"{ACME}/deployments")).json()["total"] == 0
    # Staging requires nothing.
    assert (await deploy(http, environment="staging")).status_code == 202


async def test_roles_and_environments_of_keys(client_of: Client, http: httpx.AsyncClient, acme: str) -> None:
    for role in ("viewer", "config_manager"):
        resp = await deploy(await client_of(role))
        assert resp.status_code == 403, (role, resp.text)
    staging_admin = await client_of(environment="staging")
    resp = await deploy(staging_admin)
    assert resp.status_code == 403 and "staging key cannot change production" in resp.json()["detail"]
    assert (await deploy(staging_admin, environment="staging")).status_code == 202
    production = (await deploy(http, deployment_strategy="immediate")).json()["deployment_id"]
    for resp in (
        await staging_admin.patch(f"{ACME}/environments/production", json={"required_eval_suites": []}),
        await staging_admin.post(f"{ACME}/deployments/{production}/rollback", json={"reason": "from staging"}),
        await staging_admin.post(f"{ACME}/deployments/{production}/promote", json={}),
    ):
        assert resp.status_code == 403 and "staging key" in resp.json()["detail"], resp.text
    for role in ("developer", "platform_engineer"):
        await new_version(http, f"tone of {role}")
        resp = await deploy(await client_of(role), deployment_strategy="immediate")
        assert resp.status_code == 202, (role, resp.text)
    viewer = await client_of("viewer")
    assert (await viewer.get(f"{ACME}/deployments")).status_code == 200
    assert (await viewer.get(f"{ACME}/environments")).status_code == 200
    patch = await viewer.patch(f"{ACME}/environments/staging", json={"required_eval_suites": []})
    assert patch.status_code == 403


async def test_bad_deploys_get_clear_errors(
    http: httpx.AsyncClient, db: Database, server: RunningServer, acme: str
) -> None:
    for body, where in (
        ({"rollout_percent": 0}, "rollout_percent"),
        ({"rollout_percent": 101}, "rollout_percent"),
        ({"environment": "prod"}, "environment"),
        ({"rollback_on_error_rate": 1.5}, "rollback_on_error_rate"),
        ({"surprise": True}, "surprise"),
    ):
        resp = await deploy(http, **body)
        assert resp.status_code == 422 and where in resp.text, (body, resp.text)
    unknown = await deploy(http, version=9)
    assert unknown.status_code == 404 and "version 9" in unknown.json()["detail"]
    bad_version = await deploy(http, version="latest")
    assert bad_version.status_code == 422 and "not a version" in bad_version.json()["detail"]
    # A version waiting for approval (a high risk change) cannot be deployed.
    pending = await http.patch(ACME, json={"llm_config": {"model": "gpt-4.1"}})
    assert pending.status_code == 200 and pending.json()["status"] == "pending_approval"
    resp = await deploy(http, version=pending.json()["version"])
    assert resp.status_code == 422 and "waiting for approval" in resp.json()["detail"]
    # The version already served, as a rollout: a clear 422; deployed again, a 409.
    same = await deploy(http, version=1, rollout_percent=10)
    assert same.status_code == 422 and "already serves" in same.json()["detail"]
    assert (await deploy(http, version=1)).status_code == 202
    again = await deploy(http, version=1)
    assert again.status_code == 409 and "already serves version 1" in again.json()["detail"]
    # Unknown deployment ids, another tenant's config.
    for deployment_id in ("nope", str(uuid.uuid4())):
        resp = await http.get(f"{ACME}/deployments/{deployment_id}")
        assert resp.status_code == 404, resp.text
        resp = await http.post(f"{ACME}/deployments/{deployment_id}/rollback", json={"reason": "x"})
        assert resp.status_code == 404, resp.text
    other = await make_tenant(db)
    async with httpx.AsyncClient(base_url=server.url, headers={"x-api-key": other.key}) as stranger:
        for resp in (
            await stranger.post(f"{ACME}/deploy", json={"environment": "production"}),
            await stranger.get(f"{ACME}/deployments"),
            await stranger.get(f"{CONFIGS}/{acme}/environments"),
            await stranger.get(f"{ACME}/metrics"),
        ):
            assert resp.status_code == 404 and "does not exist" in resp.json()["detail"], resp.text


async def test_rolling_back_a_completed_deploy_restores_the_version_it_replaced(
    http: httpx.AsyncClient, acme: str
) -> None:
    assert (await deploy(http, deployment_strategy="immediate")).status_code == 202
    await new_version(http, "empathetic")
    done = (await deploy(http, version=2)).json()
    assert done["status"] == "deployed"
    resp = await http.post(
        f"{ACME}/deployments/{done['deployment_id']}/rollback", json={"reason": "customers complained"}
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["rollout_status"]["blue_version"] == 1
    assert "customers complained" in resp.json()["deployment"]["status_reason"]
    assert (await turn(http, acme))[2] == 1
    # It is no longer the environment's latest deployment in force: a second rollback is refused.
    again = await http.post(f"{ACME}/deployments/{done['deployment_id']}/rollback", json={"reason": "again"})
    assert again.status_code == 409


async def test_a_deploy_needs_the_configs_secrets_in_that_environment(
    http: httpx.AsyncClient, client_of: Client, acme: str
) -> None:
    secret = {"name": "SHOP_KEY", "value": "s3cret", "environment": "staging"}
    assert (await http.post("/api/v1/secrets", json=secret)).status_code == 201
    # The example's HTTP tool, now sending the secret.
    tools = copy.deepcopy((await http.get(ACME)).json()["parsed_config"]["tools_needed"])
    tools[1]["http"]["headers"] = {"Authorization": "Bearer ${secret:SHOP_KEY}"}
    patched = await http.patch(ACME, json={"tools_needed": tools})
    assert patched.status_code == 200, patched.text
    version = patched.json()["version"]
    assert patched.json()["status"] == "pending_approval"  # a high risk change: an admin and an engineer sign
    engineer = await client_of("platform_engineer")
    for approver in (http, engineer):
        approved = await approver.post(f"{ACME}/versions/{version}/approve", json={"comment": "ok"})
        assert approved.status_code == 200, approved.text
    blocked = await deploy(http, version=version)
    assert blocked.status_code == 409 and blocked.json()["error"] == "deployment_blocked", blocked.text
    assert blocked.json()["deployment_blocked_by"][0].startswith("secret SHOP_KEY is not in the vault for production")
    assert (await deploy(http, environment="staging", version=version)).status_code == 202


async def test_overrides_whose_risk_needs_approval_wait_for_it(
    http: httpx.AsyncClient, client_of: Client, acme: str
) -> None:
    staging = await client_of(environment="staging")
    developer = await client_of("developer")
    engineer = await client_of("platform_engineer")
    env = f"{ACME}/environments/staging"
    # A model change in staging is high risk: stored, not in force, until an admin and an engineer sign.
    first_overrides = {"system_prompt": {"tone": "empathetic"}, "llm_config": {"model": "gpt-4.1"}}
    resp = await developer.patch(env, json={"overrides": first_overrides})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    revision = body["revision"]
    assert (revision["status"], revision["risk_level"]) == ("pending_approval", "high")
    assert revision["approval_required_from"] == ["organization_admin", "platform_engineer"]
    assert body["overrides_revision"] == 0 and [p["revision"] for p in body["pending_overrides"]] == [1]
    assert (await turn(staging, acme))[1].startswith(FRIENDLY)  # not served yet

    approve = f"{env}/overrides/1/approve"
    assert (await developer.post(approve, json={})).status_code == 403  # a developer approves nothing
    first = await http.post(approve, json={"comment": "fine"})
    assert first.status_code == 200 and first.json()["status"] == "pending_approval"
    assert first.json()["approval_required_from"] == ["platform_engineer"]
    assert (await http.post(approve, json={})).status_code == 409  # the same key twice
    second = await engineer.post(approve, json={"comment": "checked the model"})
    assert second.status_code == 200 and second.json()["status"] == "approved", second.text
    assert [a["role"] for a in second.json()["approvals"]] == ["organization_admin", "platform_engineer"]
    assert (await http.get(f"{ACME}/environments")).json()["environments"]["staging"]["overrides_revision"] == 1
    assert (await turn(staging, acme))[1].startswith(EMPATHETIC)  # in force for new conversations

    # A medium risk one waits for an admin; a low risk one is in force at once; approving the medium one
    # after that is refused (it was made on overrides no longer in force), and it can be rejected.
    stale = (
        await developer.patch(
            env,
            json={
                "overrides": {**first_overrides, "llm_config": {"model": "gpt-4.1", "parameters": {"temperature": 0.3}}}
            },
        )
    ).json()
    assert (stale["revision"]["status"], stale["revision"]["risk_level"]) == ("pending_approval", "medium")
    low = (await developer.patch(env, json={"overrides": {**first_overrides, "webchat": {"title": "Help"}}})).json()
    assert low["revision"]["status"] == "approved" and low["overrides_revision"] == low["revision"]["revision"]
    number = stale["revision"]["revision"]
    refused = await http.post(f"{env}/overrides/{number}/approve", json={})
    assert refused.status_code == 409 and "changed since" in refused.json()["detail"]
    rejected = await http.post(f"{env}/overrides/{number}/reject", json={"reason": "stale"})
    assert rejected.status_code == 200 and rejected.json()["status"] == "rejected"
    assert (await http.post(f"{env}/overrides/{number}/approve", json={})).status_code == 409
    assert (await http.post(f"{env}/overrides/99/approve", json={})).status_code == 404
    # Changing the eval gate is for organization admins only (it gates everyone else's deploys).
    gate = await developer.patch(f"{ACME}/environments/production", json={"required_eval_suites": []})
    assert gate.status_code == 403 and "manage_permissions" in gate.json()["detail"]


async def test_the_monitor_reads_every_rollout_of_every_tenant_however_many(
    server: RunningServer, db: Database, acme_config: dict[str, Any]
) -> None:
    """Rollouts are read a page at a time: with pages of one, three tenants' rollouts are all judged in a pass
    (a fixed cap would leave the newest ones, another tenant's, never judged)."""
    ours: set[str] = set()
    for _ in range(3):
        other = await make_tenant(db)
        async with httpx.AsyncClient(base_url=server.url, headers={"x-api-key": other.key}) as client:
            assert (await client.post(CONFIGS, json=acme_config)).status_code == 201
            assert (await deploy(client, deployment_strategy="immediate")).status_code == 202
            await new_version(client, "empathetic")
            rollout = await deploy(client, version=2, rollout_percent=10, min_turns=1000)
            assert rollout.status_code == 202, rollout.text
            ours.add(rollout.json()["deployment_id"])
    repo = DeploymentRepository(db)
    paged = [d.deployment_id async for d in repo.rolling_out(page=1)]
    assert ours <= set(paged) and len(paged) == len(set(paged))
    assert paged == [d.deployment_id async for d in repo.rolling_out(page=500)]
