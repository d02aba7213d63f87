"""SQL reading a config's versions with how each was made (the writes are ConfigRepository's, in the same
transaction as the config row)."""

from __future__ import annotations

from typing import Any

from chorus.agents.configs.history import Author, VersionRecord
from chorus.agents.storage.database import Database

_COLUMNS = (
    "SELECT version, config, commit_message, source, author_kind, author_key_id, author_name, author_role,"
    " created_at, rolled_back_to, status, risk_level, change_classification, based_on, source_path"
    " FROM bot_config_versions WHERE tenant_id = %s AND config_id = %s"
)


def _record(row: dict[str, Any]) -> VersionRecord:
    author = None
    if row["author_kind"] is not None:
        key_id = row["author_key_id"]
        author = Author(
            row["author_kind"],
            key_id=str(key_id) if key_id is not None else None,
            role=row["author_role"],
            name=row["author_name"],
        )
    return VersionRecord(
        version=row["version"],
        config=row["config"],
        commit_message=row["commit_message"],
        source=row["source"],
        author=author,
        created_at=row["created_at"],
        rolled_back_to=row["rolled_back_to"],
        status=row["status"],
        risk_level=row["risk_level"],
        change_classification=row["change_classification"],
        based_on=row["based_on"],
        source_path=row["source_path"],
    )


class VersionRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def page(self, tenant_id: str, config_id: str, *, limit: int, offset: int) -> list[VersionRecord]:
        """The config's versions, newest first."""
        async with self.db.connection() as conn:
            cur = await conn.execute(
                _COLUMNS + " ORDER BY version DESC LIMIT %s OFFSET %s", (tenant_id, config_id, limit, offset)
            )
            return [_record(r) for r in await cur.fetchall()]

    async def count(self, tenant_id: str, config_id: str) -> int:
        async with self.db.connection() as conn:
            cur = await conn.execute(
                "SELECT count(*) AS n FROM bot_config_versions WHERE tenant_id = %s AND config_id = %s",
                (tenant_id, config_id),
            )
            row = await cur.fetchone()
        return int(row["n"]) if row else 0

    async def get(self, tenant_id: str, config_id: str, version: int) -> VersionRecord | None:
        async with self.db.connection() as conn:
            cur = await conn.execute(_COLUMNS + " AND version = %s", (tenant_id, config_id, version))
            row = await cur.fetchone()
        return _record(row) if row else None

    async def last_applied(self, tenant_id: str, config_id: str) -> VersionRecord | None:
        """The newest version a GitOps apply made current at some time (approved): what drift compares with."""
        async with self.db.connection() as conn:
            cur = await conn.execute(
                _COLUMNS + " AND source = 'apply' AND status = 'approved' ORDER BY version DESC LIMIT 1",
                (tenant_id, config_id),
            )
            row = await cur.fetchone()
        return _record(row) if row else None

    async def approved_since(self, tenant_id: str, config_id: str, after: int) -> list[VersionRecord]:
        """The approved versions after `after`, oldest first: how the config changed since then."""
        async with self.db.connection() as conn:
            cur = await conn.execute(
                _COLUMNS + " AND status = 'approved' AND version > %s ORDER BY version", (tenant_id, config_id, after)
            )
            return [_record(r) for r in await cur.fetchall()]

    async def pending(self, tenant_id: str, config_id: str) -> list[VersionRecord]:
        """The versions waiting for approval, newest first."""
        async with self.db.connection() as conn:
            cur = await conn.execute(
                _COLUMNS + " AND status = 'pending_approval' ORDER BY version DESC", (tenant_id, config_id)
            )
            return [_record(r) for r in await cur.fetchall()]

    async def applied_from(self, tenant_id: str, paths: list[str]) -> dict[str, tuple[str, str]]:
        """path -> (assistant id, key) of the live config whose newest applied version came from that file,
        counting only a config whose own newest applied version still names that file (a file renamed
        since then no longer speaks for it)."""
        if not paths:
            return {}
        async with self.db.connection() as conn:
            cur = await conn.execute(
                "SELECT DISTINCT ON (last.source_path) last.source_path, c.config_id, c.config_key FROM ("
                "  SELECT DISTINCT ON (v.config_id) v.config_id, v.source_path, v.created_at"
                "  FROM bot_config_versions v WHERE v.tenant_id = %s AND v.source = 'apply'"
                "  AND v.source_path IS NOT NULL ORDER BY v.config_id, v.version DESC"
                ") last JOIN bot_configs c ON c.config_id = last.config_id AND c.deleted_at IS NULL"
                " WHERE last.source_path = ANY(%s) ORDER BY last.source_path, last.created_at DESC",
                (tenant_id, paths),
            )
            return {r["source_path"]: (str(r["config_id"]), r["config_key"]) for r in await cur.fetchall()}

    async def set_source_path(self, tenant_id: str, config_id: str, version: int, path: str) -> None:
        async with self.db.connection() as conn:
            await conn.execute(
                "UPDATE bot_config_versions SET source_path = %s WHERE tenant_id = %s AND config_id = %s"
                " AND version = %s",
                (path, tenant_id, config_id, version),
            )
