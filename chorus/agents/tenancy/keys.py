"""API keys: `chorus_<random>`, stored as SHA-256, each mapping to a tenant and a role."""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from dataclasses import dataclass
from typing import Literal

from chorus.agents.errors import Forbidden, InvalidInput, Unauthorized
from chorus.agents.storage.database import Database
from chorus.agents.tenancy.demo_data import seed_demo_data

Role = Literal["admin", "developer", "viewer"]
ROLES: tuple[Role, ...] = ("admin", "developer", "viewer")
_RANK = {"viewer": 0, "developer": 1, "admin": 2}
_CACHE_SECONDS = 30.0


@dataclass(frozen=True)
class Principal:
    tenant_id: str
    tenant_name: str
    role: Role
    key_id: str

    def require(self, role: Role) -> None:
        if _RANK[self.role] < _RANK[role]:
            raise Forbidden(f"this needs the '{role}' role; your key has '{self.role}'")


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


async def ensure_tenant(db: Database, name: str) -> str:
    """The id of the tenant called `name`, creating it (with its demo data) if needed."""
    if not name or len(name) > 100:
        raise InvalidInput("a tenant name must be 1-100 characters")
    async with db.connection() as conn:
        cur = await conn.execute(
            "INSERT INTO tenants (tenant_id, name) VALUES (%s, %s) ON CONFLICT (name) DO NOTHING RETURNING tenant_id",
            (uuid.uuid4(), name),
        )
        row = await cur.fetchone()
        if row is None:
            cur = await conn.execute("SELECT tenant_id FROM tenants WHERE name = %s", (name,))
            row = await cur.fetchone()
            assert row is not None
            return str(row["tenant_id"])
    tenant_id = str(row["tenant_id"])
    await seed_demo_data(db, tenant_id)
    return tenant_id


async def create_api_key(db: Database, *, tenant_id: str, role: Role, name: str | None = None) -> str:
    """Create a key and return it in clear; only its hash is stored, so this is the one chance to see it."""
    if role not in ROLES:
        raise InvalidInput(f"role must be one of {', '.join(ROLES)}")
    key = "chorus_" + secrets.token_urlsafe(32)
    async with db.connection() as conn:
        await conn.execute(
            "INSERT INTO api_keys (key_id, tenant_id, key_hash, prefix, role, name) VALUES (%s, %s, %s, %s, %s, %s)",
            (uuid.uuid4(), tenant_id, _hash(key), key[:12], role, name),
        )
    return key


class KeyResolver:
    """Resolves keys to principals, caching hits briefly so auth stays off the hot path."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._cache: dict[str, tuple[float, Principal]] = {}

    async def resolve(self, key: str | None) -> Principal:
        if not key:
            raise Unauthorized("missing API key: send it as 'X-Api-Key: <key>' or 'Authorization: Bearer <key>'")
        digest = _hash(key)
        hit = self._cache.get(digest)
        now = time.monotonic()
        if hit and now - hit[0] < _CACHE_SECONDS:
            return hit[1]
        principal = await resolve_api_key(self._db, key)
        self._cache[digest] = (now, principal)
        return principal


async def resolve_api_key(db: Database, key: str) -> Principal:
    async with db.connection() as conn:
        cur = await conn.execute(
            "SELECT k.key_id, k.role, t.tenant_id, t.name FROM api_keys k JOIN tenants t USING (tenant_id)"
            " WHERE k.key_hash = %s AND k.revoked_at IS NULL",
            (_hash(key),),
        )
        row = await cur.fetchone()
    if row is None:
        raise Unauthorized("unknown or revoked API key; create one with `chorus keys create`")
    return Principal(str(row["tenant_id"]), row["name"], row["role"], str(row["key_id"]))
