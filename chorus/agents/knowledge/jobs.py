"""Background jobs (ingestion, FAQ import, re-embed): rows in kb_jobs, run by this process.

A job is queued when the request is accepted (202), processed with at most `concurrency` jobs at a time
per process (embedding is CPU-bound), and ends completed or failed with its reason. A running job's
heartbeat is renewed every 20 s; a job whose heartbeat is older than 2 minutes belonged to a process
that died and is marked failed, so no job stays "processing" forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from psycopg.types.json import Jsonb

from chorus.agents.errors import ChorusError, NotFound
from chorus.agents.storage.database import Database

log = logging.getLogger(__name__)
HEARTBEAT_S = 20.0
STALE_AFTER_S = 120.0
_COLUMNS = (
    "job_id::text, namespace, kind, status, document_id, filename, chunks_total, chunks_processed,"
    " embeddings_generated, total_rows, result, error, created_at, started_at, completed_at"
)

Work = Callable[["JobProgress"], Awaitable[dict[str, Any]]]


class JobProgress:
    """Handed to a job's work: report totals and progress as it goes."""

    def __init__(self, db: Database, job_id: str) -> None:
        self.db = db
        self.job_id = job_id

    async def update(self, **fields: int) -> None:
        allowed = {"chunks_total", "chunks_processed", "embeddings_generated", "total_rows"}
        assignments = ", ".join(f"{k} = %({k})s" for k in fields if k in allowed)
        if not assignments:
            return
        async with self.db.connection() as conn:
            await conn.execute(
                f"UPDATE kb_jobs SET {assignments}, heartbeat_at = now() WHERE job_id = %(job_id)s",
                {**fields, "job_id": self.job_id},
            )


class JobRunner:
    def __init__(self, db: Database, *, concurrency: int = 1) -> None:
        self.db = db
        self._slots = asyncio.Semaphore(concurrency)
        self._tasks: dict[str, asyncio.Task[None]] = {}

    async def submit(
        self,
        tenant_id: str,
        namespace: str,
        kind: str,
        work: Work,
        *,
        document_id: str | None = None,
        filename: str | None = None,
        total_rows: int = 0,
    ) -> dict[str, Any]:
        job_id = str(uuid.uuid4())
        async with self.db.connection() as conn:
            cur = await conn.execute(
                "INSERT INTO kb_jobs (job_id, tenant_id, namespace, kind, status, document_id, filename, total_rows)"
                f" VALUES (%s, %s, %s, %s, 'queued', %s, %s, %s) RETURNING {_COLUMNS}",
                (job_id, tenant_id, namespace, kind, document_id, filename, total_rows),
            )
            row = await cur.fetchone()
        assert row is not None
        self._tasks[job_id] = asyncio.create_task(self._run(job_id, work), name=f"kb-job-{job_id}")
        return dict(row)

    async def _run(self, job_id: str, work: Work) -> None:
        try:
            async with self._slots:
                await self._set(
                    job_id,
                    "UPDATE kb_jobs SET status = 'processing', started_at = now(),"
                    " heartbeat_at = now() WHERE job_id = %s",
                )
                try:
                    result = await work(JobProgress(self.db, job_id))
                except ChorusError as exc:
                    await self._fail(job_id, exc.detail)
                except asyncio.CancelledError:
                    await asyncio.shield(
                        self._fail(job_id, "the server stopped before the job finished; submit it again")
                    )
                    raise
                except Exception as exc:
                    log.exception("knowledge job failed", extra={"job_id": job_id})
                    await self._fail(job_id, f"unexpected error: {type(exc).__name__}: {exc}")
                else:
                    async with self.db.connection() as conn:
                        await conn.execute(
                            "UPDATE kb_jobs SET status = 'completed', completed_at = now(), result = %s,"
                            " heartbeat_at = now() WHERE job_id = %s",
                            (Jsonb(result), job_id),
                        )
        finally:
            self._tasks.pop(job_id, None)

    async def _set(self, job_id: str, sql: str) -> None:
        async with self.db.connection() as conn:
            await conn.execute(sql, (job_id,))

    async def _fail(self, job_id: str, reason: str) -> None:
        async with self.db.connection() as conn:
            await conn.execute(
                "UPDATE kb_jobs SET status = 'failed', error = %s, completed_at = now() WHERE job_id = %s",
                (reason, job_id),
            )

    async def wait(self, job_id: str) -> None:
        """Until the job ends (if this process runs it)."""
        task = self._tasks.get(job_id)
        if task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(task)

    async def finished(self, tenant_id: str, job_id: str) -> dict[str, Any]:
        """Wait for a job this process runs, then return its row."""
        await self.wait(job_id)
        return await self.get(tenant_id, job_id)

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

    async def heartbeat_forever(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_S)
            try:
                if self._tasks:
                    async with self.db.connection() as conn:
                        await conn.execute(
                            "UPDATE kb_jobs SET heartbeat_at = now() WHERE job_id = ANY(%s::uuid[])",
                            (list(self._tasks),),
                        )
                await self.fail_stale()
            except Exception:
                log.exception("knowledge job heartbeat failed")

    async def fail_stale(self) -> int:
        """Fail jobs whose process stopped renewing them."""
        async with self.db.connection() as conn:
            cur = await conn.execute(
                "UPDATE kb_jobs SET status = 'failed', completed_at = now(),"
                " error = 'the server running this job stopped before it finished; submit it again'"
                " WHERE status IN ('queued', 'processing') AND heartbeat_at < now() - make_interval(secs => %s)"
                " AND NOT (job_id = ANY(%s::uuid[]))",
                (STALE_AFTER_S, list(self._tasks)),
            )
            return cur.rowcount

    async def shutdown(self) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
