"""API keys: `chorus_<random>`, stored as SHA-256, each mapping to a tenant and a role; created, listed,
revoked, and resolved (with a short cache) on every request."""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from chorus.agents.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthorized
from chorus.agents.storage.database import Database
from chorus.agents.tenancy.demo_data import seed_demo_data
from chorus.agents.tenancy.environments import DEFAULT_ENVIRONMENT, Environment
from chorus.agents.tenancy.permissions import (
    ApiLevel,
    ConfigPermission,
    Role,
    RoleName,
    canonical_role,
    has_api_level,
    has_permission,
    roles_with_api_level,
    roles_with_permission,
)

# How long a process trusts a resolved key. A revocation takes effect at once in the process that made
# it and within this many seconds in every other process sharing the database (docs/operations.md).
CACHE_SECONDS = 5.0
PREFIX_LENGTH = 12
_CACHE_LIMIT = 10_000
# The tenant `chorus serve --demo` (`make run`) fills with the example bots and their knowledge, and the one
# every CLI command works in unless given `--tenant` (or CHORUS_TENANT): a newcomer meets one tenant only.
DEFAULT_TENANT = "demo"


@dataclass(frozen=True)
class Principal:
    tenant_id: str
    tenant_name: str
    role: Role
    key_id: str
    # The environment the key works in: its conversations get what this environment serves.
    environment: Environment = DEFAULT_ENVIRONMENT

    def require(self, level: ApiLevel | Literal["admin"]) -> None:
        """Refuse unless the key's role reaches `level` on the API (`admin`: organization_admin)."""
        wanted: ApiLevel = "organization_admin" if level == "admin" else level
        if not has_api_level(self.role, wanted):
            others = [r for r in roles_with_api_level(wanted) if r != wanted]
            also = f" (or {', '.join(others)})" if others else ""
            raise Forbidden(f"this needs the '{wanted}' role{also}; your key has '{self.role}'")

    def require_permission(self, permission: ConfigPermission) -> None:
        """Refuse unless the key's role has this config permission (seed 001 §6 config_permissions)."""
        if not has_permission(self.role, permission):
            holders = ", ".join(roles_with_permission(permission))
            raise Forbidden(
                f"this needs the '{permission}' permission, which the roles {holders} have; your key has "
                f"'{self.role}' (GET /api/v1/configs/permissions lists them)"
            )


@dataclass(frozen=True)
class KeyInfo:
    """What may be shown about a key: never its hash nor the key itself."""

    key_id: str
    prefix: str
    name: str | None
    role: Role
    environment: Environment
    created_at: datetime
    created_by: str | None
    last_used_at: datetime | None
    revoked_at: datetime | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "key_id": self.key_id,
            "prefix": self.prefix,
            "name": self.name,
            "role": self.role,
            "environment": self.environment,
            "created_at": self.created_at,
            "created_by": self.created_by,
            "last_used_at": self.last_used_at,
            "revoked_at": self.revoked_at,
            "revoked": self.revoked_at is not None,
        }


@dataclass(frozen=True)
class NewKey:
    info: KeyInfo
    key: str


def key_hash(key: str) -> str:
    """What is stored of a key (API or publishable): its SHA-256, never the key."""
    return hashlib.sha256(key.encode()).hexdigest()


def _info(row: dict[str, Any]) -> KeyInfo:
    return KeyInfo(
        key_id=str(row["key_id"]),
        prefix=row["prefix"],
        name=row["name"],
        role=row["role"],
        environment=row["environment"],
        created_at=row["created_at"],
        created_by=str(row["created_by"]) if row["created_by"] else None,
        last_used_at=row["last_used_at"],
        revoked_at=row["revoked_at"],
    )


_COLUMNS = "key_id, prefix, name, role, environment, created_at, created_by, last_used_at, revoked_at"


def _key_uuid(key_id: str) -> str:
    try:
        return str(uuid.UUID(key_id))
    except ValueError:
        raise NotFound(f"API key '{key_id}' does not exist") from None


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
            if row is None:
                raise NotFound(f"tenant '{name}' was deleted while being looked up; try again")
            return str(row["tenant_id"])
    tenant_id = str(row["tenant_id"])
    await seed_demo_data(db, tenant_id)
    return tenant_id


async def find_tenant(db: Database, name: str) -> str:
    """The id of an existing tenant, by name."""
    async with db.connection() as conn:
        cur = await conn.execute("SELECT tenant_id FROM tenants WHERE name = %s", (name,))
        row = await cur.fetchone()
    if row is None:
        raise NotFound(f"no tenant called '{name}'; create one with `chorus keys create --tenant {name}`")
    return str(row["tenant_id"])


async def issue_api_key(
    db: Database,
    *,
    tenant_id: str,
    role: RoleName,
    name: str | None = None,
    created_by: str | None = None,
    environment: Environment = DEFAULT_ENVIRONMENT,
) -> NewKey:
    """Create a key; the clear key is in the result and nowhere else (only its hash is stored)."""
    try:
        stored = canonical_role(role)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None
    key = "chorus_" + secrets.token_urlsafe(32)
    async with db.connection() as conn:
        cur = await conn.execute(
            "INSERT INTO api_keys (key_id, tenant_id, key_hash, prefix, role, name, created_by, environment)"
            f" VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING {_COLUMNS}",
            (uuid.uuid4(), tenant_id, key_hash(key), key[:PREFIX_LENGTH], stored, name, created_by, environment),
        )
        row = await cur.fetchone()
    if row is None:
        raise NotFound("the tenant was deleted while the key was being created")
    return NewKey(_info(row), key)


async def create_api_key(
    db: Database,
    *,
    tenant_id: str,
    role: RoleName,
    name: str | None = None,
    environment: Environment = DEFAULT_ENVIRONMENT,
) -> str:
    """Create a key and return it in clear; only its hash is stored, so this is the one chance to see it."""
    return (await issue_api_key(db, tenant_id=tenant_id, role=role, name=name, environment=environment)).key


async def list_api_keys(db: Database, tenant_id: str) -> list[KeyInfo]:
    async with db.connection() as conn:
        cur = await conn.execute(
            f"SELECT {_COLUMNS} FROM api_keys WHERE tenant_id = %s ORDER BY created_at DESC, key_id", (tenant_id,)
        )
        return [_info(r) for r in await cur.fetchall()]


async def find_keys(db: Database, ref: str, *, tenant_id: str | None = None) -> list[tuple[str, str]]:
    """(key id, tenant id) of the keys matching a key id, a prefix (`chorus_xxxxx`) or the key itself."""
    sql = "SELECT key_id, tenant_id FROM api_keys WHERE (key_id::text = %s OR prefix = %s OR key_hash = %s)"
    params: list[Any] = [ref.lower() if len(ref) == 36 else ref, ref, key_hash(ref)]
    if tenant_id is not None:
        sql += " AND tenant_id = %s"
        params.append(tenant_id)
    async with db.connection() as conn:
        cur = await conn.execute(sql, params)
        return [(str(r["key_id"]), str(r["tenant_id"])) for r in await cur.fetchall()]


async def revoke_api_key(
    db: Database,
    *,
    tenant_id: str,
    key_id: str,
    keep_an_admin: bool = True,
    only_environment: Environment | None = None,
) -> KeyInfo:
    """Revoke a key of the tenant (idempotent). With `keep_an_admin`, the tenant's last active
    organization_admin key cannot be revoked: over HTTP that would lock the tenant out of key management.
    With `only_environment`, a key of another environment is refused (403)."""
    key_id = _key_uuid(key_id)
    async with db.connection() as conn, conn.transaction():
        if only_environment is not None:
            cur = await conn.execute(
                "SELECT environment FROM api_keys WHERE tenant_id = %s AND key_id = %s", (tenant_id, key_id)
            )
            found = await cur.fetchone()
            if found is not None and found["environment"] != only_environment:
                raise Forbidden(f"a {only_environment} key revokes {only_environment} keys only")
        # Lock the tenant's active organization_admin keys so two concurrent revocations cannot remove the last two.
        cur = await conn.execute(
            "SELECT key_id FROM api_keys WHERE tenant_id = %s AND role = 'organization_admin' AND revoked_at IS NULL"
            " FOR UPDATE",
            (tenant_id,),
        )
        admins = {str(r["key_id"]) for r in await cur.fetchall()}
        if keep_an_admin and admins == {key_id}:
            raise Conflict(
                "this is the tenant's last active organization_admin key; create another one first "
                "(POST /api/v1/keys with role 'organization_admin'), then revoke this one"
            )
        cur = await conn.execute(
            "UPDATE api_keys SET revoked_at = coalesce(revoked_at, now())"
            f" WHERE tenant_id = %s AND key_id = %s RETURNING {_COLUMNS}",
            (tenant_id, key_id),
        )
        row = await cur.fetchone()
    if row is None:
        raise NotFound(f"API key '{key_id}' does not exist")
    return _info(row)


async def resolve_api_key(db: Database, key: str) -> Principal:
    """The principal of an active key; records when the key was last used."""
    digest = key_hash(key)
    async with db.connection() as conn:
        cur = await conn.execute(
            "UPDATE api_keys k SET last_used_at = now() FROM tenants t"
            " WHERE t.tenant_id = k.tenant_id AND k.key_hash = %s AND k.revoked_at IS NULL"
            " RETURNING k.key_id, k.role, k.environment, t.tenant_id, t.name",
            (digest,),
        )
        row = await cur.fetchone()
        if row is None:
            cur = await conn.execute("SELECT revoked_at FROM api_keys WHERE key_hash = %s", (digest,))
            revoked = await cur.fetchone()
    if row is None:
        if revoked is not None:
            raise Unauthorized(
                f"this API key was revoked at {revoked['revoked_at'].isoformat()}; ask an organization_admin of "
                "your tenant for a new key (POST /api/v1/keys or `chorus keys create`)"
            )
        raise Unauthorized("unknown API key; create one with `chorus keys create`")
    return Principal(str(row["tenant_id"]), row["name"], row["role"], str(row["key_id"]), row["environment"])


class KeyResolver:
    """Resolves keys to principals, caching hits for CACHE_SECONDS so auth stays off the hot path."""

    def __init__(self, db: Database, *, cache_seconds: float = CACHE_SECONDS) -> None:
        self._db = db
        self._cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, Principal]] = {}

    async def resolve(self, key: str | None) -> Principal:
        if not key:
            raise Unauthorized("missing API key: send it as 'X-Api-Key: <key>' or 'Authorization: Bearer <key>'")
        digest = key_hash(key)
        hit = self._cache.get(digest)
        now = time.monotonic()
        if hit and now - hit[0] < self._cache_seconds:
            return hit[1]
        principal = await resolve_api_key(self._db, key)
        if len(self._cache) >= _CACHE_LIMIT:  # bounded: drop what has expired, or everything
            fresh = {d: e for d, e in self._cache.items() if now - e[0] < self._cache_seconds}
            self._cache = fresh if len(fresh) < _CACHE_LIMIT else {}
        self._cache[digest] = (now, principal)
        return principal

    def forget(self, key_id: str) -> None:
        """Drop a revoked key from the cache, so it is refused from the next request on."""
        for digest in [d for d, (_, p) in self._cache.items() if p.key_id == key_id]:
            del self._cache[digest]
