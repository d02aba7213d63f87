"""SQL for secrets, their encrypted versions and their audit trail. Every statement is scoped to a tenant.

A secret is named by its name and its environment (None: the secret serving every environment); the same
name may be stored unscoped and once per environment.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg.errors import UniqueViolation
from psycopg.rows import DictRow

from chorus.agents.errors import Conflict, NotFound
from chorus.agents.secrets.environments import ENVIRONMENTS, scope_label
from chorus.agents.storage.database import Database


@dataclass(frozen=True)
class Actor:
    """Who touched a secret: an API key, a CLI user, or a tool call inside a run."""

    label: str
    thread_id: str | None = None
    run_id: str | None = None
    tool_name: str | None = None
    tool_call_id: str | None = None
    call_environment: str | None = None  # the environment a tool call ran in


@dataclass(frozen=True)
class SecretRecord:
    name: str
    environment: str | None
    description: str | None
    latest_version: int
    created_by: str
    created_at: datetime
    updated_at: datetime
    last_used: datetime | None
    usage_count: int


@dataclass(frozen=True)
class SecretVersion:
    version: int
    key_id: str
    reason: str | None
    created_by: str
    created_at: datetime


@dataclass(frozen=True)
class SealedValue:
    name: str
    environment: str | None
    version: int
    nonce: bytes
    ciphertext: bytes
    key_id: str


@dataclass(frozen=True)
class AuditEvent:
    action: str
    environment: str | None
    version: int | None
    actor: str
    thread_id: str | None
    run_id: str | None
    tool_name: str | None
    tool_call_id: str | None
    call_environment: str | None
    detail: str | None
    at: datetime


Sealer = Callable[[int], tuple[bytes, bytes]]  # version -> (nonce, ciphertext)

_SELECT = (
    "SELECT s.name, s.environment, s.description, s.latest_version, s.created_by, s.created_at, s.updated_at,"
    " u.last_used, coalesce(u.uses, 0) AS usage_count FROM secrets s"
    " LEFT JOIN LATERAL (SELECT max(a.created_at) AS last_used, count(*) AS uses FROM secret_audit a"
    "  WHERE a.tenant_id = s.tenant_id AND a.secret_name = s.name AND a.action = 'use'"
    "  AND a.environment IS NOT DISTINCT FROM s.environment"
    "  AND a.created_at >= s.created_at) u ON true"
)


def _record(row: dict[str, Any]) -> SecretRecord:
    return SecretRecord(
        row["name"],
        row["environment"],
        row["description"],
        row["latest_version"],
        row["created_by"],
        row["created_at"],
        row["updated_at"],
        row["last_used"],
        int(row["usage_count"]),
    )


def _missing(name: str, environment: str | None) -> NotFound:
    if environment is None:
        return NotFound(f"no secret named '{name}'; GET /api/v1/secrets lists this tenant's secrets")
    return NotFound(
        f"no secret named '{name}' scoped to {environment}; GET /api/v1/secrets lists this tenant's secrets "
        "and their environments (leave the environment out for a secret serving every environment)"
    )


_SAME_SECRET = "s.tenant_id = %s AND s.name = %s AND s.environment IS NOT DISTINCT FROM %s"


async def _audit(
    conn: AsyncConnection[DictRow],
    tenant_id: str,
    name: str,
    action: str,
    actor: Actor,
    *,
    environment: str | None,
    version: int | None = None,
    detail: str | None = None,
) -> None:
    await conn.execute(
        "INSERT INTO secret_audit (audit_id, tenant_id, secret_name, environment, version, action, actor,"
        " thread_id, run_id, tool_name, tool_call_id, call_environment, detail)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (
            uuid.uuid4(),
            tenant_id,
            name,
            environment,
            version,
            action,
            actor.label,
            actor.thread_id,
            actor.run_id,
            actor.tool_name,
            actor.tool_call_id,
            actor.call_environment,
            detail,
        ),
    )


class SecretRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def insert(
        self,
        *,
        tenant_id: str,
        name: str,
        environment: str | None,
        description: str | None,
        seal: Sealer,
        key_id: str,
        actor: Actor,
    ) -> SecretRecord:
        secret_id = uuid.uuid4()
        nonce, ciphertext = seal(1)
        try:
            async with self.db.connection() as conn, conn.transaction():
                await conn.execute(
                    "INSERT INTO secrets (secret_id, tenant_id, name, environment, description, latest_version,"
                    " created_by) VALUES (%s, %s, %s, %s, %s, 1, %s)",
                    (secret_id, tenant_id, name, environment, description, actor.label),
                )
                await conn.execute(
                    "INSERT INTO secret_versions (secret_id, tenant_id, version, nonce, ciphertext, key_id, reason,"
                    " created_by) VALUES (%s, %s, 1, %s, %s, %s, 'initial_creation', %s)",
                    (secret_id, tenant_id, nonce, ciphertext, key_id, actor.label),
                )
                await _audit(conn, tenant_id, name, "create", actor, environment=environment, version=1)
        except UniqueViolation:
            query = f"?environment={environment}" if environment else ""
            raise Conflict(
                f"a secret named '{name}' for {scope_label(environment)} already exists; rotate it "
                f"(POST /api/v1/secrets/{name}/rotate{query}) or delete it first"
            ) from None
        return await self.get(tenant_id, name, environment)

    async def add_version(
        self,
        *,
        tenant_id: str,
        name: str,
        environment: str | None,
        seal: Sealer,
        key_id: str,
        reason: str | None,
        actor: Actor,
    ) -> SecretRecord:
        async with self.db.connection() as conn, conn.transaction():
            # The row lock makes concurrent rotations take consecutive version numbers.
            cur = await conn.execute(
                f"SELECT secret_id, latest_version FROM secrets s WHERE {_SAME_SECRET} FOR UPDATE",
                (tenant_id, name, environment),
            )
            row = await cur.fetchone()
            if row is None:
                raise _missing(name, environment)
            version = row["latest_version"] + 1
            nonce, ciphertext = seal(version)
            await conn.execute(
                "INSERT INTO secret_versions (secret_id, tenant_id, version, nonce, ciphertext, key_id, reason,"
                " created_by) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                (row["secret_id"], tenant_id, version, nonce, ciphertext, key_id, reason, actor.label),
            )
            await conn.execute(
                "UPDATE secrets SET latest_version = %s, updated_at = now() WHERE secret_id = %s",
                (version, row["secret_id"]),
            )
            await _audit(
                conn, tenant_id, name, "rotate", actor, environment=environment, version=version, detail=reason
            )
        return await self.get(tenant_id, name, environment)

    async def get(self, tenant_id: str, name: str, environment: str | None) -> SecretRecord:
        """The secret of exactly this name and scope (no fallback from an environment to every environment)."""
        async with self.db.connection() as conn:
            cur = await conn.execute(f"{_SELECT} WHERE {_SAME_SECRET}", (tenant_id, name, environment))
            row = await cur.fetchone()
        if row is None:
            raise _missing(name, environment)
        return _record(row)

    async def all(self, tenant_id: str) -> list[SecretRecord]:
        """Every secret, by name; a name's unscoped secret first, then production, then staging."""
        async with self.db.connection() as conn:
            cur = await conn.execute(
                f"{_SELECT} WHERE s.tenant_id = %s ORDER BY s.name, s.environment NULLS FIRST", (tenant_id,)
            )
            return [_record(r) for r in await cur.fetchall()]

    async def names(self, tenant_id: str, environment: str | None = None) -> set[str]:
        """The names a tool call in `environment` can use (scoped to it or to every environment); without an
        environment, every stored name whatever its scope."""
        async with self.db.connection() as conn:
            if environment is None:
                cur = await conn.execute("SELECT DISTINCT name FROM secrets WHERE tenant_id = %s", (tenant_id,))
            else:
                cur = await conn.execute(
                    "SELECT DISTINCT name FROM secrets WHERE tenant_id = %s"
                    " AND (environment = %s OR environment IS NULL)",
                    (tenant_id, environment),
                )
            return {r["name"] for r in await cur.fetchall()}

    async def names_per_environment(self, tenant_id: str) -> dict[str, set[str]]:
        """For each environment (staging, production), the names a tool call there can use."""
        async with self.db.connection() as conn:
            cur = await conn.execute("SELECT name, environment FROM secrets WHERE tenant_id = %s", (tenant_id,))
            rows = await cur.fetchall()
        usable: dict[str, set[str]] = {env: set() for env in ENVIRONMENTS}
        for row in rows:
            for env in (row["environment"],) if row["environment"] else ENVIRONMENTS:
                usable[env].add(row["name"])
        return usable

    async def scopes(self, tenant_id: str, name: str) -> set[str | None]:
        """The environments this name is stored for (None: the secret serving every environment)."""
        async with self.db.connection() as conn:
            cur = await conn.execute(
                "SELECT environment FROM secrets WHERE tenant_id = %s AND name = %s", (tenant_id, name)
            )
            return {r["environment"] for r in await cur.fetchall()}

    async def versions(self, tenant_id: str, name: str, environment: str | None) -> list[SecretVersion]:
        async with self.db.connection() as conn:
            cur = await conn.execute(
                "SELECT v.version, v.key_id, v.reason, v.created_by, v.created_at FROM secret_versions v"
                f" JOIN secrets s USING (secret_id) WHERE {_SAME_SECRET} ORDER BY v.version",
                (tenant_id, name, environment),
            )
            rows = await cur.fetchall()
        return [SecretVersion(r["version"], r["key_id"], r["reason"], r["created_by"], r["created_at"]) for r in rows]

    async def latest_sealed(self, tenant_id: str, name: str, *, environment: str) -> SealedValue:
        """The newest version of the secret a tool call in `environment` uses: the one scoped to that
        environment if there is one, else the unscoped one."""
        async with self.db.connection() as conn:
            cur = await conn.execute(
                "SELECT s.environment, v.version, v.nonce, v.ciphertext, v.key_id FROM secrets s"
                " JOIN secret_versions v ON v.secret_id = s.secret_id AND v.version = s.latest_version"
                " WHERE s.tenant_id = %s AND s.name = %s AND (s.environment = %s OR s.environment IS NULL)"
                " ORDER BY s.environment NULLS LAST LIMIT 1",
                (tenant_id, name, environment),
            )
            row = await cur.fetchone()
        if row is None:
            raise _missing(name, None)
        return SealedValue(
            name, row["environment"], row["version"], bytes(row["nonce"]), bytes(row["ciphertext"]), row["key_id"]
        )

    async def delete(
        self, tenant_id: str, name: str, environment: str | None, actor: Actor, *, detail: str | None
    ) -> int:
        """Delete the secret of this name and scope and every version (not the name's other scopes); returns
        how many versions were deleted."""
        async with self.db.connection() as conn, conn.transaction():
            cur = await conn.execute(
                f"DELETE FROM secrets s WHERE {_SAME_SECRET} RETURNING latest_version", (tenant_id, name, environment)
            )
            row = await cur.fetchone()
            if row is None:
                raise _missing(name, environment)
            await _audit(
                conn,
                tenant_id,
                name,
                "delete",
                actor,
                environment=environment,
                version=row["latest_version"],
                detail=detail,
            )
        return int(row["latest_version"])

    async def record(
        self,
        tenant_id: str,
        name: str,
        action: str,
        actor: Actor,
        *,
        environment: str | None,
        version: int | None = None,
        detail: str | None = None,
    ) -> None:
        async with self.db.connection() as conn:
            await _audit(conn, tenant_id, name, action, actor, environment=environment, version=version, detail=detail)

    async def audit_events(self, tenant_id: str, name: str, environment: str | None, *, limit: int) -> list[AuditEvent]:
        """The trail of the secret of this name and scope (uses of an unscoped secret from any environment
        are on the unscoped secret's trail, each with the environment the call ran in)."""
        async with self.db.connection() as conn:
            cur = await conn.execute(
                "SELECT action, environment, version, actor, thread_id, run_id, tool_name, tool_call_id,"
                " call_environment, detail, created_at FROM secret_audit"
                " WHERE tenant_id = %s AND secret_name = %s AND environment IS NOT DISTINCT FROM %s"
                " ORDER BY created_at DESC, audit_id LIMIT %s",
                (tenant_id, name, environment, limit),
            )
            rows = await cur.fetchall()
        return [
            AuditEvent(
                r["action"],
                r["environment"],
                r["version"],
                r["actor"],
                str(r["thread_id"]) if r["thread_id"] else None,
                str(r["run_id"]) if r["run_id"] else None,
                r["tool_name"],
                r["tool_call_id"],
                r["call_environment"],
                r["detail"],
                r["created_at"],
            )
            for r in rows
        ]

    async def configs_mentioning(self, tenant_id: str, text: str) -> list[dict[str, Any]]:
        """Versions of the tenant's bot configs whose JSON contains `text` (the caller parses them); a config
        is named by its own id (its file's config_id), as /api/v1/configs names it."""
        async with self.db.connection() as conn:
            cur = await conn.execute(
                "SELECT c.config_key AS config_id, c.name, c.latest_version, v.version, v.config"
                " FROM bot_config_versions v JOIN bot_configs c ON c.config_id = v.config_id"
                " WHERE v.tenant_id = %s AND c.deleted_at IS NULL AND strpos(v.config::text, %s) > 0"
                " ORDER BY c.name, v.version",
                (tenant_id, text),
            )
            return list(await cur.fetchall())
