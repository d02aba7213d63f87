"""The queue's handler for knowledge jobs (kind `knowledge`): runs an ingestion, FAQ import or re-embed from
its stored input in whichever process claimed it, and ends it (see jobs.py for the guarantees).

How a job stops early depends on why: a draining process hands it back to the queue (another process runs
it again from its input), a lost lease leaves it to the worker that took it over, and a database outage
leaves it running until its lease runs out, when it is claimed again (up to 3 attempts).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import psycopg
import psycopg_pool

from chorus.agents.errors import ChorusError, DatabaseUnavailable, ServerBusy
from chorus.agents.knowledge.jobs import JobInput, JobKind, JobProgress, KnowledgeJobs, LeaseLost
from chorus.agents.queue import Job, JobContext, JobQueue, Lease, StopReason

log = logging.getLogger(__name__)
Work = Callable[[JobInput, JobProgress], Awaitable[dict[str, Any]]]


class KnowledgeJobHandler:
    def __init__(self, *, jobs: KnowledgeJobs, queue: JobQueue, work: Mapping[JobKind, Work]) -> None:
        self.jobs = jobs
        self.queue = queue
        self.work = work

    async def run(self, job: Job, ctx: JobContext) -> None:
        progress = JobProgress(self.jobs.db, job.job_id, ctx.lease)
        try:
            started = await self.jobs.start(job.job_id, ctx.lease)
            if started is None:  # its record is gone (the tenant was deleted), or the job is no longer ours
                await self.queue.finish(job.job_id, ctx.lease)
                ctx.finished = True
                return
            result = await self._work(started, progress)
            if not progress.completed:
                async with self.jobs.db.connection() as conn, conn.transaction():
                    await progress.complete(conn, result)
            ctx.finished = True
        except asyncio.CancelledError:
            await self._stopped(job, ctx)
        except LeaseLost:
            ctx.finished = True
            log.warning("another worker took this knowledge job over; its outcome is theirs")
        except (psycopg.OperationalError, psycopg_pool.PoolTimeout, DatabaseUnavailable, ServerBusy) as exc:
            # The database is unreachable or every connection is busy: the outcome cannot be written. The
            # lease runs out and the job is claimed again (once the database is back).
            log.warning("knowledge job interrupted by a database fault: %s", type(exc).__name__)
        except ChorusError as exc:
            await self._fail(job, ctx, exc.detail)
        except Exception as exc:
            log.exception("knowledge job failed", extra={"job_id": job.job_id})
            await self._fail(job, ctx, f"unexpected error: {type(exc).__name__}: {exc}")

    async def _work(self, started: JobInput, progress: JobProgress) -> dict[str, Any]:
        work = self.work.get(started.kind)
        if work is None:
            raise ChorusError(f"unknown knowledge job kind '{started.kind}'")
        return await work(started, progress)

    async def _fail(self, job: Job, ctx: JobContext, reason: str) -> None:
        if not await self.jobs.fail(job.job_id, ctx.lease, reason):
            log.warning("another worker took this knowledge job over; its outcome is theirs")
        ctx.finished = True

    async def _stopped(self, job: Job, ctx: JobContext) -> None:
        reason = ctx.stop_reason or StopReason.HAND_BACK
        if reason == StopReason.HAND_BACK:
            try:
                await self.queue.hand_back(job.job_id, ctx.lease)
                await self.jobs.requeued(job.job_id)
            except Exception:
                log.exception("could not hand a knowledge job back; its lease will run out and it will run again")
        elif reason != StopReason.LOST:  # a cancel: no API asks for one, but say what happened if it comes
            await self._fail(job, ctx, "the job was cancelled")
        ctx.finished = True

    async def given_up(self, job: Job, lease: Lease) -> None:
        await self.jobs.given_up(
            job.job_id,
            f"the server process running this job stopped {job.attempts} time(s) before it finished; "
            "nothing was written; submit it again",
            lease,
        )
