"""Environment-scoped secrets: a tool call in staging or production uses the secret scoped to its environment,
else the unscoped one; a scoped ciphertext is bound to its environment; secrets stored before environments
existed still open after migration 019."""

from __future__ import annotations

import json
import uuid
from importlib import resources
from typing import Any

import httpx
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from chorus.agents.configs.models import ToolNeeded
from chorus.agents.errors import Conflict, NotFound, SecretUndecryptable, ToolError
from chorus.agents.secrets.crypto import seal
from chorus.agents.secrets.master_key import load_vault_key
from chorus.agents.secrets.repository import Actor, SecretRepository
from chorus.agents.secrets.service import SecretVault
from chorus.agents.settings import Settings
from chorus.agents.storage.database import Database, open_database
from chorus.agents.storage.migrations import apply_migrations
from chorus.agents.tenancy.keys import create_api_key, ensure_tenant
from chorus.agents.tools.http_tool import build_http_tool
from chorus.agents.tools.registry import ToolContext
from tests.agents.test_secrets import SECRETS, secret_value, with_header_tool
from tests.conftest import RunningServer, Tenant, example, make_tenant
from tests.fakes import inventory_api, serve

TEST = Actor("test")


def vault_of(server: RunningServer) -> SecretVault:
    vault: SecretVault = server.app.state.secrets
    return vault


def in_env(
    tenant: Tenant | str, db: Database, environment: str, *, vault: SecretVault | None = None, thread: str | None = None
) -> ToolContext:
    tenant_id = tenant if isinstance(tenant, str) else tenant.tenant_id
    return ToolContext(
        tenant_id=tenant_id, db=db, environment=environment, secrets=vault, thread_id=thread, tool_call_id="c1"
    )


async def test_a_call_uses_its_environments_secret_else_the_unscoped_one(
    db: Database, tenant: Tenant, server: RunningServer
) -> None:
    vault = vault_of(server)
    staging, production = in_env(tenant, db, "staging"), in_env(tenant, db, "production")
    await vault.create(tenant.tenant_id, name="SHOP_KEY", value="for-all", description=None, actor=TEST)
    assert await vault.reveal(staging, "SHOP_KEY", tool_name="t") == "for-all"
    assert await vault.reveal(production, "SHOP_KEY", tool_name="t") == "for-all"
    # A context that names no environment is production's.
    assert ToolContext(tenant_id=tenant.tenant_id, db=db).environment == "production"

    await vault.create(
        tenant.tenant_id, name="SHOP_KEY", value="stage-only", description=None, actor=TEST, environment="staging"
    )
    assert await vault.reveal(staging, "SHOP_KEY", tool_name="t") == "stage-only"
    assert await vault.reveal(production, "SHOP_KEY", tool_name="t") == "for-all"

    await vault.create(
        tenant.tenant_id, name="SHOP_KEY", value="prod-only", description=None, actor=TEST, environment="production"
    )
    await vault.rotate(tenant.tenant_id, "SHOP_KEY", value="prod-v2", reason=None, actor=TEST, environment="production")
    assert await vault.reveal(production, "SHOP_KEY", tool_name="t") == "prod-v2"
    assert await vault.reveal(staging, "SHOP_KEY", tool_name="t") == "stage-only"

    # Deleting the unscoped secret leaves the scoped ones, and the other way round.
    await vault.delete(tenant.tenant_id, "SHOP_KEY", force=False, actor=TEST)
    assert await vault.reveal(staging, "SHOP_KEY", tool_name="t") == "stage-only"
    await vault.delete(tenant.tenant_id, "SHOP_KEY", force=False, actor=TEST, environment="staging")
    with pytest.raises(NotFound, match="no secret named 'SHOP_KEY' usable in staging"):
        await vault.reveal(staging, "SHOP_KEY", tool_name="t")
    assert await vault.reveal(production, "SHOP_KEY", tool_name="t") == "prod-v2"

    # Each secret keeps its own trail; each use names the environment the call ran in.
    prod_trail = await vault.audit(tenant.tenant_id, "SHOP_KEY", limit=50, environment="production")
    assert [(e.action, e.version, e.call_environment) for e in prod_trail] == [
        ("use", 2, "production"),
        ("use", 2, "production"),
        ("rotate", 2, None),
        ("create", 1, None),
    ]
    assert all(e.environment == "production" for e in prod_trail)
    unscoped = await vault.audit(tenant.tenant_id, "SHOP_KEY", limit=50)
    assert [(e.action, e.call_environment) for e in unscoped] == [
        ("use_failed", "staging"),
        ("delete", None),
        ("use", "production"),
        ("use", "production"),
        ("use", "staging"),
        ("create", None),
    ]
    staging_trail = await vault.audit(tenant.tenant_id, "SHOP_KEY", limit=50, environment="staging")
    assert [e.action for e in staging_trail] == ["delete", "use", "use", "use", "create"]
    got = await vault.describe(tenant.tenant_id, "SHOP_KEY", TEST, environment="production")
    assert got.record.environment == "production" and got.record.usage_count == 2


async def test_an_http_tool_in_staging_sends_the_staging_value(
    db: Database, tenant: Tenant, server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHORUS_HTTP_TOOLS_ALLOW_PRIVATE", "1")  # the stand-in API listens on loopback
    vault = vault_of(server)
    await vault.create(tenant.tenant_id, name="ECHO_KEY", value="live-1", description=None, actor=TEST)
    await vault.create(
        tenant.tenant_id, name="ECHO_KEY", value="test-1", description=None, actor=TEST, environment="staging"
    )
    api = inventory_api()
    async with serve(api) as base:
        tool = build_http_tool(
            ToolNeeded(
                tool_name="echo_order",
                input_schema={},
                http={
                    "method": "POST",
                    "url": base + "/echo",
                    "headers": {"Authorization": "Bearer ${secret:ECHO_KEY}"},
                },
            )
        )
        for environment, expected in (("staging", "test-1"), ("production", "live-1")):
            await tool.invoke(in_env(tenant, db, environment, vault=vault, thread=f"t-{environment}"), {})
            assert api.state.seen[-1]["headers"]["authorization"] == f"Bearer {expected}"
        # A context whose environment is neither: no value is guessed, the call is not made.
        with pytest.raises(ToolError, match="unknown environment 'qa'"):
            await tool.invoke(in_env(tenant, db, "qa", vault=vault), {})
    assert len(api.state.seen) == 2


async def test_a_ciphertext_moved_between_environments_does_not_open(db: Database, server: RunningServer) -> None:
    vault = vault_of(server)
    owner = await make_tenant(db)
    for environment in ("staging", "production", None):
        await vault.create(
            owner.tenant_id,
            name="MOVED",
            value=f"v-{environment}",
            description=None,
            actor=TEST,
            environment=environment,
        )

    async def copy_ciphertext(source: str | None, target: str | None) -> None:
        async with db.connection() as conn:
            await conn.execute(
                "UPDATE secret_versions v SET nonce = src.nonce, ciphertext = src.ciphertext"
                " FROM secret_versions src JOIN secrets s ON s.secret_id = src.secret_id, secrets t"
                " WHERE s.tenant_id = %s AND s.environment IS NOT DISTINCT FROM %s AND src.version = v.version"
                " AND t.secret_id = v.secret_id"
                " AND t.tenant_id = %s AND t.name = 'MOVED' AND t.environment IS NOT DISTINCT FROM %s",
                (owner.tenant_id, source, owner.tenant_id, target),
            )

    await copy_ciphertext("production", "staging")  # staging's row now holds production's (valid) ciphertext
    with pytest.raises(SecretUndecryptable, match=r"secret 'MOVED' for staging .*integrity check"):
        await vault.reveal(in_env(owner, db, "staging"), "MOVED", tool_name="t")
    assert await vault.reveal(in_env(owner, db, "production"), "MOVED", tool_name="t") == "v-production"
    await copy_ciphertext("production", None)  # and into the unscoped row
    await vault.delete(owner.tenant_id, "MOVED", force=False, actor=TEST, environment="production")
    with pytest.raises(SecretUndecryptable, match="integrity check"):
        await vault.reveal(in_env(owner, db, "production"), "MOVED", tool_name="t")
    failed = await vault.audit(owner.tenant_id, "MOVED", limit=5, environment="staging")
    assert failed[0].action == "use_failed" and "integrity" in (failed[0].detail or "")


async def test_names_per_environment(db: Database, server: RunningServer) -> None:
    vault = vault_of(server)
    repo = SecretRepository(db)
    owner, other = await make_tenant(db), await make_tenant(db)
    await vault.create(owner.tenant_id, name="EVERYWHERE", value="v", description=None, actor=TEST)
    await vault.create(owner.tenant_id, name="STAGE", value="v", description=None, actor=TEST, environment="staging")
    await vault.create(owner.tenant_id, name="PROD", value="v", description=None, actor=TEST, environment="production")
    await vault.create(owner.tenant_id, name="PROD", value="v", description=None, actor=TEST)
    await vault.create(other.tenant_id, name="THEIRS", value="v", description=None, actor=TEST, environment="staging")

    assert await repo.names(owner.tenant_id) == {"EVERYWHERE", "STAGE", "PROD"}
    assert await repo.names(owner.tenant_id, "staging") == {"EVERYWHERE", "STAGE", "PROD"}
    await vault.delete(owner.tenant_id, "PROD", force=False, actor=TEST)
    assert await repo.names(owner.tenant_id, "staging") == {"EVERYWHERE", "STAGE"}
    assert await repo.names(owner.tenant_id, "production") == {"EVERYWHERE", "PROD"}
    assert await repo.names_per_environment(owner.tenant_id) == {
        "staging": {"EVERYWHERE", "STAGE"},
        "production": {"EVERYWHERE", "PROD"},
    }
    assert await repo.names_per_environment(other.tenant_id) == {"staging": {"THEIRS"}, "production": set()}
    assert await repo.names_per_environment((await make_tenant(db)).tenant_id) == {
        "staging": set(),
        "production": set(),
    }


def _old_associated_data(tenant_id: str, name: str, version: int) -> bytes:
    """The associated data as sealed before migration 019, written out so a change to it fails here."""
    return f"chorus-secret\x00{tenant_id}\x00{name}\x00{version}".encode()


async def test_a_secret_stored_before_environments_still_opens_after_migration_019(
    db: Database, settings: Settings, database_url: str
) -> None:
    name = f"pre019_{uuid.uuid4().hex[:8]}"
    async with db.connection() as conn:
        await conn.execute(f'CREATE DATABASE "{name}"')
    old_db = await open_database(
        settings, url=make_conninfo(**{**conninfo_to_dict(database_url), "dbname": name}), migrate=False
    )
    try:
        folder = resources.files("chorus.agents.storage") / "migrations"
        files = sorted((p for p in folder.iterdir() if p.name.endswith(".sql")), key=lambda p: p.name)
        before = [p for p in files if p.name < "019"]
        async with old_db.connection() as conn:
            await conn.execute(
                "CREATE TABLE chorus_migrations (name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            for p in before:
                await conn.execute(p.read_text(encoding="utf-8").encode())
                await conn.execute("INSERT INTO chorus_migrations (name) VALUES (%s)", (p.name.removesuffix(".sql"),))
        tenant_id = await ensure_tenant(old_db, "before-019")
        key = load_vault_key(settings)  # the server's key (both read it from the same home)
        # What the vault wrote before 019: no environment, the old associated data.
        nonce, ciphertext = seal(key, "old-value", aad=_old_associated_data(tenant_id, "LEGACY_KEY", 1))
        secret_id = uuid.uuid4()
        async with old_db.connection() as conn:
            await conn.execute(
                "INSERT INTO secrets (secret_id, tenant_id, name, latest_version, created_by)"
                " VALUES (%s, %s, 'LEGACY_KEY', 1, 'old')",
                (secret_id, tenant_id),
            )
            await conn.execute(
                "INSERT INTO secret_versions (secret_id, tenant_id, version, nonce, ciphertext, key_id, created_by)"
                " VALUES (%s, %s, 1, %s, %s, %s, 'old')",
                (secret_id, tenant_id, nonce, ciphertext, key.key_id),
            )
            await conn.execute(
                "INSERT INTO secret_audit (audit_id, tenant_id, secret_name, version, action, actor)"
                " VALUES (%s, %s, 'LEGACY_KEY', 1, 'use', 'run:old')",
                (uuid.uuid4(), tenant_id),
            )

        applied = await apply_migrations(old_db)
        assert applied[0] == "019_secret_environments"

        vault = SecretVault(SecretRepository(old_db), key)
        for environment in ("staging", "production"):
            assert (
                await vault.reveal(in_env(tenant_id, old_db, environment), "LEGACY_KEY", tool_name="t") == "old-value"
            )
        (record,) = await vault.list_secrets(tenant_id, TEST)
        assert record.environment is None and record.usage_count == 3  # the old use and the two above
        # The unscoped name stays unique; a scoped one may join it.
        with pytest.raises(Conflict, match="already exists"):
            await vault.create(tenant_id, name="LEGACY_KEY", value="again", description=None, actor=TEST)
        await vault.create(
            tenant_id, name="LEGACY_KEY", value="new-stage", description=None, actor=TEST, environment="staging"
        )
        assert await vault.reveal(in_env(tenant_id, old_db, "staging"), "LEGACY_KEY", tool_name="t") == "new-stage"
        await vault.rotate(tenant_id, "LEGACY_KEY", value="old-v2", reason=None, actor=TEST)
        assert await vault.reveal(in_env(tenant_id, old_db, "production"), "LEGACY_KEY", tool_name="t") == "old-v2"
    finally:
        await old_db.close()
        async with db.connection() as conn:
            await conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


# Over HTTP: /api/v1/secrets with an environment.


async def test_api_manages_each_scope_of_a_name_apart(http: httpx.AsyncClient) -> None:
    values = [secret_value() for _ in range(3)]
    responses: list[httpx.Response] = []

    async def call(method: str, path: str, **kwargs: Any) -> httpx.Response:
        r = await http.request(method, f"{SECRETS}{path}", **kwargs)
        responses.append(r)
        return r

    everywhere = await call("POST", "", json={"name": "SHOP", "value": values[0]})
    assert everywhere.status_code == 201 and everywhere.json()["environment"] is None
    staged = await call("POST", "", json={"name": "SHOP", "value": values[1], "environment": "staging"})
    assert staged.status_code == 201 and staged.json()["environment"] == "staging", staged.text
    again = await call("POST", "", json={"name": "SHOP", "value": "x", "environment": "staging"})
    assert again.status_code == 409
    assert "for the staging environment already exists" in again.json()["detail"]
    assert "/api/v1/secrets/SHOP/rotate?environment=staging" in again.json()["detail"]

    listed = (await call("GET", "")).json()
    assert [(s["name"], s["environment"]) for s in listed["secrets"]] == [("SHOP", None), ("SHOP", "staging")]

    rotated = await call("POST", "/SHOP/rotate", params={"environment": "staging"}, json={"value": values[2]})
    assert rotated.status_code == 200 and rotated.json()["version"] == 2 and rotated.json()["environment"] == "staging"
    assert (await call("GET", "/SHOP")).json()["version"] == 1  # the unscoped one is untouched
    got = await call("GET", "/SHOP", params={"environment": "staging"})
    assert got.json()["version"] == 2 and [h["version"] for h in got.json()["rotation_history"]] == [1, 2]
    missing = await call("GET", "/SHOP", params={"environment": "production"})
    assert missing.status_code == 404 and "no secret named 'SHOP' scoped to production" in missing.json()["detail"]

    trail = (await call("GET", "/SHOP/audit", params={"environment": "staging"})).json()
    assert trail["environment"] == "staging"
    assert [e["action"] for e in trail["events"]] == ["read", "rotate", "create"]
    assert [e["action"] for e in (await call("GET", "/SHOP/audit")).json()["events"]] == ["read", "create"]

    deleted = await call("DELETE", "/SHOP", params={"environment": "staging"})
    assert deleted.status_code == 200
    assert deleted.json()["environment"] == "staging" and deleted.json()["environments_left_without"] == []
    assert (await call("GET", "/SHOP")).status_code == 200  # deleting the scoped one kept the unscoped one
    assert (await call("GET", "/SHOP", params={"environment": "staging"})).status_code == 404
    await call("POST", "", json={"name": "SHOP", "value": values[1], "environment": "production"})
    assert (await call("DELETE", "/SHOP")).json()["environments_left_without"] == ["staging"]
    assert (await call("GET", "/SHOP", params={"environment": "production"})).status_code == 200  # and vice versa

    for r in responses:
        assert all(v not in r.text for v in values)


@pytest.mark.parametrize("bad", ["prod", "Staging", "", "staging ", "dev" * 200, "'; DROP TABLE secrets;--"])
async def test_an_unknown_environment_is_a_clear_422(http: httpx.AsyncClient, bad: str) -> None:
    assert (await http.post(SECRETS, json={"name": "THERE", "value": "v"})).status_code == 201
    created = await http.post(SECRETS, json={"name": "NEW_ONE", "value": "v", "environment": bad})
    assert created.status_code == 422
    assert any(e["path"] == "$.environment" and "unknown environment" in e["message"] for e in created.json()["errors"])
    assert "'staging' or 'production'" in created.text
    for name in ("THERE", "NEVER"):
        for method, suffix, body in (
            ("GET", "", None),
            ("POST", "/rotate", {"value": "v2"}),
            ("DELETE", "", None),
            ("GET", "/audit", None),
        ):
            r = await http.request(method, f"{SECRETS}/{name}{suffix}", params={"environment": bad}, json=body)
            assert r.status_code == 422, (method, suffix, r.text)
            assert r.json()["errors"][0]["path"] == "$.environment"
            assert "unknown environment" in r.json()["detail"] and "'staging' or 'production'" in r.json()["detail"]
    not_text = await http.post(SECRETS, json={"name": "NEW_ONE", "value": "v", "environment": ["staging"]})
    assert not_text.status_code == 422 and not_text.json()["errors"][0]["path"] == "$.environment"
    assert (await http.get(f"{SECRETS}/THERE")).json()["version"] == 1  # nothing changed


async def test_only_admins_and_only_the_owner_reach_a_scoped_secret(
    server: RunningServer, db: Database, tenant: Tenant
) -> None:
    async with httpx.AsyncClient(base_url=server.url, headers={"x-api-key": tenant.key}) as admin:
        made = await admin.post(SECRETS, json={"name": "MINE", "value": secret_value(), "environment": "staging"})
        assert made.status_code == 201
    staging = {"environment": "staging"}
    for role in ("viewer", "config_manager", "developer", "platform_engineer"):
        key = await create_api_key(db, tenant_id=tenant.tenant_id, role=role)  # type: ignore[arg-type]
        async with httpx.AsyncClient(base_url=server.url, headers={"x-api-key": key}) as client:
            for r in (
                await client.post(SECRETS, json={"name": "NEW_ONE", "value": "x", "environment": "staging"}),
                await client.get(f"{SECRETS}/MINE", params=staging),
                await client.post(f"{SECRETS}/MINE/rotate", params=staging, json={"value": "y"}),
                await client.delete(f"{SECRETS}/MINE", params=staging),
                await client.get(f"{SECRETS}/MINE/audit", params=staging),
            ):
                assert r.status_code == 403, (role, r.request.method, r.request.url, r.text)
    other = await make_tenant(db)
    async with httpx.AsyncClient(base_url=server.url, headers={"x-api-key": other.key}) as intruder:
        for method, suffix, body in (
            ("GET", "", None),
            ("POST", "/rotate", {"value": "hijack"}),
            ("DELETE", "", None),
            ("GET", "/audit", None),
        ):
            theirs = await intruder.request(method, f"{SECRETS}/MINE{suffix}", params=staging, json=body)
            unknown = await intruder.request(method, f"{SECRETS}/NEVER{suffix}", params=staging, json=body)
            assert theirs.status_code == unknown.status_code == 404
            assert theirs.json() == json.loads(unknown.text.replace("NEVER", "MINE"))
        # The intruder may store its own MINE for staging: names are per tenant.
        own = await intruder.post(SECRETS, json={"name": "MINE", "value": "theirs", "environment": "staging"})
        assert own.status_code == 201
    async with httpx.AsyncClient(base_url=server.url, headers={"x-api-key": tenant.key}) as admin:
        got = await admin.get(f"{SECRETS}/MINE", params=staging)
        assert got.json()["version"] == 1 and got.json()["created_by"].startswith("key:")
        assert [e["action"] for e in (await admin.get(f"{SECRETS}/MINE/audit", params=staging)).json()["events"]] == [
            "read",
            "create",
        ]


async def test_delete_is_refused_only_when_an_environment_would_lose_a_referenced_name(
    http: httpx.AsyncClient, acme_config: dict[str, Any]
) -> None:
    await http.post(SECRETS, json={"name": "USED", "value": secret_value()})
    await http.post(SECRETS, json={"name": "USED", "value": secret_value(), "environment": "staging"})
    cfg = with_header_tool(acme_config, {"Authorization": "Bearer ${secret:USED}"})
    stored = await http.post("/api/v1/configs", json=cfg)
    assert stored.status_code == 201, stored.text

    # Staging falls back to the unscoped secret: nothing breaks.
    gone = await http.delete(f"{SECRETS}/USED", params={"environment": "staging"})
    assert gone.status_code == 200 and gone.json()["dependent_configs"] == []
    await http.post(SECRETS, json={"name": "USED", "value": secret_value(), "environment": "staging"})

    # Deleting the unscoped one would leave production without USED.
    refused = await http.delete(f"{SECRETS}/USED")
    assert refused.status_code == 409
    assert refused.json()["environments_left_without"] == ["production"]
    assert "production would have no secret of that name" in refused.json()["detail"]
    assert [d["config_id"] for d in refused.json()["dependent_configs"]] == [stored.json()["config_id"]]
    forced = await http.delete(f"{SECRETS}/USED", params={"force": "true"})
    assert forced.status_code == 200 and forced.json()["environments_left_without"] == ["production"]
    assert forced.json()["dependent_configs"][0]["config_id"] == stored.json()["config_id"]

    # A config is valid while each name it references exists in at least one environment.
    again = await http.post("/api/v1/configs", json=with_header_tool(acme_config, {"X-Key": "${secret:USED}"}))
    assert again.status_code == 200 and again.json()["validation_status"] == "passed", again.text  # a new version
    await http.delete(f"{SECRETS}/USED", params={"environment": "staging", "force": "true"})
    refused_config = await http.post("/api/v1/configs", json=with_header_tool(acme_config, {"X-Key": "${secret:USED}"}))
    assert refused_config.status_code == 422 and "secret 'USED' does not exist for this tenant" in refused_config.text


async def test_a_staging_keys_conversation_sends_the_staging_secret_end_to_end(
    http: httpx.AsyncClient, server: RunningServer, db: Database, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHORUS_HTTP_TOOLS_ALLOW_PRIVATE", "1")  # the stand-in API listens on loopback
    shared, staged = secret_value(), secret_value()
    await http.post(SECRETS, json={"name": "ECHO_KEY", "value": shared})
    await http.post(SECRETS, json={"name": "ECHO_KEY", "value": staged, "environment": "staging"})
    staging_key = await create_api_key(db, tenant_id=tenant.tenant_id, role="developer", environment="staging")
    api = inventory_api()
    echo = {"messages": [{"role": "user", "content": "Please echo order ORD-1001"}]}
    async with serve(api) as base:
        cfg = with_header_tool(
            example("acme_support_bot"), {"Authorization": "Bearer ${secret:ECHO_KEY}"}, url=base + "/echo"
        )
        assistant_id = (await http.post("/api/v1/configs", json=cfg)).json()["assistant_id"]
        async with httpx.AsyncClient(base_url=server.url, headers={"x-api-key": staging_key}, timeout=30) as staging:
            for client, expected in ((staging, staged), (http, shared)):
                thread_id = str(uuid.uuid4())
                resp = await client.post(
                    f"/threads/{thread_id}/runs/wait",
                    json={"assistant_id": assistant_id, "input": echo, "if_not_exists": "create"},
                )
                assert resp.status_code == 200, resp.text
                assert api.state.seen[-1]["headers"]["authorization"] == f"Bearer {expected}"
    uses = (await http.get(f"{SECRETS}/ECHO_KEY/audit", params={"environment": "staging"})).json()["events"]
    assert [e["call_environment"] for e in uses if e["action"] == "use"] == ["staging"]
