"""SQL for secrets, their encrypted versions and their audit trail. Every statement is scoped to a tenant."""

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
from chorus.agents.storage.database import Database


@dataclass(frozen=True)
class Actor:
    """Who touched a secret: an API key, a CLI user, or a tool call inside a run."""

    label: str
    thread_id: str | None = None
    run_id: str | None = None
    tool_name: str | None = None
    tool_call_id: str | None = None


@dataclass(frozen=True)
class SecretRecord:
    name: str
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
    version: int
    nonce: bytes
    ciphertext: bytes
    key_id: str


@dataclass(frozen=True)
class AuditEvent:
    action: str
    version: int | None
    actor: str
    thread_id: str | None
    run_id: str | None
    tool_name: str | None
    tool_call_id: str | None
    detail: str | None
    at: datetime


Sealer = Callable[[int], tuple[bytes, bytes]]  # version -> (nonce, ciphertext)

_SELECT = (
    "SELECT s.name, s.description, s.latest_version, s.created_by, s.created_at, s.updated_at,"
    " u.last_used, coalesce(u.uses, 0) AS usage_count FROM secrets s"
    " LEFT JOIN LATERAL (SELECT max(a.created_at) AS last_used, count(*) AS uses FROM secret_audit a"
    "  WHERE a.tenant_id = s.tenant_id AND a.secret_name = s.name AND a.action = 'use'"
    "  AND a.created_at >= s.created_at) u ON true"
)


def _record(row: dict[str, Any]) -> SecretRecord:
    return SecretRecord(
        row["name"],
        row["description"],
        row["latest_version"],
        row["created_by"],
        row["created_at"],
        row["updated_at"],
        row["last_used"],
        int(row["usage_count"]),
    )


def _missing(name: str) -> NotFound:
    return NotFound(f"no secret named '{name}'; GET /api/v1/secrets lists this tenant's secrets")


async def _audit(
    conn: AsyncConnection[DictRow],
    tenant_id: str,
    name: str,
    action: str,
    actor: Actor,
    *,
    version: int | None = None,
    detail: str | None = None,
) -> None:
    await conn.execute(
        "INSERT INTO secret_audit (audit_id, tenant_id, secret_name, version, action, actor, thread_id, run_id,"
        " tool_name, tool_call_id, detail) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (
            uuid.uuid4(),
            tenant_id,
            name,
            version,
            action,
            actor.label,
            actor.thread_id,
            actor.run_id,
            actor.tool_name,
            actor.tool_call_id,
            detail,
        ),
    )


class SecretRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def insert(
        self, *, tenant_id: str, name: str, description: str | None, seal: Sealer, key_id: str, actor: Actor
    ) -> SecretRecord:
        secret_id = uuid.uuid4()
        nonce, ciphertext = seal(1)
        try:
            async with self.db.connection() as conn, conn.transaction():
                await conn.execute(
                    "INSERT INTO secrets (secret_id, tenant_id, name, description, latest_version, created_by)"
                    " VALUES (%s, %s, %s, %s, 1, %s)",
                    (secret_id, tenant_id, name, description, actor.label),
                )
                await conn.execute(
                    "INSERT INTO secret_versions (secret_id, tenant_id, version, nonce, ciphertext, key_id, reason,"
                    " created_by) VALUES (%s, %s, 1, %s, %s, %s, 'initial_creation', %s)",
                    (secret_id, tenant_id, nonce, ciphertext, key_id, actor.label),
                )
                await _audit(conn, tenant_id, name, "create", actor, version=1)
        except UniqueViolation:
            raise Conflict(
                f"a secret named '{name}' already exists; rotate it (POST /api/v1/secrets/{name}/rotate) "
                "or delete it first"
            ) from None
        return await self.get(tenant_id, name)

    async def add_version(
        self, *, tenant_id: str, name: str, seal: Sealer, key_id: str, reason: str | None, actor: Actor
    ) -> SecretRecord:
        async with self.db.connection() as conn, conn.transaction():
            # The row lock makes concurrent rotations take consecutive version numbers.
            cur = await conn.execute(
                "SELECT secret_id, latest_version FROM secrets WHERE tenant_id = %s AND name = %s FOR UPDATE",
                (tenant_id, name),
            )
            row = await cur.fetchone()
            if row is None:
                raise _missing(name)
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
            await _audit(conn, tenant_id, name, "rotate", actor, version=version, detail=reason)
        return await self.get(tenant_id, name)

    async def get(self, tenant_id: str, name: str) -> SecretRecord:
        async with self.db.connection() as conn:
            cur = await conn.execute(_SELECT + " WHERE s.tenant_id = %s AND s.name = %s", (tenant_id, name))
            row = await cur.fetchone()
        if row is None:
            raise _missing(name)
        return _record(row)

    async def all(self, tenant_id: str) -> list[SecretRecord]:
        async with self.db.connection() as conn:
            cur = await conn.execute(_SELECT + " WHERE s.tenant_id = %s ORDER BY s.name", (tenant_id,))
            return [_record(r) for r in await cur.fetchall()]

    async def names(self, tenant_id: str) -> set[str]:
        async with self.db.connection() as conn:
            cur = await conn.execute("SELECT name FROM secrets WHERE tenant_id = %s", (tenant_id,))
            return {r["name"] for r in await cur.fetchall()}

    async def versions(self, tenant_id: str, name: str) -> list[SecretVersion]:
        async with self.db.connection() as conn:
            cur = await conn.execute(
                "SELECT v.version, v.key_id, v.reason, v.created_by, v.created_at FROM secret_versions v"
                " JOIN secrets s USING (secret_id) WHERE s.tenant_id = %s AND s.name = %s ORDER BY v.version",
                (tenant_id, name),
            )
            rows = await cur.fetchall()
        return [SecretVersion(r["version"], r["key_id"], r["reason"], r["created_by"], r["created_at"]) for r in rows]

    async def latest_sealed(self, tenant_id: str, name: str) -> SealedValue:
        async with self.db.connection() as conn:
            cur = await conn.execute(
                "SELECT v.version, v.nonce, v.ciphertext, v.key_id FROM secrets s JOIN secret_versions v"
                " ON v.secret_id = s.secret_id AND v.version = s.latest_version"
                " WHERE s.tenant_id = %s AND s.name = %s",
                (tenant_id, name),
            )
            row = await cur.fetchone()
        if row is None:
            raise _missing(name)
        return SealedValue(name, row["version"], bytes(row["nonce"]), bytes(row["ciphertext"]), row["key_id"])

    async def delete(self, tenant_id: str, name: str, actor: Actor, *, detail: str | None) -> int:
        """Delete the secret and every version; returns how many versions were deleted."""
        async with self.db.connection() as conn, conn.transaction():
            cur = await conn.execute(
                "DELETE FROM secrets WHERE tenant_id = %s AND name = %s RETURNING latest_version", (tenant_id, name)
            )
            row = await cur.fetchone()
            if row is None:
                raise _missing(name)
            await _audit(conn, tenant_id, name, "delete", actor, version=row["latest_version"], detail=detail)
        return int(row["latest_version"])

    async def record(
        self,
        tenant_id: str,
        name: str,
        action: str,
        actor: Actor,
        *,
        version: int | None = None,
        detail: str | None = None,
    ) -> None:
        async with self.db.connection() as conn:
            await _audit(conn, tenant_id, name, action, actor, version=version, detail=detail)

    async def audit_events(self, tenant_id: str, name: str, *, limit: int) -> list[AuditEvent]:
        async with self.db.connection() as conn:
            cur = await conn.execute(
                "SELECT action, version, actor, thread_id, run_id, tool_name, tool_call_id, detail, created_at"
                " FROM secret_audit WHERE tenant_id = %s AND secret_name = %s ORDER BY created_at DESC, audit_id"
                " LIMIT %s",
                (tenant_id, name, limit),
            )
            rows = await cur.fetchall()
        return [
            AuditEvent(
                r["action"],
                r["version"],
                r["actor"],
                str(r["thread_id"]) if r["thread_id"] else None,
                str(r["run_id"]) if r["run_id"] else None,
                r["tool_name"],
                r["tool_call_id"],
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
