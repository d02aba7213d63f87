"""SQL of approvals: a version's signatures (who approved or rejected it, in which role, why), and the locked
read-and-write a decision needs so that two approvers deciding at once cannot both miss the other."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from psycopg import AsyncConnection
from psycopg.rows import DictRow

from chorus.agents.storage.database import Database

Decision = Literal["approve", "reject"]

_SIGNATURES = (
    "SELECT a.version, a.decision, a.key_id, coalesce(a.key_name, k.name, k.prefix) AS key_name, a.role, a.comment,"
    " a.created_at FROM bot_config_approvals a LEFT JOIN api_keys k ON k.key_id = a.key_id"
    " WHERE a.tenant_id = %s AND a.config_id = %s"
)


@dataclass(frozen=True)
class Signature:
    decision: Decision
    key_id: str | None
    key_name: str | None
    role: str
    comment: str | None
    created_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "decision": self.decision,
            "key_id": self.key_id,
            "name": self.key_name,
            "role": self.role,
            "comment": self.comment,
            "at": self.created_at,
        }


def _signature(row: dict[str, Any]) -> Signature:
    key_id = row["key_id"]
    return Signature(
        row["decision"],
        str(key_id) if key_id is not None else None,
        row["key_name"],
        row["role"],
        row["comment"],
        row["created_at"],
    )


@dataclass
class LockedVersion:
    """A pending decision's view, with the config row locked: the current version, the version's status,
    risk, base and content, and its signatures so far."""

    conn: AsyncConnection[DictRow]
    tenant_id: str
    config_id: str
    version: int
    current_version: int
    status: str
    risk_level: str | None
    based_on: int | None
    config: dict[str, Any]
    signatures: list[Signature]

    async def sign(self, decision: Decision, *, key_id: str | None, role: str, comment: str | None) -> None:
        await self.conn.execute(
            "INSERT INTO bot_config_approvals (tenant_id, config_id, version, decision, key_id, key_name, role,"
            " comment) VALUES (%s, %s, %s, %s, %s, (SELECT coalesce(k.name, k.prefix) FROM api_keys k"
            " WHERE k.key_id = %s), %s, %s)",
            (self.tenant_id, self.config_id, self.version, decision, key_id, key_id, role, comment),
        )

    async def set_status(self, status: Literal["approved", "rejected"]) -> None:
        await self.conn.execute(
            "UPDATE bot_config_versions SET status = %s WHERE config_id = %s AND version = %s",
            (status, self.config_id, self.version),
        )

    async def make_current(self, *, name: str, description: str | None) -> None:
        await self.conn.execute(
            "UPDATE bot_configs SET latest_version = %s, name = %s, description = %s, metadata ="
            " (SELECT metadata FROM bot_config_versions WHERE config_id = %s AND version = %s), updated_at = now()"
            " WHERE config_id = %s",
            (self.version, name, description, self.config_id, self.version, self.config_id),
        )


class ApprovalRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def signatures(self, tenant_id: str, config_id: str, versions: list[int]) -> dict[int, list[Signature]]:
        """The signatures of these versions, oldest first."""
        if not versions:
            return {}
        async with self.db.connection() as conn:
            cur = await conn.execute(
                _SIGNATURES + " AND a.version = ANY(%s) ORDER BY a.created_at, a.approval_id",
                (tenant_id, config_id, versions),
            )
            rows = await cur.fetchall()
        found: dict[int, list[Signature]] = {v: [] for v in versions}
        for row in rows:
            found[row["version"]].append(_signature(row))
        return found

    @asynccontextmanager
    async def locked(self, tenant_id: str, config_id: str, version: int) -> AsyncIterator[LockedVersion | None]:
        """The version under the config's row lock (None when it has no such version); whatever the block
        writes commits together at its end, or not at all if it raises."""
        async with self.db.connection() as conn, conn.transaction():
            cur = await conn.execute(
                "SELECT latest_version FROM bot_configs WHERE tenant_id = %s AND config_id = %s"
                " AND deleted_at IS NULL FOR UPDATE",
                (tenant_id, config_id),
            )
            config_row = await cur.fetchone()
            cur = await conn.execute(
                "SELECT status, risk_level, based_on, config FROM bot_config_versions"
                " WHERE tenant_id = %s AND config_id = %s AND version = %s",
                (tenant_id, config_id, version),
            )
            row = await cur.fetchone()
            if config_row is None or row is None:
                yield None
                return
            cur = await conn.execute(
                _SIGNATURES + " AND a.version = %s ORDER BY a.created_at, a.approval_id",
                (tenant_id, config_id, version),
            )
            signatures = [_signature(r) for r in await cur.fetchall()]
            config = row["config"] if isinstance(row["config"], dict) else json.loads(row["config"])
            yield LockedVersion(
                conn,
                tenant_id,
                config_id,
                version,
                current_version=config_row["latest_version"],
                status=row["status"],
                risk_level=row["risk_level"],
                based_on=row["based_on"],
                config=config,
                signatures=signatures,
            )
