"""SQL for runs. A run's row and its queue job are written in one statement at each step: accepted
(with its input), started, ended (with the thread's new values), so no crash leaves them disagreeing."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection
from psycopg.errors import UniqueViolation
from psycopg.rows import DictRow
from psycopg.types.json import Jsonb

from chorus.agents.configs.environments import Serving
from chorus.agents.configs.repository import parse_uuid
from chorus.agents.errors import AlreadyExists, RunNotFound
from chorus.agents.queue.repository import WAKE_CHANNEL, WAKE_SQL, Job, Lease, NewJob, enqueue_sql, take_given_up
from chorus.agents.storage.database import Database
from chorus.runs.statuses import RunStatus, ThreadStatus
from chorus.runs.webhooks_repository import completion_payload, enqueue_delivery

RUN_KIND = "run"
_RUN_COLS = (
    "r.run_id, r.thread_id, r.assistant_id, r.config_version, r.environment, r.overrides_revision, r.status,"
    " r.multitask_strategy, r.kwargs, r.metadata, r.error, r.created_at, r.updated_at"
)
# The status of the thread's run before this one (a failed or cancelled one leaves tool calls to repair).
_PREVIOUS = (
    "(SELECT p.status FROM runs p WHERE p.thread_id = r.thread_id AND p.created_at < r.created_at"
    " ORDER BY p.created_at DESC LIMIT 1) AS previous_status"
)


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
class NewRun:
    run_id: str
    tenant_id: str
    thread_id: str
    assistant_id: str
    serving: Serving
    strategy: str
    kwargs: dict[str, Any]
    metadata: dict[str, Any]
    after_seconds: float = 0.0


class RunRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def insert(self, run: NewRun, *, claim: Lease | None) -> tuple[dict[str, Any], Job]:
        """Store the run with its input and queue it, in one statement. With `claim`, this worker takes it
        at once if the thread has nothing queued or running (the run starts `running`, the thread `busy`)."""
        job = NewJob(
            kind=RUN_KIND,
            tenant_id=run.tenant_id,
            lane=run.thread_id,
            job_id=run.run_id,
            max_attempts=3,
            after_s=run.after_seconds,
        )
        for lease in (claim, None) if claim else (None,):
            job_sql, job_params = enqueue_sql(job, claim=lease)
            sql = (
                f"WITH job AS ({job_sql}),"
                " busy AS (UPDATE threads SET status = 'busy', updated_at = now() WHERE thread_id = %s"
                " AND EXISTS (SELECT 1 FROM job WHERE status = 'running') RETURNING thread_id),"
                " r AS (INSERT INTO runs (run_id, tenant_id, thread_id, assistant_id, config_version, environment,"
                " overrides_revision, multitask_strategy, kwargs, metadata, status)"
                " SELECT %s, %s, %s, %s, %s, %s, %s, %s, %s, %s,"
                " CASE WHEN job.status = 'running' THEN 'running' ELSE 'pending' END FROM job"
                " RETURNING *)"
                f" SELECT {_RUN_COLS}, {_PREVIOUS}, job.job_id, job.tenant_id AS job_tenant, job.kind, job.lane,"
                " job.payload, job.status AS job_status, job.attempts, job.max_attempts, job.worker, job.cancel,"
                f" {WAKE_SQL} FROM r, job"
            )
            params = [
                *job_params,
                run.thread_id,
                run.run_id,
                run.tenant_id,
                run.thread_id,
                run.assistant_id,
                run.serving.version,
                run.serving.environment,
                run.serving.overrides_revision,
                run.strategy,
                Jsonb(run.kwargs),
                Jsonb(run.metadata),
            ]
            try:
                async with self.db.connection() as conn:
                    cur = await conn.execute(sql, params)
                    row = await cur.fetchone()
            except UniqueViolation as exc:
                if exc.diag.constraint_name == "queue_jobs_one_running_per_lane":
                    continue  # another process took the thread in the same instant: queue behind it
                raise AlreadyExists(f"run '{run.run_id}' already exists") from None  # a cron's occurrence, again
            if row is None:  # pragma: no cover - INSERT … RETURNING always returns the row
                break
            queued = Job.from_row(
                {
                    **row,
                    "job_id": str(row["job_id"]),
                    "tenant_id": row["job_tenant"],
                    "status": row["job_status"],
                }
            )
            return row, queued
        raise RuntimeError(f"could not store run {run.run_id}")

    async def for_execution(self, run_id: str) -> dict[str, Any] | None:
        """A claimed run's row, marked running with its thread busy; None if the run is gone."""
        async with self.db.connection() as conn:
            cur = await conn.execute(
                "WITH started AS (UPDATE runs SET status = 'running', updated_at = now() WHERE run_id = %s"
                " RETURNING thread_id), busy AS (UPDATE threads SET status = 'busy', updated_at = now()"
                " WHERE thread_id IN (SELECT thread_id FROM started))"
                f" SELECT {_RUN_COLS}, r.tenant_id, {_PREVIOUS} FROM runs r WHERE r.run_id = %s",
                (run_id, run_id),
            )
            return await cur.fetchone()

    async def finish(
        self,
        *,
        run_id: str,
        thread_id: str,
        lease: Lease,
        status: RunStatus,
        error: str | None = None,
        values: Any = None,
        metadata: dict[str, Any] | None = None,
        expires_at: Any = None,
        delete_run: bool = False,
        paused: bool = False,
        webhook: str | None = None,
    ) -> bool:
        """End the run and its job, and set the thread's status (and values): one statement. False if the
        job was no longer held by this worker (another took it over), in which case nothing changes. A
        `paused` graph (a breakpoint, an interrupt) leaves its thread `interrupted`. With `webhook`, the
        delivery of the run's completion is queued in the same transaction."""
        thread_sets = [
            "status = CASE WHEN EXISTS (SELECT 1 FROM queue_jobs q WHERE q.lane = %s AND q.job_id <> %s)"
            " THEN 'busy' ELSE %s END",
            "updated_at = now()",
            # A thread with a ttl of its own counts it from now; the others take the server's expiry.
            "expires_at = CASE WHEN ttl_minutes IS NULL THEN %s::timestamptz"
            " ELSE now() + ttl_minutes * interval '1 minute' END",
        ]
        thread_status = ThreadStatus.ERROR if status in (RunStatus.ERROR, RunStatus.TIMEOUT) else ThreadStatus.IDLE
        if paused and status == RunStatus.SUCCESS:
            thread_status = ThreadStatus.INTERRUPTED
        params: list[Any] = [run_id, lease.worker]
        returned = "*" if webhook else "run_id"  # a webhook's payload is the run as it ended
        if delete_run:
            run_sql = f"DELETE FROM runs WHERE run_id = %s AND EXISTS (SELECT 1 FROM job) RETURNING {returned}"
            params += [run_id]
        else:
            run_sql = (
                "UPDATE runs SET status = %s, error = coalesce(%s, error), updated_at = now() WHERE run_id = %s"
                f" AND EXISTS (SELECT 1 FROM job) RETURNING {returned}"
            )
            params += [status.value, error, run_id]
        params += [thread_id, run_id, thread_status.value, expires_at]
        if values is not None:
            thread_sets += ['"values" = %s', "state_updated_at = now()"]
            params.append(Jsonb(values))
        if metadata:
            thread_sets.append("metadata = metadata || %s")
            params.append(json.dumps(metadata))
        params.append(thread_id)
        sql = (
            "WITH job AS (DELETE FROM queue_jobs WHERE job_id = %s AND worker = %s RETURNING lane),"
            f" run AS ({run_sql}),"
            f" thread AS (UPDATE threads SET {', '.join(thread_sets)} WHERE thread_id = %s"
            ' AND EXISTS (SELECT 1 FROM job) RETURNING thread_id, "values")'
            " SELECT (SELECT count(*) FROM job) AS ended,"
            f" (SELECT pg_notify('{WAKE_CHANNEL}', 'run') WHERE EXISTS (SELECT 1 FROM queue_jobs q"
            " WHERE q.lane = %s AND q.status = 'queued')) AS woke"
        )
        if webhook:
            sql += ', (SELECT to_jsonb(x) FROM run x) AS run_row, (SELECT "values" FROM thread) AS thread_values'
        params.append(thread_id)
        async with self.db.connection() as conn:
            if not webhook:
                cur = await conn.execute(sql, params)
                row = await cur.fetchone()
                return bool(row and row["ended"])
            async with conn.transaction():
                cur = await conn.execute(sql, params)
                row = await cur.fetchone()
                if row and row["ended"] and row["run_row"]:
                    await _queue_webhook(conn, row["run_row"], webhook, status=status, values=row["thread_values"])
        return bool(row and row["ended"])

    async def hand_back(self, run_id: str) -> None:
        """The run's job went back to the queue: the run waits again."""
        async with self.db.connection() as conn:
            await conn.execute("UPDATE runs SET status = 'pending', updated_at = now() WHERE run_id = %s", (run_id,))

    async def end_unexecuted(
        self,
        run_id: str,
        status: RunStatus,
        error: str | None = None,
        *,
        given_up: Lease | None = None,
        notify: bool = True,
    ) -> None:
        """End a run that never ran (cancelled while queued, thread gone) or that the reaper gave up on:
        then its queue job, held under `given_up`, is deleted in the same transaction. Its webhook, if it
        has one, is queued in that transaction too, unless `notify` is False (a run refused at creation)."""
        async with self.db.connection() as conn, conn.transaction():
            if given_up is not None and not await take_given_up(conn, run_id, given_up):
                return  # another worker holds it now and records the failure
            cur = await conn.execute(
                "UPDATE runs SET status = %s, error = coalesce(%s, error), updated_at = now() WHERE run_id = %s"
                " RETURNING to_jsonb(runs) AS run_row",
                (status.value, error, run_id),
            )
            row = await cur.fetchone()
            if row is not None:
                run = row["run_row"]
                cur = await conn.execute(
                    "UPDATE threads SET status = CASE WHEN EXISTS (SELECT 1 FROM queue_jobs q WHERE q.lane = %s)"
                    " THEN 'busy' WHEN %s = 'error' THEN 'error' ELSE 'idle' END, updated_at = now()"
                    ' WHERE thread_id = %s RETURNING "values"',
                    (run["thread_id"], status.value, run["thread_id"]),
                )
                thread = await cur.fetchone()
                webhook = (run.get("kwargs") or {}).get("webhook")
                if notify and webhook:
                    values = thread["values"] if thread else None
                    await _queue_webhook(conn, run, webhook, status=status, values=values)

    async def get(self, tenant_id: str, thread_id: str, run_id: str) -> dict[str, Any]:
        run_id = parse_uuid(run_id, "run")
        thread_id = parse_uuid(thread_id, "thread")
        async with self.db.connection() as conn:
            cur = await conn.execute(
                f"SELECT {_RUN_COLS} FROM runs r WHERE r.tenant_id = %s AND r.thread_id = %s AND r.run_id = %s",
                (tenant_id, thread_id, run_id),
            )
            row = await cur.fetchone()
        if row is None:
            raise RunNotFound(run_id, thread_id)
        return row

    async def list_for_thread(
        self, tenant_id: str, thread_id: str, *, limit: int, offset: int, status: str | None
    ) -> list[dict[str, Any]]:
        sql = f"SELECT {_RUN_COLS} FROM runs r WHERE r.tenant_id = %s AND r.thread_id = %s"
        params: list[Any] = [tenant_id, thread_id]
        if status:
            sql += " AND r.status = %s"
            params.append(status)
        sql += " ORDER BY r.created_at DESC LIMIT %s OFFSET %s"
        async with self.db.connection() as conn:
            cur = await conn.execute(sql, (*params, limit, offset))
            return await cur.fetchall()

    async def active(
        self, tenant_id: str, *, thread_id: str | None, run_ids: list[str] | None, statuses: list[str]
    ) -> list[dict[str, Any]]:
        """The tenant's runs in `statuses` (pending, running), optionally of one thread and of these ids."""
        sql = "SELECT run_id::text, thread_id::text FROM runs WHERE tenant_id = %s AND status = ANY(%s)"
        params: list[Any] = [tenant_id, statuses]
        if thread_id is not None:
            sql += " AND thread_id = %s"
            params.append(thread_id)
        if run_ids is not None:
            sql += " AND run_id = ANY(%s::uuid[])"
            params.append(run_ids)
        async with self.db.connection() as conn:
            cur = await conn.execute(sql + " ORDER BY created_at LIMIT 10000", params)
            return await cur.fetchall()

    async def delete_finished(self, tenant_id: str, run_id: str) -> bool:
        """Delete a run that has ended; False if it is still queued or running."""
        async with self.db.connection() as conn:
            cur = await conn.execute(
                "DELETE FROM runs WHERE tenant_id = %s AND run_id = %s AND status NOT IN ('pending', 'running')"
                " AND NOT EXISTS (SELECT 1 FROM queue_jobs WHERE job_id = %s)",
                (tenant_id, run_id, run_id),
            )
            return cur.rowcount > 0

    async def outcomes(self, run_ids: list[str]) -> dict[str, tuple[str, dict[str, str] | None, Any]]:
        """Runs among these that ended (more than a moment ago) with their status, error and the thread's
        values; a run deleted by a rollback counts as interrupted."""
        async with self.db.connection() as conn:
            cur = await conn.execute(
                'SELECT w.id AS run_id, r.status, r.error, t."values" FROM unnest(%s::uuid[]) AS w(id)'
                " LEFT JOIN runs r ON r.run_id = w.id LEFT JOIN threads t ON t.thread_id = r.thread_id"
                " WHERE NOT EXISTS (SELECT 1 FROM queue_jobs q WHERE q.job_id = w.id)"
                " AND (r.run_id IS NULL OR r.updated_at < now() - interval '1 second')",
                (run_ids,),
            )
            rows = await cur.fetchall()
        out: dict[str, tuple[str, dict[str, str] | None, Any]] = {}
        for row in rows:
            status = row["status"] or RunStatus.INTERRUPTED.value
            error = {"error": status, "message": row["error"]} if row["error"] else None
            out[str(row["run_id"])] = (status, error, row["values"] or {})
        return out

    async def erase_checkpoints(self, thread_id: str, run_id: str) -> None:
        """Delete the checkpoints a run wrote and the writes its steps stored (a rollback)."""
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

    async def is_checkpoint_of(self, thread_id: str, checkpoint_id: str) -> bool:
        async with self.db.connection() as conn:
            cur = await conn.execute(
                "SELECT 1 FROM checkpoints WHERE thread_id = %s AND checkpoint_ns = '' AND checkpoint_id = %s",
                (thread_id, checkpoint_id),
            )
            return await cur.fetchone() is not None

    async def has_checkpoints(self, thread_id: str, run_id: str) -> bool:
        """Whether the run already checkpointed (so a new attempt resumes instead of starting over)."""
        async with self.db.connection() as conn:
            cur = await conn.execute(
                "SELECT 1 FROM checkpoints WHERE thread_id = %s AND checkpoint_ns = '' AND metadata->>'run_id' = %s"
                " LIMIT 1",
                (thread_id, run_id),
            )
            return await cur.fetchone() is not None


async def _queue_webhook(
    conn: AsyncConnection[DictRow], run: dict[str, Any], url: str, *, status: RunStatus, values: Any
) -> None:
    """Queue the delivery of the run's completion (`run`: its row as JSON) in the caller's transaction."""
    await enqueue_delivery(
        conn,
        tenant_id=str(run["tenant_id"]),
        run_id=str(run["run_id"]),
        thread_id=str(run["thread_id"]),
        url=url,
        payload=completion_payload(run_view(run), status=status.value, values=values),
    )
