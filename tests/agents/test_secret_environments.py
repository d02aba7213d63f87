"""Environment-scoped secrets: a tool call in staging or production uses the secret scoped to its environment,
else the unscoped one; a scoped ciphertext is bound to its environment; secrets stored before environments
existed still open after migration 019."""

from __future__ import annotations

import uuid
from importlib import resources

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
from chorus.agents.tenancy.keys import ensure_tenant
from chorus.agents.tools.http_tool import build_http_tool
from chorus.agents.tools.registry import ToolContext
from tests.conftest import RunningServer, Tenant, make_tenant
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
