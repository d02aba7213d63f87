"""SQL for threads; every query is scoped to the tenant (runs: runs_repository.py)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import DictRow

from chorus.agents.configs.repository import parse_uuid
from chorus.agents.errors import AlreadyExists, ThreadBusy, ThreadNotFound
from chorus.agents.storage.database import Database

_THREAD_COLS = (
    'thread_id, tenant_id, assistant_id, config_version, status, metadata, "values", created_at, updated_at, expires_at'
)

# The tool-call ledger (agents/tools/ledger.py) has no foreign key to threads (a graph may run under a
# thread id with no row here, e.g. `chorus chat`), so a statement deleting threads (CTE `gone`) takes
# their ledger rows along.
_LEDGER_OF_GONE = (
    "ledger AS (DELETE FROM tool_calls c USING gone g"
    " WHERE c.tenant_id = g.tenant_id AND c.thread_id = g.thread_id::text)"
)


def thread_view(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "thread_id": str(row["thread_id"]),
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
        "metadata": row["metadata"],
        "status": row["status"],
        "values": row["values"] or {},
        "interrupts": {},
        "config": {},
        "assistant_id": str(row["assistant_id"]) if row["assistant_id"] else None,
        "config_version": row["config_version"],
        "expires_at": row["expires_at"],
    }


class ThreadRepository:
    def __init__(self, db: Database, *, ttl_days: float | None) -> None:
        self.db = db
        self.ttl_days = ttl_days

    def _expiry(self) -> datetime | None:
        return datetime.now(UTC) + timedelta(days=self.ttl_days) if self.ttl_days else None

    async def create(
        self, tenant_id: str, *, thread_id: str | None, metadata: dict[str, Any], if_exists: str = "raise"
    ) -> dict[str, Any]:
        thread_id = parse_uuid(thread_id, "thread") if thread_id else str(uuid.uuid4())
        async with self.db.connection() as conn:
            cur = await conn.execute(
                f"INSERT INTO threads (thread_id, tenant_id, metadata, expires_at) VALUES (%s, %s, %s, %s)"
                f" ON CONFLICT (thread_id) DO NOTHING RETURNING {_THREAD_COLS}",
                (thread_id, tenant_id, json.dumps(metadata), self._expiry()),
            )
            row = await cur.fetchone()
        if row is not None:
            return row
        if if_exists == "do_nothing":
            return await self.get(tenant_id, thread_id)
        raise AlreadyExists(f"thread '{thread_id}' already exists; pass if_exists='do_nothing' to reuse it")

    async def get(self, tenant_id: str, thread_id: str) -> dict[str, Any]:
        thread_id = parse_uuid(thread_id, "thread")
        async with self.db.connection() as conn:
            cur = await conn.execute(
                f"SELECT {_THREAD_COLS} FROM threads WHERE tenant_id = %s AND thread_id = %s",
                (tenant_id, thread_id),
            )
            row = await cur.fetchone()
        if row is None:
            raise ThreadNotFound(thread_id)
        return row

    async def search(
        self,
        tenant_id: str,
        *,
        metadata: dict[str, Any] | None,
        status: str | None,
        values: dict[str, Any] | None,
        limit: int,
        offset: int,
    ) -> list[dict[str, Any]]:
        sql = f"SELECT {_THREAD_COLS} FROM threads WHERE tenant_id = %s"
        params: list[Any] = [tenant_id]
        if metadata:
            sql += " AND metadata @> %s"
            params.append(json.dumps(metadata))
        if values:
            sql += ' AND "values" @> %s'
            params.append(json.dumps(values))
        if status:
            sql += " AND status = %s"
            params.append(status)
        sql += " ORDER BY updated_at DESC LIMIT %s OFFSET %s"
        params += [limit, offset]
        async with self.db.connection() as conn:
            cur = await conn.execute(sql, params)
            return await cur.fetchall()

    async def update_metadata(self, tenant_id: str, thread_id: str, metadata: dict[str, Any]) -> dict[str, Any]:
        await self.get(tenant_id, thread_id)
        async with self.db.connection() as conn:
            cur = await conn.execute(
                f"UPDATE threads SET metadata = metadata || %s, updated_at = now() WHERE thread_id = %s"
                f" RETURNING {_THREAD_COLS}",
                (json.dumps(metadata), thread_id),
            )
            row = await cur.fetchone()
        if row is None:  # deleted since it was read
            raise ThreadNotFound(thread_id)
        return row

    async def pin(self, thread_id: str, assistant_id: str, version: int) -> None:
        async with self.db.connection() as conn:
            await conn.execute(
                "UPDATE threads SET assistant_id = %s, config_version = %s, metadata = metadata || %s"
                " WHERE thread_id = %s AND assistant_id IS NULL",
                (
                    assistant_id,
                    version,
                    json.dumps({"assistant_id": assistant_id, "graph_id": "chatbot"}),
                    thread_id,
                ),
            )

    async def repin(self, thread_id: str, *, old: str, new: str, version: int) -> None:
        """Move a thread whose assistant was deleted to another assistant (its checkpoints stay)."""
        async with self.db.connection() as conn:
            await conn.execute(
                "UPDATE threads SET assistant_id = %s, config_version = %s, metadata = metadata || %s,"
                " updated_at = now() WHERE thread_id = %s AND assistant_id = %s",
                (new, version, json.dumps({"assistant_id": new, "graph_id": "chatbot"}), thread_id, old),
            )

    @staticmethod
    async def delete_of_assistant(conn: AsyncConnection[DictRow], tenant_id: str, assistant_id: str) -> list[str]:
        """Delete the assistant's threads (their runs and tool-call ledger go with them) in the caller's
        transaction; ThreadBusy, and nothing deleted, if a run is queued or running on one of them. Their ids."""
        cur = await conn.execute(
            "SELECT thread_id FROM threads WHERE tenant_id = %s AND assistant_id = %s ORDER BY thread_id FOR UPDATE",
            (tenant_id, assistant_id),
        )
        ids = [str(r["thread_id"]) for r in await cur.fetchall()]
        if not ids:
            return []
        # A statement of its own, after the locks: it sees a run that was being stored while they were taken.
        cur = await conn.execute("SELECT lane FROM queue_jobs WHERE lane = ANY(%s) ORDER BY seq LIMIT 1", (ids,))
        busy = await cur.fetchone()
        if busy is not None:
            raise ThreadBusy(
                f"thread '{busy['lane']}' of assistant '{assistant_id}' has a queued or running run; cancel it "
                "(POST /threads/{thread_id}/runs/{run_id}/cancel) or wait for it, then delete the assistant; "
                "nothing was deleted"
            )
        await conn.execute(
            "WITH gone AS (DELETE FROM threads WHERE thread_id = ANY(%s::uuid[]) RETURNING tenant_id, thread_id),"
            f" {_LEDGER_OF_GONE} SELECT count(*) FROM gone",
            (ids,),
        )
        return ids

    async def delete(self, tenant_id: str, thread_id: str) -> None:
        """Delete the thread (its runs and its tool-call ledger go with it) unless a run is queued or running
        on it: decided in the same statement, so a run cannot slip in between the check and the delete."""
        thread_id = parse_uuid(thread_id, "thread")
        async with self.db.connection() as conn:
            cur = await conn.execute(
                "WITH target AS (SELECT thread_id FROM threads WHERE tenant_id = %s AND thread_id = %s FOR UPDATE),"
                " gone AS (DELETE FROM threads WHERE thread_id IN (SELECT thread_id FROM target) AND NOT EXISTS"
                " (SELECT 1 FROM queue_jobs q WHERE q.lane = %s) RETURNING tenant_id, thread_id),"
                f" {_LEDGER_OF_GONE}"
                " SELECT (SELECT count(*) FROM target) AS found, (SELECT count(*) FROM gone) AS deleted",
                (tenant_id, thread_id, thread_id),
            )
            row = await cur.fetchone()
        if row is None or not row["found"]:
            raise ThreadNotFound(thread_id)
        if not row["deleted"]:
            raise ThreadBusy(
                f"thread '{thread_id}' has a queued or running run; cancel it "
                "(POST /threads/{thread_id}/runs/{run_id}/cancel) or wait for it, then delete the thread"
            )

    def expiry(self) -> datetime | None:
        """When a thread touched now expires (None without CHORUS_THREAD_TTL_DAYS)."""
        return self._expiry()

    async def expired(self, limit: int = 500) -> list[str]:
        """Delete up to `limit` expired threads (with their runs and tool-call ledger); their ids."""
        async with self.db.connection() as conn:
            cur = await conn.execute(
                "WITH gone AS (DELETE FROM threads WHERE thread_id IN (SELECT t.thread_id FROM threads t"
                " WHERE t.expires_at < now()"
                " AND NOT EXISTS (SELECT 1 FROM queue_jobs q WHERE q.lane = t.thread_id::text)"
                " LIMIT %s FOR UPDATE SKIP LOCKED) RETURNING tenant_id, thread_id),"
                f" {_LEDGER_OF_GONE}"
                " SELECT thread_id FROM gone",
                (limit,),
            )
            return [str(r["thread_id"]) for r in await cur.fetchall()]
