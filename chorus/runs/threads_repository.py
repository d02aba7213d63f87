"""SQL for threads; every query is scoped to the tenant (runs: runs_repository.py)."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import DictRow
from psycopg.types.json import Jsonb

from chorus.agents.configs.environments import Serving
from chorus.agents.configs.repository import parse_uuid
from chorus.agents.errors import AlreadyExists, ThreadBusy, ThreadNotFound
from chorus.agents.storage.database import Database
from chorus.graphs.checkpointer import ChorusCheckpointer
from chorus.runs.thread_search import ThreadFilter, ThreadPage, count_sql, extracted, search_sql

THREAD_COLUMNS = (
    "thread_id",
    "tenant_id",
    "assistant_id",
    "config_version",
    "environment",
    "overrides_revision",
    "status",
    "metadata",
    '"values"',
    "created_at",
    "updated_at",
    "state_updated_at",
    "expires_at",
    "ttl_minutes",
)
_THREAD_COLS = ", ".join(THREAD_COLUMNS)
# The expiry of a thread touched now: its own ttl from now, else the server's (the parameter; NULL for none).
EXPIRES_AT_SQL = "CASE WHEN ttl_minutes IS NULL THEN %s::timestamptz ELSE now() + ttl_minutes * interval '1 minute' END"

# The tool-call ledger (agents/tools/ledger.py) has no foreign key to threads (a graph may run under a
# thread id with no row here, e.g. `chorus chat`), so a statement deleting threads (CTE `gone`) takes
# their ledger rows along.
_LEDGER_OF_GONE = (
    "ledger AS (DELETE FROM tool_calls c USING gone g"
    " WHERE c.tenant_id = g.tenant_id AND c.thread_id = g.thread_id::text)"
)


def thread_view(row: dict[str, Any], *, ttl_days: float | None = None, with_ttl: bool = False) -> dict[str, Any]:
    view = {
        "thread_id": str(row["thread_id"]),
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
        "state_updated_at": row["state_updated_at"],
        "metadata": row["metadata"],
        "status": row["status"],
        "values": row["values"] or {},
        "interrupts": {},
        "config": {},
        "assistant_id": str(row["assistant_id"]) if row["assistant_id"] else None,
        "config_version": row["config_version"],
        "environment": row["environment"],
        "expires_at": row["expires_at"],
    }
    if with_ttl:  # GET /threads/{id}?include=ttl: the thread's own ttl, else the server's, else none
        minutes = row["ttl_minutes"] if row["ttl_minutes"] is not None else (ttl_days * 1440 if ttl_days else None)
        view["ttl"] = (
            {"strategy": "delete", "ttl_minutes": minutes, "expires_at": row["expires_at"]} if minutes else None
        )
    return view


class ThreadRepository:
    def __init__(self, db: Database, *, ttl_days: float | None) -> None:
        self.db = db
        self.ttl_days = ttl_days

    def _expiry(self) -> datetime | None:
        return datetime.now(UTC) + timedelta(days=self.ttl_days) if self.ttl_days else None

    async def create(
        self,
        tenant_id: str,
        *,
        thread_id: str | None,
        metadata: dict[str, Any],
        if_exists: str = "raise",
        ttl_minutes: float | None = None,
    ) -> dict[str, Any]:
        row = await self.insert(tenant_id, thread_id=thread_id, metadata=metadata, ttl_minutes=ttl_minutes)
        if row is not None:
            return row
        assert thread_id is not None  # a generated id is new
        if if_exists == "do_nothing":
            return await self.get(tenant_id, thread_id)
        raise AlreadyExists(f"thread '{thread_id}' already exists; pass if_exists='do_nothing' to reuse it")

    async def insert(
        self, tenant_id: str, *, thread_id: str | None, metadata: dict[str, Any], ttl_minutes: float | None = None
    ) -> dict[str, Any] | None:
        """A new thread; None if the id is taken (by this tenant or another: the caller cannot tell)."""
        thread_id = parse_uuid(thread_id, "thread") if thread_id else str(uuid.uuid4())
        async with self.db.connection() as conn:
            cur = await conn.execute(
                "INSERT INTO threads (thread_id, tenant_id, metadata, ttl_minutes, expires_at)"
                " VALUES (%s, %s, %s, %s, CASE WHEN %s::float8 IS NULL THEN %s::timestamptz"
                " ELSE now() + %s::float8 * interval '1 minute' END)"
                f" ON CONFLICT (thread_id) DO NOTHING RETURNING {_THREAD_COLS}",
                (thread_id, tenant_id, json.dumps(metadata), ttl_minutes, ttl_minutes, self._expiry(), ttl_minutes),
            )
            return await cur.fetchone()

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
        self, tenant_id: str, where: ThreadFilter, page: ThreadPage
    ) -> tuple[list[dict[str, Any]], int | None]:
        """A page of the tenant's threads and the offset of the next page (None on the last); with
        `page.extract`, each row's extracted values under `extracted`."""
        sql, params = search_sql(THREAD_COLUMNS, tenant_id, where, page)
        async with self.db.connection() as conn:
            cur = await conn.execute(sql, params)
            rows = await cur.fetchall()
        more = len(rows) > page.limit
        rows = rows[: page.limit]
        if page.extract:
            rows = [{**r, "extracted": extracted(r, page.extract)} for r in rows]
        return rows, page.offset + page.limit if more else None

    async def count(self, tenant_id: str, where: ThreadFilter) -> int:
        sql, params = count_sql(tenant_id, where)
        async with self.db.connection() as conn:
            cur = await conn.execute(sql, params)
            row = await cur.fetchone()
        return int(row["n"]) if row else 0

    async def update(
        self, tenant_id: str, thread_id: str, *, metadata: dict[str, Any], ttl_minutes: float | None = None
    ) -> dict[str, Any]:
        """Merge `metadata` into the thread's; with `ttl_minutes`, the thread's own ttl, counted from now."""
        thread_id = parse_uuid(thread_id, "thread")
        sets = ["metadata = metadata || %s", "updated_at = now()"]
        params: list[Any] = [json.dumps(metadata)]
        if ttl_minutes is not None:
            sets += ["ttl_minutes = %s", "expires_at = now() + %s * interval '1 minute'"]
            params += [ttl_minutes, ttl_minutes]
        async with self.db.connection() as conn:
            cur = await conn.execute(
                f"UPDATE threads SET {', '.join(sets)} WHERE tenant_id = %s AND thread_id = %s"
                f" RETURNING {_THREAD_COLS}",
                (*params, tenant_id, thread_id),
            )
            row = await cur.fetchone()
        if row is None:
            raise ThreadNotFound(thread_id)
        return row

    @asynccontextmanager
    async def idle(self, tenant_id: str, thread_id: str, *, doing: str) -> AsyncIterator[LockedThread]:
        """The thread, locked until the block ends, with no run queued or running on it (ThreadBusy, saying
        what could not be done, otherwise). A run submitted meanwhile waits for the block to end (storing it
        needs the thread's row), then runs after what the block did."""
        thread_id = parse_uuid(thread_id, "thread")
        async with self.db.connection() as conn, conn.transaction():
            cur = await conn.execute(
                f"SELECT {_THREAD_COLS} FROM threads WHERE tenant_id = %s AND thread_id = %s FOR UPDATE",
                (tenant_id, thread_id),
            )
            row = await cur.fetchone()
            if row is None:
                raise ThreadNotFound(thread_id)
            # A statement of its own, after the lock: it sees a run stored while the lock was being taken.
            cur = await conn.execute("SELECT job_id FROM queue_jobs WHERE lane = %s ORDER BY seq LIMIT 1", (thread_id,))
            busy = await cur.fetchone()
            if busy is not None:
                raise ThreadBusy(
                    f"thread '{thread_id}' has a queued or running run ('{busy['job_id']}'), so Chorus cannot "
                    f"{doing} now; wait for it (GET /threads/{thread_id}/runs/{busy['job_id']}/join) or cancel it"
                )
            yield LockedThread(conn, row, self._expiry())

    async def copy(self, tenant_id: str, thread_id: str) -> dict[str, Any]:
        """A new thread with the thread's metadata, pin, ttl, values, every checkpoint (all of its history,
        as DeltaChannel needs) and its tool-call ledger, in one transaction; ThreadBusy while a run is
        queued or running on it (its newest steps may not be stored yet)."""
        new_id = str(uuid.uuid4())
        async with self.idle(tenant_id, thread_id, doing="copy it") as locked:
            source = str(locked.row["thread_id"])
            cur = await locked.conn.execute(
                "INSERT INTO threads (thread_id, tenant_id, assistant_id, config_version, environment,"
                ' overrides_revision, metadata, "values", ttl_minutes, state_updated_at, expires_at)'
                " SELECT %s, tenant_id, assistant_id, config_version, environment, overrides_revision,"
                f' metadata, "values", ttl_minutes, state_updated_at, {EXPIRES_AT_SQL} FROM threads'
                f" WHERE thread_id = %s RETURNING {_THREAD_COLS}",
                (new_id, locked.expiry, source),
            )
            row = await cur.fetchone()
            await ChorusCheckpointer.copy_rows(locked.conn, source=source, target=new_id)
            await locked.conn.execute(
                "INSERT INTO tool_calls (tenant_id, thread_id, tool_call_id, tool_name, run_id, status, result,"
                " started_at, finished_at) SELECT tenant_id, %s, tool_call_id, tool_name, run_id, status, result,"
                " started_at, finished_at FROM tool_calls WHERE tenant_id = %s AND thread_id = %s",
                (new_id, tenant_id, source),
            )
        assert row is not None  # INSERT … SELECT of the row locked above
        return row

    async def pin(self, thread_id: str, assistant_id: str, serving: Serving) -> None:
        async with self.db.connection() as conn:
            await pin_thread(conn, thread_id, assistant_id, serving)

    async def repin(self, thread_id: str, *, old: str, new: str, serving: Serving) -> None:
        """Move a thread whose assistant was deleted to another assistant (its checkpoints stay)."""
        async with self.db.connection() as conn:
            await conn.execute(
                "UPDATE threads SET assistant_id = %s, config_version = %s, environment = %s,"
                " overrides_revision = %s, metadata = metadata || %s, updated_at = now()"
                " WHERE thread_id = %s AND assistant_id = %s",
                (
                    new,
                    serving.version,
                    serving.environment,
                    serving.overrides_revision,
                    json.dumps({"assistant_id": new, "graph_id": "chatbot"}),
                    thread_id,
                    old,
                ),
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

    async def has_checkpoint(self, thread_id: str, checkpoint_id: str) -> bool:
        """Whether the checkpoint is one of the thread's (of its root graph)."""
        async with self.db.connection() as conn:
            cur = await conn.execute(
                "SELECT 1 FROM checkpoints WHERE thread_id = %s AND checkpoint_ns = '' AND checkpoint_id = %s",
                (thread_id, checkpoint_id),
            )
            return await cur.fetchone() is not None

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


async def pin_thread(conn: AsyncConnection[DictRow], thread_id: str, assistant_id: str, serving: Serving) -> None:
    """Pin a thread without one to an assistant's version in an environment (what its first run or state
    update got)."""
    await conn.execute(
        "UPDATE threads SET assistant_id = %s, config_version = %s, environment = %s, overrides_revision = %s,"
        " metadata = metadata || %s WHERE thread_id = %s AND assistant_id IS NULL",
        (
            assistant_id,
            serving.version,
            serving.environment,
            serving.overrides_revision,
            json.dumps({"assistant_id": assistant_id, "graph_id": "chatbot"}),
            thread_id,
        ),
    )


class LockedThread:
    """A thread's row, locked by `conn`'s transaction (ThreadRepository.idle)."""

    def __init__(self, conn: AsyncConnection[DictRow], row: dict[str, Any], expiry: datetime | None) -> None:
        self.conn = conn
        self.row = row
        self.expiry = expiry  # the server's expiry for a thread touched now

    @property
    def thread_id(self) -> str:
        return str(self.row["thread_id"])

    async def pin(self, assistant_id: str, serving: Serving) -> None:
        await pin_thread(self.conn, self.thread_id, assistant_id, serving)
        self.row = {
            **self.row,
            "assistant_id": assistant_id,
            "config_version": serving.version,
            "environment": serving.environment,
            "overrides_revision": serving.overrides_revision,
        }

    async def record_state(self, values: Any) -> None:
        """The thread's new values after a state update (what GET /threads and search by values read)."""
        await self.conn.execute(
            'UPDATE threads SET "values" = %s, state_updated_at = now(), updated_at = now(),'
            f" expires_at = {EXPIRES_AT_SQL} WHERE thread_id = %s",
            (Jsonb(values), self.expiry, self.thread_id),
        )
