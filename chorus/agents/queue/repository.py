"""The SQL of the job queue: enqueue, claim, renew, finish, hand back, reap, cancel.

Every statement is one round trip. A job row exists only while the job is queued or running; the
domain table (runs, kb_jobs) keeps what happened. The running job of a lane holds the lane: a unique
index allows one running job per lane, and only the oldest queued job of a lane may be claimed.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from psycopg import AsyncConnection
from psycopg.errors import UniqueViolation
from psycopg.rows import DictRow
from psycopg.types.json import Jsonb

from chorus.agents.queue.notifications import PRESENCE_LOCKS
from chorus.agents.storage.database import Database

WAKE_CHANNEL = "chorus_jobs"
CANCEL_CHANNEL = "chorus_cancel"
# A job is abandoned when its lease ran out, or when its worker's presence lock (held by the worker's
# listening session, see notifications.py) is gone and its lease was not renewed for PRESENCE_GRACE_S: a
# process that died is found in seconds, one whose listening connection merely blinked keeps renewing.
PRESENCE_GRACE_S = 3.0
_PRESENT = (
    "present AS (SELECT objid FROM pg_locks WHERE locktype = 'advisory' AND classid = %(ns)s AND objsubid = 2"
    " AND granted)"
)
_ABANDONED = (
    "status = 'running' AND (lease_until < now() OR (lease_until < now() + make_interval(secs => %(fresh)s)"
    " AND (hashtext(worker)::bigint & 4294967295)::oid NOT IN (SELECT objid FROM present)))"
)
_COLS = "job_id::text, tenant_id::text, kind, lane, payload, status, attempts, max_attempts, worker, cancel"
# The oldest queued job of its lane, if no job of the lane runs.
_CLAIMABLE = (
    "j.status = 'queued' AND j.run_after <= now()"
    " AND (j.lane IS NULL OR NOT EXISTS (SELECT 1 FROM queue_jobs o WHERE o.lane = j.lane"
    " AND (o.status = 'running' OR o.seq < j.seq)))"
)


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"


class CancelAction(StrEnum):
    INTERRUPT = "interrupt"
    ROLLBACK = "rollback"


@dataclass(frozen=True)
class Job:
    job_id: str
    tenant_id: str | None
    kind: str
    lane: str | None
    payload: dict[str, Any]
    status: JobStatus
    attempts: int
    max_attempts: int
    worker: str | None
    cancel: CancelAction | None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Job:
        return cls(
            job_id=row["job_id"],
            tenant_id=row["tenant_id"],
            kind=row["kind"],
            lane=row["lane"],
            payload=row["payload"] or {},
            status=JobStatus(row["status"]),
            attempts=row["attempts"],
            max_attempts=row["max_attempts"],
            worker=row["worker"],
            cancel=CancelAction(row["cancel"]) if row["cancel"] else None,
        )


@dataclass(frozen=True)
class NewJob:
    """A job to insert (see `enqueue_sql` for taking it at once)."""

    kind: str
    tenant_id: str | None = None
    lane: str | None = None
    payload: dict[str, Any] | None = None
    job_id: str | None = None
    max_attempts: int = 3
    after_s: float = 0.0  # not claimed before this many seconds from now (never claimed at once)


@dataclass(frozen=True)
class Lease:
    worker: str
    seconds: float


def enqueue_sql(job: NewJob, *, claim: Lease | None) -> tuple[str, list[Any]]:
    """An INSERT … RETURNING of the job, to use as a CTE named `job` (so a caller can insert its domain
    row in the same statement); `wake_sql` then wakes the workers if it was queued.

    With `claim`, the job is inserted running for that worker when nothing else is queued or running in
    its lane; otherwise queued.
    """
    job_id = job.job_id or str(uuid.uuid4())
    values = [job_id, job.tenant_id, job.kind, job.lane, Jsonb(job.payload or {}), job.max_attempts]
    insert = (
        "INSERT INTO queue_jobs (job_id, tenant_id, kind, lane, payload, max_attempts, status, worker, lease_until,"
        " attempts)"
    )
    if job.after_s > 0:
        sql = (
            f"{insert[:-1]}, run_after) VALUES (%s, %s, %s, %s, %s, %s, 'queued', NULL, NULL, 0,"
            f" now() + make_interval(secs => %s)) RETURNING {_COLS}"
        )
        return sql, [*values, job.after_s]
    if claim is None:
        return f"{insert} VALUES (%s, %s, %s, %s, %s, %s, 'queued', NULL, NULL, 0) RETURNING {_COLS}", values
    free = "NOT EXISTS (SELECT 1 FROM queue_jobs o WHERE o.lane = %s)" if job.lane else "true"
    sql = (
        f"{insert} SELECT %s, %s, %s, %s, %s, %s, CASE WHEN f.free THEN 'running' ELSE 'queued' END,"
        " CASE WHEN f.free THEN %s END, CASE WHEN f.free THEN now() + make_interval(secs => %s) END,"
        f" CASE WHEN f.free THEN 1 ELSE 0 END FROM (SELECT {free} AS free) f RETURNING {_COLS}"
    )
    return sql, [*values, claim.worker, claim.seconds, *([job.lane] if job.lane else [])]


def schedule_sql(job: NewJob, *, at_s: float) -> tuple[str, list[Any]]:
    """An INSERT of a job due `at_s` seconds from now that does nothing if a job of that id exists (a
    deterministic id makes scheduling the same occurrence twice harmless)."""
    sql = (
        "INSERT INTO queue_jobs (job_id, tenant_id, kind, lane, payload, max_attempts, status, attempts, run_after)"
        " VALUES (%s, %s, %s, %s, %s, %s, 'queued', 0, now() + make_interval(secs => %s))"
        " ON CONFLICT (job_id) DO NOTHING"
    )
    job_id = job.job_id or str(uuid.uuid4())
    return sql, [job_id, job.tenant_id, job.kind, job.lane, Jsonb(job.payload or {}), job.max_attempts, max(0.0, at_s)]


WAKE_SQL = f"CASE WHEN job.status = 'queued' THEN pg_notify('{WAKE_CHANNEL}', job.kind) END"


class JobQueue:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def enqueue(self, job: NewJob, *, claim: Lease | None = None) -> Job:
        """Insert a job (taking it at once for `claim` if its lane is free) and wake the workers."""
        for lease in (claim, None) if claim else (None,):
            sql, params = enqueue_sql(job, claim=lease)
            try:
                async with self.db.connection() as conn:
                    cur = await conn.execute(f"WITH job AS ({sql}) SELECT job.*, {WAKE_SQL} FROM job", params)
                    row = await cur.fetchone()
            except UniqueViolation:
                continue  # another process took the lane in the same instant: queue behind it
            if row is None:  # pragma: no cover - INSERT … RETURNING always returns the row
                break
            return Job.from_row(row)
        raise RuntimeError(f"could not enqueue job {job.job_id}")

    async def claim(self, *, kinds: list[str], lease: Lease, limit: int) -> list[Job]:
        """Take up to `limit` claimable jobs of these kinds for this worker."""
        if limit <= 0:
            return []
        claimed: list[Job] = []
        async with self.db.connection() as conn:
            for _ in range(limit):
                job = await self._claim_one(conn, kinds=kinds, lease=lease)
                if job is None:
                    break
                claimed.append(job)
        return claimed

    async def claim_lane(self, lane: str, *, lease: Lease) -> Job | None:
        """Take the next job of this lane, if it is claimable now."""
        async with self.db.connection() as conn:
            return await self._claim_one(conn, kinds=None, lease=lease, lane=lane)

    async def _claim_one(
        self, conn: AsyncConnection[DictRow], *, kinds: list[str] | None, lease: Lease, lane: str | None = None
    ) -> Job | None:
        where = _CLAIMABLE
        params: list[Any] = [lease.worker, lease.seconds]
        if kinds is not None:
            where += " AND j.kind = ANY(%s)"
            params.append(kinds)
        if lane is not None:
            where += " AND j.lane = %s"
            params.append(lane)
        try:
            cur = await conn.execute(
                "UPDATE queue_jobs SET status = 'running', worker = %s,"
                " lease_until = now() + make_interval(secs => %s), attempts = attempts + 1, updated_at = now()"
                " WHERE job_id = (SELECT j.job_id FROM queue_jobs j"
                f" WHERE {where} ORDER BY j.seq LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING {_COLS}",
                params,
            )
        except UniqueViolation:
            return None  # the lane was taken between our snapshot and the update
        row = await cur.fetchone()
        return Job.from_row(row) if row else None

    async def renew(self, lease: Lease, job_ids: list[str]) -> tuple[set[str], dict[str, CancelAction]]:
        """Extend this worker's leases; returns the jobs still ours and the cancels asked for."""
        if not job_ids:
            return set(), {}
        async with self.db.connection(upkeep=True) as conn:
            cur = await conn.execute(
                "UPDATE queue_jobs SET lease_until = now() + make_interval(secs => %s) WHERE worker = %s"
                " AND status = 'running' AND job_id = ANY(%s::uuid[]) RETURNING job_id::text, cancel",
                (lease.seconds, lease.worker, job_ids),
            )
            rows = await cur.fetchall()
        return {r["job_id"] for r in rows}, {r["job_id"]: CancelAction(r["cancel"]) for r in rows if r["cancel"]}

    async def hand_back(self, job_id: str, lease: Lease) -> None:
        """Put a running job back in the queue (draining at shutdown): another worker resumes it."""
        async with self.db.connection() as conn, conn.transaction():
            cur = await conn.execute(
                "UPDATE queue_jobs SET status = 'queued', worker = NULL, lease_until = NULL, attempts ="
                " greatest(attempts - 1, 0), updated_at = now() WHERE job_id = %s AND worker = %s RETURNING kind",
                (job_id, lease.worker),
            )
            row = await cur.fetchone()
            if row is not None:
                await notify(conn, WAKE_CHANNEL, row["kind"])

    async def put_back(self, job_id: str, lease: Lease, *, after_s: float) -> None:
        """Queue a running job again, to be claimed no sooner than `after_s` from now (the attempt counts). On
        the upkeep connections: this is what a job does when the others are all busy."""
        sql, params = requeue_sql(job_id, lease, after_s=after_s)
        async with self.db.connection(upkeep=True) as conn:
            await conn.execute(sql, params)

    async def finish(self, job_id: str, lease: Lease) -> bool:
        """End a job held by this worker whose domain row needs no update (e.g. it is gone)."""
        async with self.db.connection() as conn:
            cur = await conn.execute("DELETE FROM queue_jobs WHERE job_id = %s AND worker = %s", (job_id, lease.worker))
            return cur.rowcount > 0

    async def reap(self, lease: Lease, kinds: list[str]) -> tuple[list[Job], list[Job]]:
        """Jobs whose worker stopped renewing or died (its presence lock is gone and it has not renewed for
        PRESENCE_GRACE_S): re-queued while attempts remain, else given up.

        Returns (requeued, given_up). A given-up job of one of `kinds` (those the caller has a handler for) is
        taken under `lease` for its handler, which records
        the failure in its domain and deletes the job in one transaction (`take_given_up`); if that fails,
        the lease lapses and a later reap hands the job out again, so no failure goes unrecorded.
        """
        params = {
            "ns": PRESENCE_LOCKS,
            "fresh": max(0.0, lease.seconds - PRESENCE_GRACE_S),
            "me": lease.worker,
            "lease": lease.seconds,
            "kinds": kinds,
        }
        async with self.db.connection(upkeep=True) as conn, conn.transaction():
            cur = await conn.execute(
                f"WITH {_PRESENT} UPDATE queue_jobs SET status = 'queued', worker = NULL, lease_until = NULL,"
                f" updated_at = now() WHERE {_ABANDONED} AND attempts < max_attempts RETURNING {_COLS}",
                params,
            )
            requeued = [Job.from_row(r) for r in await cur.fetchall()]
            cur = await conn.execute(
                f"WITH {_PRESENT} UPDATE queue_jobs SET worker = %(me)s, lease_until = now() +"
                f" make_interval(secs => %(lease)s), updated_at = now() WHERE {_ABANDONED}"
                f" AND attempts >= max_attempts AND kind = ANY(%(kinds)s) RETURNING {_COLS}",
                params,
            )
            given_up = [Job.from_row(r) for r in await cur.fetchall()]
            if requeued:
                await notify(conn, WAKE_CHANNEL, "reaped")
        return requeued, given_up

    async def get(self, job_id: str) -> Job | None:
        async with self.db.connection() as conn:
            cur = await conn.execute(f"SELECT {_COLS} FROM queue_jobs WHERE job_id = %s", (job_id,))
            row = await cur.fetchone()
        return Job.from_row(row) if row else None

    async def lane_jobs(self, lane: str) -> list[Job]:
        async with self.db.connection() as conn:
            cur = await conn.execute(f"SELECT {_COLS} FROM queue_jobs WHERE lane = %s ORDER BY seq", (lane,))
            return [Job.from_row(r) for r in await cur.fetchall()]

    async def request_cancel(self, job_id: str, action: CancelAction) -> Job | None:
        """Ask the worker running the job to stop it; a queued job is removed at once.

        Returns the job as it was (None if it had already ended)."""
        async with self.db.connection() as conn, conn.transaction():
            cur = await conn.execute(
                f"DELETE FROM queue_jobs WHERE job_id = %s AND status = 'queued' RETURNING {_COLS}", (job_id,)
            )
            row = await cur.fetchone()
            if row is not None:
                return Job.from_row(row)
            cur = await conn.execute(
                f"UPDATE queue_jobs SET cancel = %s WHERE job_id = %s AND status = 'running' RETURNING {_COLS}",
                (action.value, job_id),
            )
            row = await cur.fetchone()
            if row is None:
                return None
            await notify(conn, CANCEL_CHANNEL, f"{job_id}:{action.value}")
            return Job.from_row(row)


async def notify(conn: AsyncConnection[DictRow], channel: str, payload: str) -> None:
    await conn.execute("SELECT pg_notify(%s, %s)", (channel, payload))


async def take_given_up(conn: AsyncConnection[DictRow], job_id: str, lease: Lease) -> bool:
    """Delete a given-up job held under `lease`, in the caller's transaction that records its failure;
    False if another worker holds it now (it records the failure instead)."""
    cur = await conn.execute("DELETE FROM queue_jobs WHERE job_id = %s AND worker = %s", (job_id, lease.worker))
    return cur.rowcount > 0


def finish_sql(job_id: str, lease: Lease) -> tuple[str, list[Any]]:
    """A DELETE of a finished job held by this worker, as a CTE body (so the domain row is ended in the
    same statement). It deletes nothing if the job was taken over by another worker (fencing)."""
    return (
        "DELETE FROM queue_jobs WHERE job_id = %s AND worker = %s RETURNING lane",
        [job_id, lease.worker],
    )


def requeue_sql(job_id: str, lease: Lease, *, after_s: float) -> tuple[str, list[Any]]:
    """An UPDATE … RETURNING job_id queueing a job held by this worker again, to be claimed no sooner than
    `after_s` from now (the attempt counts); as a CTE body, so the domain row records why in the same
    statement. It changes nothing if another worker holds the job now (fencing)."""
    return (
        "UPDATE queue_jobs SET status = 'queued', worker = NULL, lease_until = NULL, run_after = now() +"
        " make_interval(secs => %s), updated_at = now() WHERE job_id = %s AND worker = %s RETURNING job_id",
        [after_s, job_id, lease.worker],
    )
