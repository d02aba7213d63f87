"""SQL for bot configs and their versions (an assistant and its versions, in LangGraph terms).

A config has two ids: `config_id`, the assistant's UUID (threads, runs and the graph cache refer to it), and
its key, the id its file gives in `config_metadata.config_id`, private to its tenant (docs/decisions.md)."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg.errors import ForeignKeyViolation, UniqueViolation
from psycopg.rows import DictRow

from chorus.agents.configs.deployments_repository import freeze_production
from chorus.agents.configs.history import ApprovalStatus, Author, ChangeSource
from chorus.agents.errors import (
    AssistantNotFound,
    ConfigIdTaken,
    ConfigNotFound,
    Conflict,
    InvalidInput,
    NotFound,
)
from chorus.agents.storage.database import Database


@dataclass(frozen=True)
class StoredConfig:
    config_id: str
    key: str
    tenant_id: str
    name: str
    description: str | None
    product_type: str
    version: int
    latest_version: int
    config: dict[str, Any]
    metadata: dict[str, Any]
    created_at: datetime
    updated_at: datetime


_SELECT = (
    "SELECT c.config_id, c.config_key, c.tenant_id, c.name, c.description, c.product_type, c.latest_version,"
    " c.created_at, c.updated_at, v.version, v.config, v.metadata FROM bot_configs c"
    " JOIN bot_config_versions v ON v.config_id = c.config_id"
)


# Sort keys of assistant search (the Agent Server's names) and their columns: a whitelist.
_SORT_COLUMNS = {
    "assistant_id": "c.config_id",
    "graph_id": "c.product_type",
    "name": "c.name",
    "created_at": "c.created_at",
    "updated_at": "c.updated_at",
}
_ORDERS = {"asc": "ASC", "desc": "DESC"}


def _search_filter(
    tenant_id: str, *, metadata: dict[str, Any] | None, graph_id: str | None, name: str | None
) -> tuple[str, list[Any]]:
    sql = "c.tenant_id = %s AND c.deleted_at IS NULL"
    params: list[Any] = [tenant_id]
    if metadata:
        sql += " AND c.metadata @> %s"
        params.append(json.dumps(metadata))
    if graph_id:
        sql += " AND c.product_type = %s"
        params.append(graph_id)
    if name:
        sql += " AND c.name ILIKE %s ESCAPE '\\'"
        params.append("%" + name.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%")
    return sql, params


def _row(row: dict[str, Any]) -> StoredConfig:
    return StoredConfig(
        config_id=str(row["config_id"]),
        key=row["config_key"],
        tenant_id=str(row["tenant_id"]),
        name=row["name"],
        description=row["description"],
        product_type=row["product_type"],
        version=row["version"],
        latest_version=row["latest_version"],
        config=row["config"],
        metadata=row["metadata"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def stamp(config: dict[str, Any], key: str, version: int) -> dict[str, Any]:
    """The stored copy names its id (its key: the file's own id, kept as given) and version in config_metadata."""
    return {
        **config,
        "config_metadata": {**config["config_metadata"], "config_id": key, "version": version},
    }


# A version row; the author's name is the key's (its label, else its prefix) at the time of the change.
_INSERT_VERSION = (
    "INSERT INTO bot_config_versions (config_id, version, tenant_id, config, metadata, commit_message, source,"
    " author_kind, author_key_id, author_role, author_name, rolled_back_to, status, risk_level,"
    " change_classification, based_on)"
    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s,"
    " coalesce(%s, (SELECT coalesce(k.name, k.prefix) FROM api_keys k WHERE k.key_id = %s)), %s, %s, %s, %s, %s)"
)


@dataclass(frozen=True)
class Review:
    """How a classified change is stored: its status (`pending_approval` does not become current), its risk
    and classification (ChangeClassification.to_dict()), and the current version it was made on."""

    status: ApprovalStatus
    risk_level: str
    classification: dict[str, Any]
    based_on: int


def _version_row(
    *,
    config_id: str,
    version: int,
    tenant_id: str,
    config: dict[str, Any],
    metadata: dict[str, Any],
    commit_message: str | None,
    source: ChangeSource,
    author: Author,
    rolled_back_to: int | None = None,
    review: Review | None = None,
) -> tuple[Any, ...]:
    return (
        config_id,
        version,
        tenant_id,
        json.dumps(config),
        json.dumps(metadata),
        commit_message,
        source,
        author.kind,
        author.key_id,
        author.role,
        author.name,
        author.key_id,
        rolled_back_to,
        review.status if review else "approved",
        review.risk_level if review else None,
        json.dumps(review.classification) if review else None,
        review.based_on if review else None,
    )


def id_taken(config_id: str) -> Conflict:
    """The one answer for an id that exists, whichever tenant holds it."""
    return Conflict(
        f"an assistant with the id '{config_id}' already exists; use if_exists='do_nothing' to get yours, "
        "or choose another id (or none: one is generated)"
    )


def parse_uuid(value: str, what: str) -> str:
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        raise NotFound(f"{what} '{value}' does not exist (ids are UUIDs)") from None


class ConfigRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def insert(
        self,
        *,
        tenant_id: str,
        config_id: str,
        key: str | None = None,
        name: str,
        description: str | None,
        product_type: str,
        config: dict[str, Any],
        metadata: dict[str, Any],
        commit_message: str | None,
        source: ChangeSource,
        author: Author,
    ) -> StoredConfig:
        """A new config at version 1; its key is `key`, or its assistant id."""
        key = key or config_id
        try:
            async with self.db.connection() as conn, conn.transaction():
                await conn.execute(
                    "INSERT INTO bot_configs (config_id, config_key, tenant_id, name, description, product_type,"
                    " latest_version, metadata) VALUES (%s, %s, %s, %s, %s, %s, 1, %s)",
                    (config_id, key, tenant_id, name, description, product_type, json.dumps(metadata)),
                )
                await conn.execute(
                    _INSERT_VERSION,
                    _version_row(
                        config_id=config_id,
                        version=1,
                        tenant_id=tenant_id,
                        config=stamp(config, key, 1),
                        metadata=metadata,
                        commit_message=commit_message,
                        source=source,
                        author=author,
                    ),
                )
        except UniqueViolation as exc:
            if exc.diag.constraint_name == "bot_configs_tenant_key":
                raise ConfigIdTaken(key) from None
            # Config ids are global (threads and the graph cache key on them), so the same answer for an id
            # of this tenant and of another: nothing here says which (docs/decisions.md).
            raise id_taken(config_id) from None
        return await self.get(tenant_id, config_id)

    async def add_version(
        self,
        *,
        tenant_id: str,
        config_id: str,
        config: dict[str, Any],
        metadata: dict[str, Any],
        name: str,
        description: str | None,
        commit_message: str | None,
        source: ChangeSource,
        author: Author,
        rolled_back_to: int | None = None,
        review: Review | None = None,
    ) -> StoredConfig:
        """Append a version; it becomes current unless `review` says it waits for approval (then the config
        stays at its current version and this returns that). With `review`, refuses (409) when the current
        version is no longer the one the change was made on."""
        async with self.db.connection() as conn, conn.transaction():
            # Lock the config row so two concurrent updates cannot take the same version number.
            cur = await conn.execute(
                "SELECT config_key, latest_version FROM bot_configs WHERE config_id = %s AND tenant_id = %s"
                " AND deleted_at IS NULL FOR UPDATE",
                (config_id, tenant_id),
            )
            locked = await cur.fetchone()
            if locked is None:
                raise AssistantNotFound(config_id)
            if review is not None and locked["latest_version"] != review.based_on:
                raise Conflict(
                    f"the config changed while this change was prepared (it was made on version {review.based_on},"
                    f" version {locked['latest_version']} is current now); send it again"
                )
            cur = await conn.execute(
                "SELECT max(version) AS v FROM bot_config_versions WHERE config_id = %s AND tenant_id = %s",
                (config_id, tenant_id),
            )
            row = await cur.fetchone()
            if row is None or row["v"] is None:
                raise NotFound(f"assistant '{config_id}' does not exist")
            version = row["v"] + 1
            await conn.execute(
                _INSERT_VERSION,
                _version_row(
                    config_id=config_id,
                    version=version,
                    tenant_id=tenant_id,
                    config=stamp(config, locked["config_key"], version),
                    metadata=metadata,
                    commit_message=commit_message,
                    source=source,
                    author=author,
                    rolled_back_to=rolled_back_to,
                    review=review,
                ),
            )
            pending = review is not None and review.status != "approved"
            if not pending and author.environment == "staging":
                await freeze_production(conn, tenant_id, config_id, locked["latest_version"])
            if not pending:
                await conn.execute(
                    "UPDATE bot_configs SET latest_version = %s, name = %s, description = %s, metadata = %s,"
                    " updated_at = now() WHERE config_id = %s",
                    (version, name, description, json.dumps(metadata), config_id),
                )
        # A pending version reads as itself (`version`) beside the config's current one (`latest_version`).
        return await self.get(tenant_id, config_id, version if pending else None)

    async def get(
        self, tenant_id: str, config_id: str, version: int | None = None, *, deleted_too: bool = False
    ) -> StoredConfig:
        """A config (its latest version, or `version`). A deleted one only with `deleted_too`: its versions
        stay readable for the threads pinned to them."""
        config_id = parse_uuid(config_id, "assistant")
        live = "" if deleted_too else " AND c.deleted_at IS NULL"
        async with self.db.connection() as conn:
            if version is None:
                cur = await conn.execute(
                    _SELECT + " AND v.version = c.latest_version WHERE c.tenant_id = %s AND c.config_id = %s" + live,
                    (tenant_id, config_id),
                )
            else:
                cur = await conn.execute(
                    _SELECT + " AND v.version = %s WHERE c.tenant_id = %s AND c.config_id = %s" + live,
                    (version, tenant_id, config_id),
                )
            row = await cur.fetchone()
        if row is None:
            what = f"version {version} of assistant" if version is not None else "assistant"
            raise NotFound(f"{what} '{config_id}' does not exist")
        return _row(row)

    async def find(self, tenant_id: str, ident: str) -> StoredConfig:
        """The tenant's live config (its current version) whose key is `ident`, else whose assistant id is:
        the configs API takes either."""
        as_uuid = str(uuid.UUID(ident)) if _is_uuid(ident) else None
        async with self.db.connection() as conn:
            cur = await conn.execute(
                _SELECT + " AND v.version = c.latest_version WHERE c.tenant_id = %s AND c.deleted_at IS NULL"
                " AND (c.config_key = %s OR c.config_id = %s) ORDER BY c.config_key = %s DESC LIMIT 1",
                (tenant_id, ident, as_uuid, ident),
            )
            row = await cur.fetchone()
        if row is None:
            raise ConfigNotFound(ident)
        return _row(row)

    async def find_by_key(self, tenant_id: str, key: str) -> StoredConfig | None:
        try:
            found = await self.find(tenant_id, key)
        except ConfigNotFound:
            return None
        return found if found.key == key else None

    async def set_key(self, tenant_id: str, config_id: str, key: str) -> None:
        """Give a config the key its file names (one stored before keys were kept has its UUID as key)."""
        async with self.db.connection() as conn:
            await conn.execute(
                "UPDATE bot_configs SET config_key = %s WHERE tenant_id = %s AND config_id = %s",
                (key, tenant_id, config_id),
            )

    async def search(
        self,
        tenant_id: str,
        *,
        metadata: dict[str, Any] | None,
        graph_id: str | None,
        name: str | None,
        limit: int,
        offset: int,
        sort_by: str = "created_at",
        sort_order: str = "desc",
    ) -> list[StoredConfig]:
        """The tenant's live configs (their latest versions) that match, in the order asked."""
        condition, params = _search_filter(tenant_id, metadata=metadata, graph_id=graph_id, name=name)
        order = _ORDERS[sort_order]
        sql = (
            f"{_SELECT} AND v.version = c.latest_version WHERE {condition}"
            f" ORDER BY {_SORT_COLUMNS[sort_by]} {order}, c.config_id {order} LIMIT %s OFFSET %s"
        )
        async with self.db.connection() as conn:
            cur = await conn.execute(sql, [*params, limit, offset])
            return [_row(r) for r in await cur.fetchall()]

    async def count(
        self, tenant_id: str, *, metadata: dict[str, Any] | None, graph_id: str | None, name: str | None
    ) -> int:
        condition, params = _search_filter(tenant_id, metadata=metadata, graph_id=graph_id, name=name)
        async with self.db.connection() as conn:
            cur = await conn.execute(f"SELECT count(*) AS n FROM bot_configs c WHERE {condition}", params)
            row = await cur.fetchone()
        return int(row["n"]) if row else 0

    async def versions(
        self, tenant_id: str, config_id: str, *, limit: int, offset: int, metadata: dict[str, Any] | None = None
    ) -> list[StoredConfig]:
        await self.get(tenant_id, config_id)
        sql = _SELECT + " WHERE c.tenant_id = %s AND c.config_id = %s"
        params: list[Any] = [tenant_id, config_id]
        if metadata:
            sql += " AND v.metadata @> %s"
            params.append(json.dumps(metadata))
        async with self.db.connection() as conn:
            cur = await conn.execute(sql + " ORDER BY v.version DESC LIMIT %s OFFSET %s", [*params, limit, offset])
            return [_row(r) for r in await cur.fetchall()]

    async def set_latest(self, tenant_id: str, config_id: str, version: int) -> StoredConfig:
        await self.get(tenant_id, config_id, version)
        async with self.db.connection() as conn:
            await conn.execute(
                "UPDATE bot_configs SET latest_version = %s, updated_at = now()"
                " WHERE config_id = %s AND tenant_id = %s AND deleted_at IS NULL",
                (version, config_id, tenant_id),
            )
        return await self.get(tenant_id, config_id)

    @staticmethod
    async def mark_deleted(conn: AsyncConnection[DictRow], tenant_id: str, config_id: str) -> None:
        """Hide the config from everything but the threads pinned to its versions (in the caller's
        transaction, which holds its row until it ends)."""
        config_id = parse_uuid(config_id, "assistant")
        cur = await conn.execute(
            "UPDATE bot_configs SET deleted_at = now(), updated_at = now()"
            " WHERE tenant_id = %s AND config_id = %s AND deleted_at IS NULL",
            (tenant_id, config_id),
        )
        if cur.rowcount == 0:
            raise AssistantNotFound(config_id)

    @staticmethod
    async def purge_if_unused(conn: AsyncConnection[DictRow], config_id: str) -> bool:
        """Remove a deleted config for good if no thread and no active run refers to it any more."""
        try:
            async with conn.transaction():
                cur = await conn.execute(
                    "DELETE FROM bot_configs c WHERE c.config_id = %s AND c.deleted_at IS NOT NULL"
                    " AND NOT EXISTS (SELECT 1 FROM threads t WHERE t.assistant_id = c.config_id)"
                    " AND NOT EXISTS (SELECT 1 FROM runs r WHERE r.assistant_id = c.config_id"
                    " AND r.status IN ('pending', 'running'))",
                    (config_id,),
                )
        except ForeignKeyViolation:
            return False  # a thread was pinned to it meanwhile: it stays for that thread
        return cur.rowcount > 0

    async def purge(self, config_id: str) -> bool:
        async with self.db.connection() as conn:
            return await self.purge_if_unused(conn, config_id)

    async def is_live(self, tenant_id: str, config_id: str) -> bool:
        async with self.db.connection() as conn:
            cur = await conn.execute(
                "SELECT 1 FROM bot_configs WHERE tenant_id = %s AND config_id = %s AND deleted_at IS NULL",
                (tenant_id, config_id),
            )
            return await cur.fetchone() is not None

    async def find_by_name(self, tenant_id: str, name: str) -> StoredConfig | None:
        async with self.db.connection() as conn:
            cur = await conn.execute(
                _SELECT + " AND v.version = c.latest_version WHERE c.tenant_id = %s AND c.name = %s"
                " AND c.deleted_at IS NULL ORDER BY c.created_at LIMIT 1",
                (tenant_id, name),
            )
            row = await cur.fetchone()
        return _row(row) if row else None


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def require_valid_id(value: str) -> None:
    try:
        uuid.UUID(value)
    except ValueError:
        raise InvalidInput(f"'{value}' is not a UUID") from None
