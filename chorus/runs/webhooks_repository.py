"""SQL of run webhook deliveries: queued with the run's final status (`enqueue_delivery`, in the caller's
statement's transaction), then each attempt's outcome recorded in the statement that ends, or queues again,
the delivery's job (fenced by the worker's lease, like every job's end)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import DictRow
from psycopg.types.json import Jsonb

from chorus.agents.queue.repository import WAKE_SQL, Lease, NewJob, enqueue_sql, finish_sql, requeue_sql
from chorus.agents.storage.database import Database

WEBHOOK_KIND = "webhook"
MAX_ATTEMPTS = 5
RUN_COMPLETED = "run.completed"
_COLS = (
    "delivery_id::text, tenant_id::text, run_id::text, thread_id::text, event, url, status, attempts,"
    " last_status_code, last_error, next_attempt_at, created_at, updated_at, delivered_at"
)


@dataclass(frozen=True)
class Delivery:
    delivery_id: str
    tenant_id: str
    url: str
    event: str
    payload: dict[str, Any]
    status: str


def completion_payload(run: dict[str, Any], *, status: str, values: Any) -> dict[str, Any]:
    """What a run's webhook says (as the LangGraph Agent Server sends it): the run as it ended, the thread's
    values, and its error (null unless it failed). `webhook_sent_at` is added at each attempt."""
    return {**run, "status": status, "values": values, "error": run.get("error")}


async def enqueue_delivery(
    conn: AsyncConnection[DictRow], *, tenant_id: str, run_id: str, thread_id: str, url: str, payload: dict[str, Any]
) -> str:
    """Store a delivery and queue its job (its id is the delivery's), in the caller's transaction: the
    workers are woken when it commits. Returns the delivery id."""
    delivery_id = str(uuid.uuid4())
    job = NewJob(kind=WEBHOOK_KIND, tenant_id=tenant_id, job_id=delivery_id, max_attempts=MAX_ATTEMPTS)
    job_sql, job_params = enqueue_sql(job, claim=None)
    await conn.execute(
        f"WITH job AS ({job_sql}), delivery AS (INSERT INTO webhook_deliveries (delivery_id, tenant_id, run_id,"
        " thread_id, event, url, payload) SELECT job.job_id::uuid, %s, %s, %s, %s, %s, %s FROM job)"
        f" SELECT {WAKE_SQL} FROM job",
        [*job_params, tenant_id, run_id, thread_id, RUN_COMPLETED, url, Jsonb(payload)],
    )
    return delivery_id


class WebhookDeliveries:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def pending(self, delivery_id: str) -> Delivery | None:
        """The delivery to attempt; None if it is gone or has already ended."""
        async with self.db.connection() as conn:
            cur = await conn.execute(
                "SELECT delivery_id::text, tenant_id::text, url, event, payload, status FROM webhook_deliveries"
                " WHERE delivery_id = %s AND status = 'pending'",
                (delivery_id,),
            )
            row = await cur.fetchone()
        return Delivery(**row) if row else None

    async def ended(
        self,
        delivery_id: str,
        lease: Lease,
        *,
        delivered: bool,
        attempts: int,
        status_code: int | None,
        error: str | None,
    ) -> bool:
        """Record the last attempt's outcome and end the job, in one statement; False (nothing changed) if
        another worker holds the job now."""
        job_sql, job_params = finish_sql(delivery_id, lease)
        async with self.db.connection() as conn:
            cur = await conn.execute(
                f"WITH job AS ({job_sql}) UPDATE webhook_deliveries SET status = %s, attempts = %s,"
                " last_status_code = %s, last_error = %s, next_attempt_at = NULL, updated_at = now(),"
                " delivered_at = CASE WHEN %s THEN now() END WHERE delivery_id = %s AND EXISTS (SELECT 1 FROM job)",
                [
                    *job_params,
                    "delivered" if delivered else "failed",
                    attempts,
                    status_code,
                    error,
                    delivered,
                    delivery_id,
                ],
            )
            return cur.rowcount > 0

    async def retry_later(
        self, delivery_id: str, lease: Lease, *, attempts: int, status_code: int | None, error: str, after_s: float
    ) -> bool:
        """Record a failed attempt and queue the delivery again in `after_s`, in one statement."""
        job_sql, job_params = requeue_sql(delivery_id, lease, after_s=after_s)
        async with self.db.connection() as conn:
            cur = await conn.execute(
                f"WITH job AS ({job_sql}) UPDATE webhook_deliveries SET attempts = %s, last_status_code = %s,"
                " last_error = %s, next_attempt_at = now() + make_interval(secs => %s), updated_at = now()"
                " WHERE delivery_id = %s AND EXISTS (SELECT 1 FROM job)",
                [*job_params, attempts, status_code, error, after_s, delivery_id],
            )
            return cur.rowcount > 0

    async def given_up(self, delivery_id: str, lease: Lease, *, attempts: int, error: str) -> None:
        """A delivery whose worker stopped on its last attempt (the reaper gave it up): failed."""
        await self.ended(delivery_id, lease, delivered=False, attempts=attempts, status_code=None, error=error)

    async def search(
        self, tenant_id: str, *, run_id: str | None, status: str | None, limit: int, offset: int
    ) -> list[dict[str, Any]]:
        """The tenant's deliveries, newest first (never another tenant's)."""
        where, params = ["tenant_id = %s"], [tenant_id]
        if run_id is not None:
            where.append("run_id = %s")
            params.append(run_id)
        if status is not None:
            where.append("status = %s")
            params.append(status)
        async with self.db.connection() as conn:
            cur = await conn.execute(
                f"SELECT {_COLS} FROM webhook_deliveries WHERE {' AND '.join(where)}"
                " ORDER BY created_at DESC, delivery_id LIMIT %s OFFSET %s",
                [*params, limit, offset],
            )
            return await cur.fetchall()


# Finished deliveries (delivered or given up) are kept this long for GET /api/v1/webhooks/deliveries.
RETENTION_DAYS = 30


async def prune_deliveries(db: Database, *, older_than_days: int = RETENTION_DAYS) -> int:
    """Delete finished deliveries older than the retention (pending ones stay, however old); how many went."""
    async with db.connection() as conn:
        cur = await conn.execute(
            "DELETE FROM webhook_deliveries WHERE status <> 'pending'"
            " AND updated_at < now() - make_interval(days => %s)",
            (older_than_days,),
        )
        return cur.rowcount
