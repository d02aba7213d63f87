"""The secret vault over HTTP: create, list, get, rotate, delete, audit; roles, tenancy, hostile input, and
config validation (configs reference the tenant's secrets, never the server's environment)."""

from __future__ import annotations

import copy
import json
import uuid
from typing import Any

import httpx
import pytest

from chorus.agents.configs.validation import validate_config
from chorus.agents.storage.database import Database
from chorus.agents.tenancy.keys import create_api_key
from chorus.agents.tools.builtins import build_registry
from tests.conftest import RunningServer, Tenant, make_tenant

SECRETS = "/api/v1/secrets"


def secret_value() -> str:
    return f"sk-live-{uuid.uuid4().hex}"


def with_header_tool(
    config: dict[str, Any], headers: dict[str, str], url: str = "https://shop.example/echo"
) -> dict[str, Any]:
    """The acme bot plus a POST tool `echo_order` sending `headers`."""
    cfg = copy.deepcopy(config)
    cfg["config_metadata"]["name"] = f"vault-{uuid.uuid4().hex[:6]}"
    cfg["tools_needed"].append(
        {
            "tool_name": "echo_order",
            "description": "Echo an order to the partner system.",
            "input_schema": {"order_id": "string"},
            "http": {"method": "POST", "url": url, "headers": headers},
        }
    )
    cfg["tools_available"].append({"tool_name": "echo_order", "status": "implemented"})
    return cfg


async def test_create_list_get_rotate_delete_never_return_the_value(http: httpx.AsyncClient) -> None:
    first, second = secret_value(), secret_value()
    responses: list[httpx.Response] = []

    created = await http.post(SECRETS, json={"name": "SHOP_API_KEY", "value": first, "description": "Shop API"})
    responses.append(created)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["name"] == "SHOP_API_KEY" and body["version"] == 1 and body["masked_value"] == "*****"
    assert body["decryptable"] is True and body["created_by"].startswith("key:")

    again = await http.post(SECRETS, json={"name": "SHOP_API_KEY", "value": "other"})
    responses.append(again)
    assert again.status_code == 409 and "rotate" in again.json()["detail"]

    listed = await http.get(SECRETS)
    responses.append(listed)
    assert listed.status_code == 200
    assert [s["name"] for s in listed.json()["secrets"]] == ["SHOP_API_KEY"] and listed.json()["total"] == 1

    rotated = await http.post(f"{SECRETS}/SHOP_API_KEY/rotate", json={"value": second, "rotation_reason": "leaked"})
    responses.append(rotated)
    assert rotated.status_code == 200, rotated.text
    history = rotated.json()["rotation_history"]
    assert [(h["version"], h["reason"]) for h in history] == [(1, "initial_creation"), (2, "leaked")]
    assert rotated.json()["version"] == 2

    got = await http.get(f"{SECRETS}/SHOP_API_KEY")
    responses.append(got)
    assert got.status_code == 200 and got.json()["version"] == 2 and len(got.json()["rotation_history"]) == 2

    audit = await http.get(f"{SECRETS}/SHOP_API_KEY/audit")
    responses.append(audit)
    actions = [e["action"] for e in audit.json()["events"]]
    assert actions == ["read", "rotate", "create"]
    assert all(e["actor"].startswith("key:") for e in audit.json()["events"])

    deleted = await http.delete(f"{SECRETS}/SHOP_API_KEY")
    responses.append(deleted)
    assert deleted.status_code == 200
    assert deleted.json() == {
        "name": "SHOP_API_KEY",
        "environment": None,
        "status": "deleted",
        "versions_deleted": 2,
        "environments_left_without": ["staging", "production"],
        "dependent_configs": [],
    }
    gone = await http.get(f"{SECRETS}/SHOP_API_KEY")
    responses.append(gone)
    assert gone.status_code == 404
    kept = await http.get(f"{SECRETS}/SHOP_API_KEY/audit")  # the trail outlives the secret
    assert kept.json()["events"][0]["action"] == "delete"

    for r in responses:
        assert first not in r.text and second not in r.text


async def test_every_role_but_organization_admin_gets_403(server: RunningServer, db: Database, tenant: Tenant) -> None:
    async with httpx.AsyncClient(base_url=server.url, headers={"x-api-key": tenant.key}) as admin:
        assert (await admin.post(SECRETS, json={"name": "ROLE_TEST", "value": "v-1"})).status_code == 201
    for role in ("viewer", "config_manager", "developer", "platform_engineer"):
        key = await create_api_key(db, tenant_id=tenant.tenant_id, role=role)  # type: ignore[arg-type]
        async with httpx.AsyncClient(base_url=server.url, headers={"x-api-key": key}) as client:
            calls = [
                client.post(SECRETS, json={"name": "NEW_ONE", "value": "x"}),
                client.get(SECRETS),
                client.get(f"{SECRETS}/ROLE_TEST"),
                client.post(f"{SECRETS}/ROLE_TEST/rotate", json={"value": "y"}),
                client.delete(f"{SECRETS}/ROLE_TEST"),
                client.get(f"{SECRETS}/ROLE_TEST/audit"),
            ]
            for call in calls:
                r = await call
                assert r.status_code == 403, (role, r.request.method, r.request.url, r.text)
                assert "needs the 'organization_admin' role" in r.json()["detail"]
    async with httpx.AsyncClient(base_url=server.url) as anonymous:
        assert (await anonymous.get(SECRETS)).status_code == 401


async def test_another_tenant_sees_404_exactly_as_for_unknown_names(
    server: RunningServer, db: Database, http: httpx.AsyncClient, acme_config: dict[str, Any]
) -> None:
    value = secret_value()
    assert (await http.post(SECRETS, json={"name": "MINE", "value": value})).status_code == 201
    other = await make_tenant(db)
    async with httpx.AsyncClient(base_url=server.url, headers={"x-api-key": other.key}) as intruder:
        for method, suffix, body in (
            ("GET", "", None),
            ("POST", "/rotate", {"value": "hijack"}),
            ("DELETE", "", None),
            ("GET", "/audit", None),
        ):
            theirs = await intruder.request(method, f"{SECRETS}/MINE{suffix}", json=body)
            unknown = await intruder.request(method, f"{SECRETS}/NEVER{suffix}", json=body)
            assert theirs.status_code == unknown.status_code == 404
            assert theirs.json() == json.loads(unknown.text.replace("NEVER", "MINE"))
        assert (await intruder.get(SECRETS)).json() == {"secrets": [], "total": 0}
        cfg = with_header_tool(acme_config, {"Authorization": "Bearer ${secret:MINE}"})
        refused = await intruder.post("/api/v1/configs", json=cfg)
        assert refused.status_code == 422
        assert [e["path"] for e in refused.json()["errors"]] == ["$.tools_needed[2].http.headers.Authorization"]
        assert "secret 'MINE' does not exist for this tenant" in refused.text
    # The owner's secret is untouched and still usable by the owner's configs.
    mine = await http.post(
        "/api/v1/configs", json=with_header_tool(acme_config, {"Authorization": "Bearer ${secret:MINE}"})
    )
    assert mine.status_code == 201, mine.text
    assert value not in mine.text


@pytest.mark.parametrize(
    ("body", "where", "fragment"),
    [
        ({"name": "A" * 65, "value": "x"}, "$.name", "1-64 characters"),
        ({"name": "lower_case", "value": "x"}, "$.name", "invalid secret name"),
        ({"name": "X'; DROP TABLE secrets;--", "value": "x"}, "$.name", "invalid secret name"),
        ({"name": "\ud800", "value": "x"}, "$.name", "unpaired UTF-16 surrogate"),
        ({"name": "EMPTY", "value": ""}, "$.value", "empty"),
        ({"name": "HUGE", "value": "x" * 8193}, "$.value", "limit is 8192"),
        ({"name": "SURROGATE", "value": "abc\ud800def"}, "$.value", "unpaired UTF-16 surrogate"),
        ({"name": "NEWLINE", "value": "abc\r\nX-Injected: 1"}, "$.value", "control character"),
        ({"name": "SPACED", "value": " abc "}, "$.value", "space"),
        ({"name": "DESC", "value": "x", "description": "d" * 501}, "$.description", "limit is 500"),
        ({"name": "EXTRA", "value": "x", "owner": "me"}, "$.owner", "Extra inputs"),
        ({"value": "x"}, "$.name", "Field required"),
    ],
)
async def test_hostile_input_is_a_clear_422(
    http: httpx.AsyncClient, body: dict[str, Any], where: str, fragment: str
) -> None:
    r = await http.post(SECRETS, content=json.dumps(body), headers={"content-type": "application/json"})
    assert r.status_code == 422, r.text
    assert any(e["path"] == where and fragment in e["message"] for e in r.json()["errors"]), r.text


async def test_hostile_names_in_paths_and_unicode_values(http: httpx.AsyncClient) -> None:
    for name in ("x'%3B%20DROP%20TABLE%20secrets", "A" * 300, "%F0%9F%94%91", "lower"):
        for method, suffix in (("GET", ""), ("DELETE", ""), ("GET", "/audit")):
            r = await http.request(method, f"{SECRETS}/{name}{suffix}")
            assert r.status_code == 404, (name, r.text)
        r = await http.post(f"{SECRETS}/{name}/rotate", json={"value": "v"})
        assert r.status_code == 404
    unicode_value = "pässwörd-🔑-密码"
    created = await http.post(SECRETS, json={"name": "UNICODE", "value": unicode_value})
    assert created.status_code == 201 and unicode_value not in created.text
    too_big = await http.post(SECRETS, json={"name": "BIG", "value": "x" * 400_000})
    assert too_big.status_code == 413
    bad_rotation = await http.post(
        f"{SECRETS}/UNICODE/rotate",
        content=json.dumps({"value": "\ud800"}),
        headers={"content-type": "application/json"},
    )
    assert bad_rotation.status_code == 422


@pytest.mark.parametrize(
    ("header", "fragment"),
    [
        ("${OPENAI_API_KEY}", "not a vault reference"),
        ("postgres: ${DATABASE_URL}", "not a vault reference"),
        ("Bearer ${secret:lower}", "does not name a secret"),
        ("Bearer ${secret:NOT_STORED}", "secret 'NOT_STORED' does not exist for this tenant"),
        ("Bearer ${secret:OK", "unclosed"),
    ],
)
async def test_config_validation_rejects_environment_and_unknown_references(
    http: httpx.AsyncClient, acme_config: dict[str, Any], header: str, fragment: str
) -> None:
    cfg = with_header_tool(acme_config, {"X-Leak": header})
    for path in ("/api/v1/configs", "/api/v1/configs/validate"):
        r = await http.post(path, json=cfg)
        body = r.json()
        errors = body["errors"]
        assert any(e["path"] == "$.tools_needed[2].http.headers.X-Leak" and fragment in e["message"] for e in errors)
        assert r.status_code == (422 if path == "/api/v1/configs" else 200) and body.get("valid") in (None, False)
    created = await http.post("/assistants", json={"graph_id": "chatbot", "context": cfg})
    assert created.status_code == 422


async def test_secret_references_only_in_headers(http: httpx.AsyncClient, acme_config: dict[str, Any]) -> None:
    await http.post(SECRETS, json={"name": "IN_URL", "value": "v"})
    cfg = with_header_tool(acme_config, {}, url="https://shop.example/x?key=${secret:IN_URL}")
    r = await http.post("/api/v1/configs", json=cfg)
    assert r.status_code == 422
    assert r.json()["errors"][0]["path"] == "$.tools_needed[2].http.url"


async def test_delete_reports_the_configs_that_use_it(http: httpx.AsyncClient, acme_config: dict[str, Any]) -> None:
    await http.post(SECRETS, json={"name": "USED_KEY", "value": secret_value()})
    cfg = with_header_tool(acme_config, {"Authorization": "Bearer ${secret:USED_KEY}"})
    stored = (await http.post("/api/v1/configs", json=cfg)).json()
    refused = await http.delete(f"{SECRETS}/USED_KEY")
    assert refused.status_code == 409
    assert cfg["config_metadata"]["name"] in refused.json()["detail"] and "force=true" in refused.json()["detail"]
    assert refused.json()["dependent_configs"] == [
        {"config_id": stored["config_id"], "config_name": stored["config_name"], "versions": [1]}
    ]
    assert (await http.get(f"{SECRETS}/USED_KEY")).status_code == 200
    forced = await http.delete(f"{SECRETS}/USED_KEY", params={"force": "true"})
    assert forced.status_code == 200
    assert forced.json()["dependent_configs"] == [
        {
            "config_id": stored["config_id"],
            "config_name": stored["config_name"],
            "versions": [1],
            "action_required": "update_secret_reference",
        }
    ]
    events = (await http.get(f"{SECRETS}/USED_KEY/audit")).json()["events"]
    assert events[0]["action"] == "delete" and "forced" in events[0]["detail"]


def test_validation_without_a_tenant_checks_syntax_and_warns(acme_config: dict[str, Any]) -> None:
    """`chorus config validate` has no tenant: the syntax is checked, existence left to the upload."""
    ok = validate_config(with_header_tool(acme_config, {"A": "Bearer ${secret:SOME_KEY}"}), registry=build_registry())
    assert ok.valid and any("SOME_KEY" in w.message and "upload" in w.message for w in ok.warnings)
    bad = validate_config(with_header_tool(acme_config, {"A": "${HOME}"}), registry=build_registry())
    assert not bad.valid and "not a vault reference" in bad.errors[0].message
