"""API keys over HTTP (organization_admin only) and with the CLI: create, list, revoke; a revoked key
answers 401 at once; migration 015 keeps pre-seed admin keys working."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import httpx
import psycopg
import pytest

from chorus.agents.storage.database import Database
from chorus.agents.tenancy.keys import create_api_key, key_hash
from tests.conftest import RunningServer, Tenant, make_tenant
from tests.test_cli import run_cli


async def test_admin_creates_lists_and_revokes_keys(http: httpx.AsyncClient, server: RunningServer) -> None:
    created = await http.post("/api/v1/keys", json={"role": "developer", "name": "ci"})
    assert created.status_code == 201, created.text
    new = created.json()
    assert new["key"].startswith(new["prefix"]) and new["role"] == "developer" and new["revoked"] is False
    async with httpx.AsyncClient(base_url=server.url, headers={"x-api-key": new["key"]}) as dev:
        assert (await dev.post("/threads", json={})).status_code == 200
        listed = (await http.get("/api/v1/keys")).json()["keys"]
        mine = next(k for k in listed if k["key_id"] == new["key_id"])
        assert mine["name"] == "ci" and mine["last_used_at"] is not None and mine["created_by"]
        assert all("key" not in k and "key_hash" not in k for k in listed)
        assert new["key"] not in (await http.get("/api/v1/keys")).text

        assert (await http.delete(f"/api/v1/keys/{new['key_id']}")).status_code == 204
        refused = await dev.post("/threads", json={})  # at once: the revoking process forgot it
        assert refused.status_code == 401
        assert "revoked" in refused.json()["detail"]
    listed = (await http.get("/api/v1/keys")).json()["keys"]
    assert next(k for k in listed if k["key_id"] == new["key_id"])["revoked"] is True
    assert (await http.delete(f"/api/v1/keys/{new['key_id']}")).status_code == 204  # idempotent


async def test_the_last_admin_key_cannot_be_revoked(http: httpx.AsyncClient, tenant: Tenant) -> None:
    keys = (await http.get("/api/v1/keys")).json()["keys"]
    (admin,) = [k for k in keys if k["role"] == "organization_admin"]
    refused = await http.delete(f"/api/v1/keys/{admin['key_id']}")
    assert refused.status_code == 409
    assert "last active organization_admin key" in refused.json()["detail"]
    second = (await http.post("/api/v1/keys", json={"role": "organization_admin"})).json()
    assert (await http.delete(f"/api/v1/keys/{admin['key_id']}")).status_code == 204
    assert (await http.get("/api/v1/keys")).status_code == 401  # our own key is gone now
    async with httpx.AsyncClient(base_url=str(http.base_url), headers={"x-api-key": second["key"]}) as other:
        assert (await other.delete(f"/api/v1/keys/{second['key_id']}")).status_code == 409


async def test_keys_need_the_admin_role_and_stay_in_their_tenant(
    http: httpx.AsyncClient, server: RunningServer, db: Database, tenant: Tenant
) -> None:
    developer = await create_api_key(db, tenant_id=tenant.tenant_id, role="developer")
    async with httpx.AsyncClient(base_url=server.url, headers={"x-api-key": developer}) as dev:
        assert (await dev.get("/api/v1/keys")).status_code == 403
        assert (await dev.post("/api/v1/keys", json={"role": "admin"})).status_code == 403
    key_id = (await http.get("/api/v1/keys")).json()["keys"][0]["key_id"]
    other = await make_tenant(db)
    async with httpx.AsyncClient(base_url=server.url, headers={"x-api-key": other.key}) as stranger:
        for path in (f"/api/v1/keys/{key_id}", "/api/v1/keys/not-a-uuid"):
            resp = await stranger.delete(path)
            assert resp.status_code == 404, resp.text
        assert all(k["key_id"] != key_id for k in (await stranger.get("/api/v1/keys")).json()["keys"])
    assert (await http.post("/api/v1/keys", json={"role": "root"})).status_code == 422


async def test_cli_lists_and_revokes(
    http: httpx.AsyncClient, tenant: Tenant, database_url: str, tmp_path: Path
) -> None:
    new = (await http.post("/api/v1/keys", json={"role": "viewer", "name": "dashboard"})).json()
    listed = run_cli(["keys", "list", "--tenant", tenant.name], database_url, tmp_path)
    assert listed.returncode == 0, listed.stderr
    line = next(row for row in listed.stdout.splitlines() if new["key_id"] in row)
    assert new["prefix"] in line and "viewer" in line and "dashboard" in line
    assert new["key"] not in listed.stdout

    revoked = run_cli(["keys", "revoke", new["prefix"]], database_url, tmp_path)
    assert revoked.returncode == 0, revoked.stderr
    assert f"revoked {new['key_id']}" in revoked.stdout
    assert next(k for k in (await http.get("/api/v1/keys")).json()["keys"] if k["key_id"] == new["key_id"])["revoked"]

    by_key = (await http.post("/api/v1/keys", json={"role": "developer"})).json()
    assert run_cli(["keys", "revoke", by_key["key"]], database_url, tmp_path).returncode == 0
    assert (await http.post("/threads/search", json={}, headers={"x-api-key": by_key["key"]})).status_code == 401

    missing = run_cli(["keys", "revoke", "chorus_nope"], database_url, tmp_path)
    assert missing.returncode == 1 and "no key matches" in missing.stderr
    unknown = run_cli(["keys", "list", "--tenant", "no-such-tenant-x"], database_url, tmp_path)
    assert unknown.returncode == 1 and "no tenant called" in unknown.stderr


class _RolledBack(Exception):
    """Raised to roll the migration check's transaction back."""


async def test_migration_015_turns_admin_keys_into_organization_admin_keys_that_still_work(
    db: Database, tenant: Tenant
) -> None:
    """Replayed inside a transaction that is rolled back: a key stored as 'admin' before the migration is an
    organization_admin key after it, with the same hash (so the same key), and 'admin' can no longer be stored."""
    sql = (resources.files("chorus.agents.storage") / "migrations" / "015_seed_roles.sql").read_text()
    digest = key_hash("chorus_pre-015-key")
    with pytest.raises(_RolledBack):
        async with db.connection() as conn, conn.transaction():
            await conn.execute("ALTER TABLE api_keys DROP CONSTRAINT api_keys_role_check")
            await conn.execute(
                "INSERT INTO api_keys (key_id, tenant_id, key_hash, prefix, role) VALUES"
                " (gen_random_uuid(), %s, %s, 'chorus_pre-0', 'admin')",
                (tenant.tenant_id, digest),
            )
            await conn.execute(sql)
            cur = await conn.execute("SELECT role FROM api_keys WHERE key_hash = %s", (digest,))
            assert (await cur.fetchone())["role"] == "organization_admin"  # type: ignore[index]
            cur = await conn.execute("SELECT count(*) AS n FROM api_keys WHERE role = 'admin'")
            assert (await cur.fetchone())["n"] == 0  # type: ignore[index]
            with pytest.raises(psycopg.errors.CheckViolation):
                async with conn.transaction():
                    await conn.execute("UPDATE api_keys SET role = 'admin' WHERE key_hash = %s", (digest,))
            raise _RolledBack
