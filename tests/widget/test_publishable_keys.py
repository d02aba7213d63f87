"""Publishable keys managed by an admin: over HTTP and with `chorus widget-keys`; shown once, stored as a hash,
validated (the tenant's chatbots, real origins, limits), revoked."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from chorus.agents.storage.database import Database
from tests.conftest import Tenant
from tests.test_cli import run_cli
from tests.widget.conftest import ORIGIN, Site, create_key, make_assistant


async def test_a_key_is_shown_once_and_stored_as_a_hash(site: Site, db: Database) -> None:
    created = await create_key(
        site.admin,
        [site.assistant_id],
        allowed_origins=["https://Shop.Example.com:443/", "http://localhost:8080"],
        name="shop",
    )
    assert created["key"].startswith("pk_chorus_")
    assert created["allowed_origins"] == ["https://shop.example.com", "http://localhost:8080"]
    assert created["key_requests_per_minute"] == 600 and created["visitor_requests_per_minute"] == 30
    listed = (await site.admin.get("/api/v1/publishable-keys")).json()["keys"]
    mine = [k for k in listed if k["key_id"] == created["key_id"]]
    assert len(mine) == 1 and "key" not in mine[0] and mine[0]["prefix"] == created["key"][:16]
    assert created["key"] not in str(listed)
    async with db.connection() as conn:
        cur = await conn.execute("SELECT * FROM publishable_keys WHERE key_id = %s", (created["key_id"],))
        row = await cur.fetchone()
    assert row is not None and created["key"] not in str(row)


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"allowed_origins": ["*"]}, "$.allowed_origins[0]"),
        ({"allowed_origins": ["https://shop.example.com/widget"]}, "$.allowed_origins[0]"),
        ({"allowed_origins": ["ftp://shop.example.com"]}, "$.allowed_origins[0]"),
        ({"allowed_origins": ["http://[::1"]}, "$.allowed_origins[0]"),
        ({"allowed_origins": ["https://shop.example.com:99999"]}, "$.allowed_origins[0]"),
        ({"allowed_origins": [ORIGIN, "shop.example.com"]}, "$.allowed_origins[1]"),
        ({"allowed_origins": []}, "allow_no_origin"),
        ({"assistant_ids": []}, "assistant_ids"),
        ({"assistant_ids": ["not-a-uuid"]}, "$.assistant_ids[0]"),
        ({"assistant_ids": [str(uuid.uuid4())]}, "does not exist"),
        ({"visitor_requests_per_minute": 0}, "visitor_requests_per_minute"),
        ({"role": "admin"}, "role"),
    ],
)
async def test_a_bad_key_request_is_a_422_naming_the_field(site: Site, change: dict[str, Any], named: str) -> None:
    body = {"assistant_ids": [site.assistant_id], "allowed_origins": [ORIGIN], **change}
    resp = await site.admin.post("/api/v1/publishable-keys", json=body)
    assert resp.status_code == 422 and named in resp.text, resp.text


async def test_a_voicebot_cannot_be_put_on_a_widget(site: Site, voice_config: dict[str, Any]) -> None:
    voice = await make_assistant(site.admin, voice_config, graph_id="voicebot")
    resp = await site.admin.post(
        "/api/v1/publishable-keys", json={"assistant_ids": [voice], "allowed_origins": [ORIGIN]}
    )
    assert resp.status_code == 422 and "not a chatbot" in resp.text


async def test_revoking_is_idempotent_and_scoped_to_the_tenant(site: Site, other_admin: httpx.AsyncClient) -> None:
    assert (await other_admin.delete(f"/api/v1/publishable-keys/{site.key_id}")).status_code == 404
    assert (await site.client(key=True).post("/widget/v1/session")).status_code == 200  # untouched
    for _ in range(2):
        assert (await site.admin.delete(f"/api/v1/publishable-keys/{site.key_id}")).status_code == 204
    assert (await site.admin.delete("/api/v1/publishable-keys/nope")).status_code == 404


@pytest.fixture
async def other_admin(site: Site, db: Database) -> Any:
    from tests.conftest import make_tenant

    other = await make_tenant(db)
    async with httpx.AsyncClient(base_url=site.server.url, headers={"x-api-key": other.key}) as client:
        yield client


def test_widget_keys_commands(site: Site, tenant: Tenant, database_url: str, chorus_home: Path) -> None:
    def cli(*args: str) -> tuple[int, str]:
        out = run_cli(["widget-keys", *args], database_url, chorus_home)
        return out.returncode, out.stdout + out.stderr

    code, text = cli(
        "create", "--tenant", tenant.name, "--bot", site.assistant_id, "--origin", ORIGIN, "--visitor-rpm", "10"
    )
    assert code == 0 and text.strip().startswith("pk_chorus_"), text
    key = text.strip()
    code, text = cli("list", "--tenant", tenant.name)
    assert code == 0 and key[:16] in text and "600/10" in text and ORIGIN in text and key not in text
    code, text = cli("create", "--tenant", tenant.name, "--bot", site.assistant_id, "--origin", "*")
    assert code == 1 and "not an origin" in text
    code, text = cli("revoke", key[:16])
    assert code == 0 and "revoked" in text
    code, text = cli("revoke", "pk_chorus_nothing")
    assert code == 1 and "no publishable key matches" in text
