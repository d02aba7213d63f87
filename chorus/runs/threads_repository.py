"""SQL for threads and runs; every query is scoped to the tenant."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from chorus.agents.configs.repository import parse_uuid
from chorus.agents.errors import Conflict, NotFound
from chorus.agents.storage.database import Database

_THREAD_COLS = (
    'thread_id, tenant_id, assistant_id, config_version, status, metadata, "values", created_at, updated_at, expires_at'
)
# Take a thread for one process's turn: free, already ours, or a dead process's expired lease.
_TAKE_THREAD = (
    "UPDATE threads SET status = 'busy', updated_at = now(), run_owner = %s,"
    " run_lease_until = now() + make_interval(secs => %s) WHERE thread_id = %s"
    " AND (run_owner IS NULL OR run_owner = %s OR run_lease_until < now()) RETURNING thread_id"
)
_RUN_COLS = (
    "run_id, thread_id, assistant_id, config_version, status, multitask_strategy, kwargs, metadata, error,"
    " checkpoint_before, created_at, updated_at"
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


def run_view(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "run_id": str(row["run_id"]),
        "thread_id": str(row["thread_id"]),
        "assistant_id": str(row["assistant_id"]),
        "config_version": row["config_version"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
        "status": row["status"],
        "metadata": row["metadata"],
        "multitask_strategy": row["multitask_strategy"],
        "kwargs": row["kwargs"],
        "error": row["error"],
    }


@dataclass(frozen=True)
class Lease:
    """This process's claim on a thread while one of its turns runs."""

    owner: str
    seconds: float


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
        raise Conflict(f"thread '{thread_id}' already exists; pass if_exists='do_nothing' to reuse it")

    async def get(self, tenant_id: str, thread_id: str) -> dict[str, Any]:
        thread_id = parse_uuid(thread_id, "thread")
        async with self.db.connection() as conn:
            cur = await conn.execute(
                f"SELECT {_THREAD_COLS} FROM threads WHERE tenant_id = %s AND thread_id = %s",
                (tenant_id, thread_id),
            )
            row = await cur.fetchone()
        if row is None:
            raise NotFound(f"thread '{thread_id}' does not exist")
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
        assert row is not None
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

    async def set_status(
        self,
        thread_id: str,
        status: str,
        *,
        values: Any = None,
        metadata: dict[str, Any] | None = None,
        release: Lease | None = None,
        run: tuple[str, str, str | None] | None = None,
    ) -> None:
        """Set the thread's status; with `release`, also give the thread back if this process holds it;
        with `run` = (run_id, status, error), end that run in the same statement."""
        sets = ["status = %s", "updated_at = now()", "expires_at = %s"]
        params: list[Any] = [status, self._expiry()]
        if release is not None:
            sets += ["run_owner = NULL", "run_lease_until = NULL"]
        if values is not None:
            sets.append('"values" = %s')
            params.append(json.dumps(values))
        if metadata:
            sets.append("metadata = metadata || %s")
            params.append(json.dumps(metadata))
        where = "thread_id = %s"
        params.append(thread_id)
        if release is not None:  # a lease that expired and was taken over is no longer ours to end
            where += " AND (run_owner IS NULL OR run_owner = %s)"
            params.append(release.owner)
        sql = f"UPDATE threads SET {', '.join(sets)} WHERE {where}"
        if run is not None:
            sql = (
                "WITH ended AS (UPDATE runs SET status = %s, error = coalesce(%s, error), updated_at = now()"
                f" WHERE run_id = %s) {sql}"
            )
            params = [run[1], run[2], run[0], *params]
        async with self.db.connection() as conn:
            await conn.execute(sql, params)

    async def delete(self, tenant_id: str, thread_id: str) -> None:
        thread_id = parse_uuid(thread_id, "thread")
        async with self.db.connection() as conn:
            cur = await conn.execute(
                "DELETE FROM threads WHERE tenant_id = %s AND thread_id = %s", (tenant_id, thread_id)
            )
        if cur.rowcount == 0:
            raise NotFound(f"thread '{thread_id}' does not exist")

    async def expired(self, limit: int = 500) -> list[str]:
        async with self.db.connection() as conn:
            cur = await conn.execute(
                "DELETE FROM threads WHERE thread_id IN (SELECT thread_id FROM threads WHERE expires_at < now()"
                " AND status <> 'busy' LIMIT %s) RETURNING thread_id",
                (limit,),
            )
            return [str(r["thread_id"]) for r in await cur.fetchall()]

    # -- runs -----------------------------------------------------------------------------------

    async def insert_run(
        self,
        *,
        run_id: str,
        tenant_id: str,
        thread_id: str,
        assistant_id: str,
        version: int,
        strategy: str,
        kwargs: dict[str, Any],
        metadata: dict[str, Any],
        lease: Lease | None,
    ) -> dict[str, Any]:
        """Insert the run. With a `lease` it also tries to take the thread for this process: the run is
        inserted running (thread busy) if it got it, pending if another process holds the thread."""
        values = [
            run_id,
            tenant_id,
            thread_id,
            assistant_id,
            version,
            strategy,
            json.dumps(kwargs, default=str),
            json.dumps(metadata),
        ]
        if lease is None:
            sql = (
                f"INSERT INTO runs (run_id, tenant_id, thread_id, assistant_id, config_version, multitask_strategy,"
                f" kwargs, metadata, status) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,'pending') RETURNING {_RUN_COLS}"
            )
            params: list[Any] = values
        else:
            sql = (
                f"WITH lease AS ({_TAKE_THREAD}) INSERT INTO runs (run_id, tenant_id, thread_id, assistant_id,"
                f" config_version, multitask_strategy, kwargs, metadata, status) SELECT %s,%s,%s,%s,%s,%s,%s,%s,"
                f" CASE WHEN EXISTS (SELECT 1 FROM lease) THEN 'running' ELSE 'pending' END RETURNING {_RUN_COLS}"
            )
            params = [lease.owner, lease.seconds, thread_id, lease.owner, *values]
        async with self.db.connection() as conn:
            cur = await conn.execute(sql, params)
            row = await cur.fetchone()
        assert row is not None
        return row

    async def set_run_status(
        self, run_id: str, status: str, *, error: str | None = None, checkpoint_before: str | None = None
    ) -> None:
        async with self.db.connection() as conn:
            await conn.execute(
                "UPDATE runs SET status = %s, error = coalesce(%s, error),"
                " checkpoint_before = coalesce(%s, checkpoint_before), updated_at = now() WHERE run_id = %s",
                (status, error, checkpoint_before, run_id),
            )

    async def mark_running(self, run_id: str, thread_id: str, lease: Lease) -> bool:
        """Take the thread for this process and start the run; False if another process holds it."""
        async with self.db.connection() as conn:
            cur = await conn.execute(
                f"WITH lease AS ({_TAKE_THREAD}) UPDATE runs SET status = 'running', updated_at = now()"
                " WHERE run_id = %s AND EXISTS (SELECT 1 FROM lease) RETURNING run_id",
                (lease.owner, lease.seconds, thread_id, lease.owner, run_id),
            )
            return await cur.fetchone() is not None

    async def get_run(self, tenant_id: str, thread_id: str, run_id: str) -> dict[str, Any]:
        run_id = parse_uuid(run_id, "run")
        thread_id = parse_uuid(thread_id, "thread")
        async with self.db.connection() as conn:
            cur = await conn.execute(
                f"SELECT {_RUN_COLS} FROM runs WHERE tenant_id = %s AND thread_id = %s AND run_id = %s",
                (tenant_id, thread_id, run_id),
            )
            row = await cur.fetchone()
        if row is None:
            raise NotFound(f"run '{run_id}' does not exist on thread '{thread_id}'")
        return row

    async def list_runs(
        self, tenant_id: str, thread_id: str, *, limit: int, offset: int, status: str | None
    ) -> list[dict[str, Any]]:
        await self.get(tenant_id, thread_id)
        sql = f"SELECT {_RUN_COLS} FROM runs WHERE tenant_id = %s AND thread_id = %s"
        params: list[Any] = [tenant_id, thread_id]
        if status:
            sql += " AND status = %s"
            params.append(status)
        sql += " ORDER BY created_at DESC LIMIT %s OFFSET %s"
        async with self.db.connection() as conn:
            cur = await conn.execute(sql, (*params, limit, offset))
            return await cur.fetchall()

    async def delete_run(self, run_id: str) -> None:
        async with self.db.connection() as conn:
            await conn.execute("DELETE FROM runs WHERE run_id = %s", (run_id,))

    async def erase_run_checkpoints(self, thread_id: str, run_id: str) -> None:
        """Delete the checkpoints a run wrote and the writes its steps stored (a rollback).

        A turn's writes are stored against the checkpoint it started from (durability "exit"), so the
        writes on that checkpoint go too; Chorus leaves no other pending writes on a thread's newest
        checkpoint between runs.
        """
        async with self.db.connection() as conn, conn.transaction():
            cur = await conn.execute(
                "SELECT checkpoint_id, parent_checkpoint_id FROM checkpoints"
                " WHERE thread_id = %s AND metadata->>'run_id' = %s",
                (thread_id, run_id),
            )
            rows = await cur.fetchall()
            ids = [r["checkpoint_id"] for r in rows]
            started_from = [r["parent_checkpoint_id"] for r in rows if r["parent_checkpoint_id"] not in ids]
            if ids:
                await conn.execute(
                    "DELETE FROM checkpoint_writes WHERE thread_id = %s AND checkpoint_id = ANY(%s)",
                    (thread_id, ids + [p for p in started_from if p]),
                )
                await conn.execute(
                    "DELETE FROM checkpoints WHERE thread_id = %s AND checkpoint_id = ANY(%s)", (thread_id, ids)
                )

    async def renew_leases(self, lease: Lease) -> None:
        """Keep this process's threads: a live process renews, a dead one's leases run out."""
        async with self.db.connection() as conn:
            await conn.execute(
                "UPDATE threads SET run_lease_until = now() + make_interval(secs => %s) WHERE run_owner = %s",
                (lease.seconds, lease.owner),
            )

    async def recover_after_crash(self) -> list[str]:
        """Runs left running/pending by a dead process (no live lease on their thread) end as errors; their
        threads are marked for repair and given back."""
        async with self.db.connection() as conn:
            cur = await conn.execute(
                "UPDATE runs SET status = 'error', error = 'the server stopped while this run was active',"
                " updated_at = now() WHERE status IN ('pending', 'running') AND thread_id IN (SELECT thread_id"
                " FROM threads WHERE run_owner IS NULL OR run_lease_until < now()) RETURNING thread_id"
            )
            threads = [r["thread_id"] for r in await cur.fetchall()]
            if threads:
                await conn.execute(
                    "UPDATE threads SET status = 'error', run_owner = NULL, run_lease_until = NULL"
                    " WHERE thread_id = ANY(%s) AND (run_owner IS NULL OR run_lease_until < now())",
                    (threads,),
                )
        return [str(t) for t in threads]
