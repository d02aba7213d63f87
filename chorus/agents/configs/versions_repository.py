"""SQL reading a config's versions with how each was made (the writes are ConfigRepository's, in the same
transaction as the config row)."""

from __future__ import annotations

from typing import Any

from chorus.agents.configs.history import Author, VersionRecord
from chorus.agents.storage.database import Database

_COLUMNS = (
    "SELECT version, config, commit_message, source, author_kind, author_key_id, author_name, author_role,"
    " created_at, rolled_back_to, status, risk_level, change_classification, based_on"
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
