"""The seed's validation report over the API and the CLI: named checks, deployment readiness and what blocks
it, for a stored config (any version), a change proposed as its next version, or an unsaved body."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from chorus.agents.configs.checks import secret_names_per_environment
from chorus.agents.knowledge.repository import KnowledgeRepository
from chorus.agents.storage.database import Database
from chorus.agents.tenancy.keys import create_api_key
from tests.conftest import RunningServer, Tenant, example, make_tenant

CONFIGS = "/api/v1/configs"
CHECK_NAMES = [
    "json_schema_compliance",
    "required_fields_present",
    "tool_dependencies_met",
    "integration_dependencies_met",
    "llm_config_valid",
    "credentials_present",
    "knowledge_available",
    "workflow_features_supported",
    "circular_dependencies",
]


def ready_config() -> dict[str, Any]:
    """The example support bot with nothing missing: its HTTP tool implemented (with a vault secret), and no
    integration still to build."""
    cfg = example("acme_support_bot")
    cfg["tools_available"][4]["status"] = "implemented"
    cfg["tools_needed"][1]["http"]["headers"] = {"Authorization": "Bearer ${secret:SHOP_KEY}"}
    cfg["integrations"] = [i for i in cfg["integrations"] if i["status"] == "implemented"]
    cfg["integrations_needed"] = []
    return cfg


def statuses(body: dict[str, Any]) -> dict[str, str]:
    return {c["check"]: c["status"] for c in body["checks"]}


async def add_namespaces(db: Database, tenant: Tenant, *names: str) -> None:
    for name in names:
        await KnowledgeRepository(db).ensure_namespace(tenant.tenant_id, name, "test-model", 3)


async def test_a_stored_config_lists_the_seeds_checks_and_what_blocks_deployment(
    http: httpx.AsyncClient, server: RunningServer, db: Database, tenant: Tenant
) -> None:
    assert (await http.post(CONFIGS, json=example("acme_support_bot"))).status_code == 201
    viewer = await create_api_key(db, tenant_id=tenant.tenant_id, role="viewer")
    async with httpx.AsyncClient(base_url=server.url, headers={"x-api-key": viewer}) as client:
        resp = await client.post(f"{CONFIGS}/acme_support_bot/validate")
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert (body["config_id"], body["version"], body["stored"]) == ("acme_support_bot", 1, True)
    assert body["validation_status"] == "passed" and body["valid"] and body["errors"] == []
    assert [c["check"] for c in body["checks"]] == CHECK_NAMES
    got = statuses(body)
    assert got["json_schema_compliance"] == got["llm_config_valid"] == got["circular_dependencies"] == "passed"
    assert got["tool_dependencies_met"] == got["integration_dependencies_met"] == "failed"
    # A new tenant has none of the knowledge namespaces the bot names: a warning, the bot still answers.
    assert got["knowledge_available"] == "warning"
    tools = next(c for c in body["checks"] if c["check"] == "tool_dependencies_met")
    assert "Tool 'check_product_availability' not implemented" in tools["details"]
    credentials = next(c for c in body["checks"] if c["check"] == "credentials_present")
    assert credentials == {
        "check": "credentials_present",
        "status": "passed",
        "missing": {"staging": [], "production": []},
    }
    assert body["deployment_ready"] is False
    assert body["deployment_blocked_by"] == [
        "Tool check_product_availability (GitHub issue #157)",
        "Integration sentiment_api (GitHub issue #89)",
    ]
    assert any(w["path"] == "$.tools_available[4].status" for w in body["warnings"])


async def test_a_config_with_nothing_missing_is_deployment_ready(
    http: httpx.AsyncClient, db: Database, tenant: Tenant
) -> None:
    await add_namespaces(db, tenant, "acme_support", "acme_support_faq")
    assert (await http.post("/api/v1/secrets", json={"name": "SHOP_KEY", "value": "s3cret"})).status_code == 201
    assert (await http.post(CONFIGS, json=ready_config())).status_code == 201
    body = (await http.post(f"{CONFIGS}/acme_support_bot/validate")).json()
    assert body["deployment_ready"] is True, body["deployment_blocked_by"]
    assert body["deployment_blocked_by"] == []
    assert set(statuses(body).values()) == {"passed"}, statuses(body)
    assert {"staging": {"SHOP_KEY"}, "production": {"SHOP_KEY"}} == await secret_names_per_environment(
        db, tenant.tenant_id
    )


async def test_a_secret_stored_for_staging_only_blocks_a_production_deploy_not_the_upload(
    http: httpx.AsyncClient, db: Database, tenant: Tenant
) -> None:
    await add_namespaces(db, tenant, "acme_support", "acme_support_faq")
    body = {"name": "SHOP_KEY", "value": "s3cret", "environment": "staging"}
    assert (await http.post("/api/v1/secrets", json=body)).status_code == 201
    assert (await http.post(CONFIGS, json=ready_config())).status_code == 201  # valid: it exists somewhere
    report = (await http.post(f"{CONFIGS}/acme_support_bot/validate")).json()
    credentials = next(c for c in report["checks"] if c["check"] == "credentials_present")
    assert credentials["missing"] == {"staging": [], "production": ["SHOP_KEY"]}
    assert report["valid"] and not report["deployment_ready"]
    assert "Secret SHOP_KEY (missing in production)" in report["deployment_blocked_by"]


async def test_a_missing_secret_fails_credentials_in_every_environment(http: httpx.AsyncClient) -> None:
    body = (await http.post(f"{CONFIGS}/validate", json=ready_config())).json()
    assert body["validation_status"] == "failed" and not body["valid"]
    credentials = next(c for c in body["checks"] if c["check"] == "credentials_present")
    assert credentials["status"] == "failed"
    assert credentials["missing"] == {"staging": ["SHOP_KEY"], "production": ["SHOP_KEY"]}
    assert credentials["errors"][0]["path"] == "$.tools_needed[1].http.headers.Authorization"
    assert "Secret SHOP_KEY (missing in staging, production)" in body["deployment_blocked_by"]


async def test_any_stored_version_can_be_validated(http: httpx.AsyncClient) -> None:
    assert (await http.post(CONFIGS, json=example("acme_support_bot"))).status_code == 201
    fixed = example("acme_support_bot")
    fixed["tools_available"][4]["status"] = "implemented"
    # A new tool is a change that waits for approval: version 2 is stored, version 1 stays current.
    assert (await http.post(CONFIGS, json=fixed)).json()["status"] == "pending_approval"
    current = (await http.post(f"{CONFIGS}/acme_support_bot/validate")).json()
    pending = (await http.post(f"{CONFIGS}/acme_support_bot/validate", params={"version": "v2"})).json()
    assert (current["version"], pending["version"]) == (1, 2)
    assert statuses(current)["tool_dependencies_met"] == "failed"
    assert statuses(pending)["tool_dependencies_met"] != "failed"
    missing = await http.post(f"{CONFIGS}/acme_support_bot/validate", params={"version": "9"})
    assert missing.status_code == 404
    bad = await http.post(f"{CONFIGS}/acme_support_bot/validate", params={"version": "latest"})
    assert bad.status_code == 422


async def test_a_body_is_checked_as_the_next_version_and_not_stored(http: httpx.AsyncClient) -> None:
    assert (await http.post(CONFIGS, json=example("acme_support_bot"))).status_code == 201
    change = example("acme_support_bot")
    change["config_metadata"]["config_id"] = "some_other_id"  # stored under the config's own id all the same
    change["tools_available"][4]["status"] = "implemented"
    change["tools_needed"][1]["http"]["url"] = "https://inventory.example.com/{sku}"
    resp = await http.post(f"{CONFIGS}/acme_support_bot/validate", json=change)
    body = resp.json()
    assert resp.status_code == 200, body
    assert (body["config_id"], body["version"], body["stored"]) == ("acme_support_bot", 2, False)
    assert body["validation_status"] == "failed" and body["deployment_ready"] is False
    tools = next(c for c in body["checks"] if c["check"] == "tool_dependencies_met")
    assert tools["status"] == "failed"
    assert tools["errors"][0]["path"] == "$.tools_needed[1].http.url"
    assert "{sku} is not an argument" in tools["errors"][0]["message"]
    assert any(b.startswith("Invalid config at $.tools_needed[1].http.url") for b in body["deployment_blocked_by"])
    versions = (await http.get(f"{CONFIGS}/acme_support_bot/versions")).json()
    assert versions["total_versions"] == 1, "validating a proposed version must not store it"

    voice = example("healthcare_scheduler")
    other_kind = (await http.post(f"{CONFIGS}/acme_support_bot/validate", json=voice)).json()
    assert any(e["path"] == "$.config_metadata.product_type" for e in other_kind["errors"])
    both = await http.post(f"{CONFIGS}/acme_support_bot/validate", params={"version": "1"}, json=change)
    assert both.status_code == 422 and "one or the other" in both.json()["detail"]


async def test_validate_keeps_to_the_callers_tenant_and_role(
    http: httpx.AsyncClient, server: RunningServer, db: Database
) -> None:
    assert (await http.post(CONFIGS, json=example("acme_support_bot"))).status_code == 201
    stranger = await make_tenant(db)
    async with httpx.AsyncClient(base_url=server.url, headers={"x-api-key": stranger.key}) as client:
        other = await client.post(f"{CONFIGS}/acme_support_bot/validate")
        assert other.status_code == 404, other.text
        assert "checks" not in other.json() and "parsed_config" not in other.json()
    async with httpx.AsyncClient(base_url=server.url) as anonymous:
        assert (await anonymous.post(f"{CONFIGS}/acme_support_bot/validate")).status_code == 401
    assert (await http.post(f"{CONFIGS}/nope/validate")).status_code == 404
    assert (await http.post(f"{CONFIGS}/{'x' * 300}/validate")).status_code == 422


async def test_the_unsaved_validate_keeps_its_fields_and_adds_the_checks(http: httpx.AsyncClient) -> None:
    body = (await http.post(f"{CONFIGS}/validate", json=example("healthcare_scheduler"))).json()
    assert body["valid"] is True and body["errors"] == [] and isinstance(body["warnings"], list)
    assert body["config_id"] == example("healthcare_scheduler")["config_metadata"].get("config_id")
    assert [c["check"] for c in body["checks"]] == CHECK_NAMES
    assert body["deployment_ready"] is False  # the example's send_sms_confirmation is still missing
    broken = (await http.post(f"{CONFIGS}/validate", json=[1, 2])).json()
    assert broken["valid"] is False and broken["errors"] == [
        {"path": "$", "message": "a bot config must be a JSON object"}
    ]
    assert statuses(broken)["json_schema_compliance"] == "failed"
    # What was not looked at is not reported as passed.
    unchecked = next(c for c in broken["checks"] if c["check"] == "tool_dependencies_met")
    assert unchecked["status"] == "warning" and unchecked["details"].startswith("not checked")


def run_cli(args: list[str], database_url: str, home: Path, tenant: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": database_url, "CHORUS_HOME": str(home), "CHORUS_TENANT": tenant}
    return subprocess.run(
        [sys.executable, "-m", "chorus.cli", "config", "validate", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


async def test_cli_validates_files_and_stored_configs(
    http: httpx.AsyncClient, db: Database, tenant: Tenant, database_url: str, tmp_path: Path
) -> None:
    await add_namespaces(db, tenant, "acme_support", "acme_support_faq")
    assert (await http.post("/api/v1/secrets", json={"name": "SHOP_KEY", "value": "s3cret"})).status_code == 201
    ready = tmp_path / "ready.json"
    ready.write_text(json.dumps(ready_config()))
    good = run_cli([str(ready)], database_url, tmp_path, tenant.name)
    assert good.returncode == 0, good.stdout + good.stderr
    assert "valid, deployment ready" in good.stdout
    assert "passed   credentials_present" in good.stdout

    # In another tenant the same file misses its secret and its knowledge.
    stranger = await make_tenant(db)
    elsewhere = run_cli([str(ready), "--json"], database_url, tmp_path, stranger.name)
    assert elsewhere.returncode == 1
    report = json.loads(elsewhere.stdout)
    assert report["deployment_ready"] is False
    assert "Secret SHOP_KEY (missing in staging, production)" in report["deployment_blocked_by"]

    assert (await http.post(CONFIGS, json=example("acme_support_bot"))).status_code == 201
    stored = run_cli(["acme_support_bot", "--version", "1"], database_url, tmp_path, tenant.name)
    assert stored.returncode == 1, "a missing tool is not deployment ready"
    assert "acme_support_bot v1: valid, NOT deployment ready" in stored.stdout
    assert "blocked by: Tool check_product_availability (GitHub issue #157)" in stored.stdout

    unknown = run_cli(["no_such_bot"], database_url, tmp_path, tenant.name)
    assert unknown.returncode == 1 and "no_such_bot" in unknown.stderr
    both = run_cli([str(ready), "--version", "2"], database_url, tmp_path, tenant.name)
    assert both.returncode == 2 and "--version" in both.stderr


def test_cli_explains_a_bad_file(database_url: str, tmp_path: Path, tenant: Tenant) -> None:
    cfg = example("acme_support_bot")
    cfg["llm_config"]["parameters"]["top_p"] = 3
    bad_file = tmp_path / "bad.json"
    bad_file.write_text(json.dumps(cfg))
    bad = run_cli([str(bad_file)], database_url, tmp_path, tenant.name)
    assert bad.returncode == 1
    assert "error   $.llm_config.parameters.top_p: 3 is out of range: it must be <= 1" in bad.stdout
    assert "failed   json_schema_compliance" in bad.stdout
    broken = tmp_path / "broken.json"
    broken.write_text("{ not json")
    out = run_cli([str(broken)], database_url, tmp_path, tenant.name)
    assert out.returncode == 1 and "malformed JSON at line 1" in out.stderr
    gone = run_cli([str(tmp_path / "gone.json")], database_url, tmp_path, tenant.name)
    assert gone.returncode == 2 and "no such file" in gone.stderr


HOSTILE_BODIES: list[Any] = [
    "a string",
    42,
    [],
    {},
    {"config_metadata": "not an object"},
    {"config_metadata": {"product_type": "chatbot"}, "tools_needed": [{"tool_name": "x", "http": 7}]},
    {"knowledge": {"namespaces": [{"$ne": 1}, "x" * 5000, None, "nul\u0000"]}, "tools_needed": "nope"},
    {**example("acme_support_bot"), "knowledge": {"namespaces": ["nul\u0000", "ok"], "faq_namespace": "\u0000"}},
    {"k" * 3000: 1, "llm_config": {"fallback": [[]] * 50}},
]


async def test_hostile_bodies_get_a_report_never_a_server_error(http: httpx.AsyncClient) -> None:
    assert (await http.post(CONFIGS, json=example("acme_support_bot"))).status_code == 201
    for body in HOSTILE_BODIES:
        for path in (f"{CONFIGS}/validate", f"{CONFIGS}/acme_support_bot/validate"):
            resp = await http.post(path, json=body)
            assert resp.status_code == 200, (path, body, resp.text)
            report = resp.json()
            assert report["valid"] is False and report["deployment_ready"] is False
            assert report["errors"] and all(e["path"].startswith("$") for e in report["errors"])
    assert (await http.post(f"{CONFIGS}/nul%00/validate")).status_code in (404, 422)
    garbled = await http.post(
        f"{CONFIGS}/acme_support_bot/validate", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert garbled.status_code == 422
