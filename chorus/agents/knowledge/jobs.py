"""Knowledge jobs (ingestion, FAQ import, re-embed): queue jobs of the one Postgres job queue, with their
user-visible record in kb_jobs.

Accepting a job (the API's 202) writes three rows in one statement: the record in kb_jobs (status,
progress, result: what `GET /api/v1/rag/ingest/{job_id}` shows), the input in kb_job_inputs (the text
or file bytes and the request's parameters) and the queue job. From then on any process's worker can run
it (job_handlers.py); one whose process died is claimed again when its lease runs out and runs again from
its stored input. A job ends in the transaction that stores its result (the document's chunks, the
imported FAQs, the new vectors): that transaction also records the outcome, deletes the input and ends
the queue job if this worker still holds it, so a job run twice never applies twice.

Lanes: one per namespace. A namespace's jobs run one at a time, in the order they were accepted, across
every process: two uploads of one document are stored in the order they were sent, and an ingestion never
races a re-embed or an FAQ import of its namespace (each would make the other fail with "run it again").
Jobs of different namespaces run side by side.

Concurrency: the three kinds are one queue kind, `knowledge`, so the worker's slots for it cap all
embedding work (CPU-bound) a process does at once, whatever the mix.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from typing import Any, Literal

from psycopg import AsyncConnection
from psycopg.errors import UniqueViolation
from psycopg.rows import DictRow
from psycopg.types.json import Jsonb

from chorus.agents.errors import NotFound
from chorus.agents.queue import Job, JobStatus, Lease, NewJob, Worker
from chorus.agents.queue.repository import WAKE_SQL, enqueue_sql, finish_sql, take_given_up
from chorus.agents.storage.database import Database

KIND = "knowledge"
JobKind = Literal["ingest", "faq_import", "reembed"]
ENDED = frozenset({"completed", "failed"})
_FIELDS = (
    "job_id",
    "namespace",
    "kind",
    "status",
    "document_id",
    "filename",
    "chunks_total",
    "chunks_processed",
    "embeddings_generated",
    "total_rows",
    "result",
    "error",
    "created_at",
    "started_at",
    "completed_at",
)
_COLUMNS = ", ".join(f"{f}::text AS {f}" if f == "job_id" else f for f in _FIELDS)
_K_COLUMNS = ", ".join(f"k.{f}::text AS {f}" if f == "job_id" else f"k.{f}" for f in _FIELDS)
_PROGRESS = frozenset({"chunks_total", "chunks_processed", "embeddings_generated", "total_rows"})


def lane(tenant_id: str, namespace: str) -> str:
    return f"kb:{tenant_id}:{namespace}"


class LeaseLost(Exception):
    """Another worker holds the job now (this one stalled past its lease): what this one did is rolled back."""


@dataclass(frozen=True)
class JobInput:
    """A claimed job with what it needs to run."""

    job_id: str
    tenant_id: str
    namespace: str
    kind: JobKind
    params: dict[str, Any]
    data: bytes


class JobProgress:
    """Handed to a job's work: reports progress, and ends the job in the transaction that stores its result."""

    def __init__(self, db: Database, job_id: str, lease: Lease) -> None:
        self.db = db
        self.job_id = job_id
        self.lease = lease
        self.completed = False

    async def update(self, **fields: int) -> None:
        assignments = ", ".join(f"{k} = %({k})s" for k in fields if k in _PROGRESS)
        if not assignments:
            return
        async with self.db.connection() as conn:
            await conn.execute(
                f"UPDATE kb_jobs SET {assignments} WHERE job_id = %(job_id)s AND EXISTS"
                " (SELECT 1 FROM queue_jobs WHERE job_id = %(job_id)s AND worker = %(worker)s)",
                {**fields, "job_id": self.job_id, "worker": self.lease.worker},
            )

    async def complete(self, conn: AsyncConnection[DictRow], result: dict[str, Any]) -> None:
        """Record the result in the caller's transaction (before it commits). Raises LeaseLost, rolling the
        caller's transaction back, if another worker holds the job now: its run is the one that counts."""
        if not await end_job(conn, self.job_id, self.lease, status="completed", result=result):
            raise LeaseLost(self.job_id)
        self.completed = True


async def end_job(
    conn: AsyncConnection[DictRow],
    job_id: str,
    lease: Lease,
    *,
    status: Literal["completed", "failed"],
    result: dict[str, Any] | None = None,
    error: str | None = None,
) -> bool:
    """End the queue job held by this worker, record the outcome and delete the input, in one statement.
    False (and nothing written) if the job is no longer this worker's."""
    finish, params = finish_sql(job_id, lease)
    cur = await conn.execute(
        f"WITH q AS ({finish}),"
        " k AS (UPDATE kb_jobs SET status = %s, result = %s, error = %s, completed_at = now()"
        " WHERE job_id = %s AND EXISTS (SELECT 1 FROM q)),"
        " i AS (DELETE FROM kb_job_inputs WHERE job_id = %s AND EXISTS (SELECT 1 FROM q))"
        " SELECT count(*) AS ended FROM q",
        [*params, status, Jsonb(result or {}), error, job_id, job_id],
    )
    row = await cur.fetchone()
    return bool(row and row["ended"])


class KnowledgeJobs:
    """The kb_jobs records: accept a job (record, input and queue job at once), read them, wait for one."""

    def __init__(self, db: Database, worker: Worker) -> None:
        self.db = db
        self.worker = worker

    async def submit(
        self,
        tenant_id: str,
        namespace: str,
        kind: JobKind,
        *,
        params: dict[str, Any],
        data: bytes = b"",
        document_id: str | None = None,
        filename: str | None = None,
        total_rows: int = 0,
        chunks_total: int = 0,
    ) -> dict[str, Any]:
        """Store the job with its input (durable from here on); this process runs it at once if it has room
        and the namespace has no other job, otherwise whichever process claims it first."""
        job_id = str(uuid.uuid4())
        new = NewJob(kind=KIND, tenant_id=tenant_id, lane=lane(tenant_id, namespace), job_id=job_id)
        claim = self.worker.lease if self.worker.has_room(KIND) else None
        record = [job_id, tenant_id, namespace, kind, document_id, filename, total_rows, chunks_total]
        for lease in (claim, None) if claim else (None,):
            job_sql, job_params = enqueue_sql(new, claim=lease)
            sql = (
                f"WITH job AS ({job_sql}),"
                " k AS (INSERT INTO kb_jobs (job_id, tenant_id, namespace, kind, status, document_id, filename,"
                " total_rows, chunks_total) SELECT %s, %s, %s, %s, 'queued', %s, %s, %s, %s FROM job RETURNING *),"
                " i AS (INSERT INTO kb_job_inputs (job_id, tenant_id, params, data)"
                " SELECT job_id, tenant_id, %s, %s FROM k)"
                f" SELECT {_K_COLUMNS}, job.lane, job.status AS queue_status, job.attempts, job.max_attempts,"
                f" job.worker, {WAKE_SQL} FROM k, job"
            )
            try:
                async with self.db.connection() as conn:
                    cur = await conn.execute(sql, [*job_params, *record, Jsonb(params), data])
                    row = await cur.fetchone()
            except UniqueViolation:
                continue  # another process took the lane in the same instant: queue behind it
            if row is None:  # pragma: no cover - INSERT … RETURNING always returns the row
                break
            view = {k: row[k] for k in _FIELDS}
            if row["queue_status"] == JobStatus.RUNNING and row["worker"] == self.worker.lease.worker:
                job = Job(
                    job_id=job_id,
                    tenant_id=tenant_id,
                    kind=KIND,
                    lane=row["lane"],
                    payload={},
                    status=JobStatus.RUNNING,
                    attempts=row["attempts"],
                    max_attempts=row["max_attempts"],
                    worker=row["worker"],
                    cancel=None,
                )
                self.worker.adopt(job)
            return view
        raise RuntimeError(f"could not queue knowledge job {job_id}")

    async def get(self, tenant_id: str, job_id: str) -> dict[str, Any]:
        try:
            uuid.UUID(job_id)
        except ValueError:
            raise NotFound(f"no job '{job_id}'") from None
        async with self.db.connection() as conn:
            cur = await conn.execute(
                f"SELECT {_COLUMNS} FROM kb_jobs WHERE tenant_id = %s AND job_id = %s", (tenant_id, job_id)
            )
            row = await cur.fetchone()
        if row is None:
            raise NotFound(f"no job '{job_id}'")
        return dict(row)

    async def list_jobs(
        self, tenant_id: str, *, namespace: str | None, status: str | None, kind: str | None, limit: int, offset: int
    ) -> list[dict[str, Any]]:
        async with self.db.connection() as conn:
            cur = await conn.execute(
                f"SELECT {_COLUMNS} FROM kb_jobs WHERE tenant_id = %(t)s"
                " AND (%(ns)s::text IS NULL OR namespace = %(ns)s) AND (%(st)s::text IS NULL OR status = %(st)s)"
                " AND (%(k)s::text IS NULL OR kind = %(k)s)"
                " ORDER BY created_at DESC LIMIT %(limit)s OFFSET %(offset)s",
                {"t": tenant_id, "ns": namespace, "st": status, "k": kind, "limit": limit, "offset": offset},
            )
            return [dict(r) for r in await cur.fetchall()]

    async def finished(self, tenant_id: str, job_id: str, *, poll_s: float = 0.2) -> dict[str, Any]:
        """Wait for the job to end, wherever it runs; its record."""
        while True:
            running_here = self.worker.running(job_id)
            if running_here is not None:
                await running_here.done.wait()
            job = await self.get(tenant_id, job_id)
            if job["status"] in ENDED:
                return job
            await asyncio.sleep(poll_s)

    # -- for the handler ---------------------------------------------------------------------------

    async def start(self, job_id: str, lease: Lease) -> JobInput | None:
        """Mark a job this worker holds processing; its input (None if its record is gone, or the job is no
        longer this worker's: a statement still in flight when the job was handed back changes nothing)."""
        async with self.db.connection() as conn:
            cur = await conn.execute(
                "WITH k AS (UPDATE kb_jobs SET status = 'processing', started_at = coalesce(started_at, now()),"
                " chunks_processed = 0, embeddings_generated = 0 WHERE job_id = %s AND EXISTS (SELECT 1 FROM"
                " queue_jobs q WHERE q.job_id = %s AND q.worker = %s AND q.status = 'running')"
                " RETURNING job_id, tenant_id::text, namespace, kind)"
                " SELECT k.job_id::text, k.tenant_id, k.namespace, k.kind, i.params, i.data"
                " FROM k LEFT JOIN kb_job_inputs i USING (job_id)",
                (job_id, job_id, lease.worker),
            )
            row = await cur.fetchone()
        if row is None:
            return None
        return JobInput(
            job_id=row["job_id"],
            tenant_id=row["tenant_id"],
            namespace=row["namespace"],
            kind=row["kind"],
            params=row["params"] or {},
            data=bytes(row["data"] or b""),
        )

    async def fail(self, job_id: str, lease: Lease, reason: str) -> bool:
        async with self.db.connection() as conn:
            return await end_job(conn, job_id, lease, status="failed", error=reason)

    async def requeued(self, job_id: str) -> None:
        """The job went back to the queue (its process drains): it waits for another worker."""
        async with self.db.connection() as conn:
            await conn.execute(
                "UPDATE kb_jobs SET status = 'queued' WHERE job_id = %s AND status <> ALL(%s)", (job_id, list(ENDED))
            )

    async def given_up(self, job_id: str, reason: str, lease: Lease) -> None:
        """The reaper gave the queue job up after its last attempt: record the failure and delete the job
        (held under `lease`) together."""
        async with self.db.connection() as conn, conn.transaction():
            if not await take_given_up(conn, job_id, lease):
                return  # another worker holds it now and records the failure
            await conn.execute(
                "UPDATE kb_jobs SET status = 'failed', error = %s, completed_at = now()"
                " WHERE job_id = %s AND status <> ALL(%s)",
                (reason, job_id, list(ENDED)),
            )
            await conn.execute("DELETE FROM kb_job_inputs WHERE job_id = %s", (job_id,))
