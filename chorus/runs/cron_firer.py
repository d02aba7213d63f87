"""The queue's handler for jobs of kind `cron`: one occurrence of one cron. Whichever worker claims the job
creates the occurrence's run, then, in one transaction, ends the job and queues the next occurrence. The
run's id (and a stateless cron's thread id) are derived from the occurrence, so a worker that dies in
between and the one that takes the job over create it once."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from chorus.agents.errors import AlreadyExists, ChorusError
from chorus.agents.queue import Job, JobContext, Lease
from chorus.agents.queue.repository import take_given_up
from chorus.agents.storage.database import Database
from chorus.runs.cron_schedule import occurrence_id
from chorus.runs.crons_repository import CronRepository, schedule
from chorus.runs.engine import RunEngine
from chorus.runs.schemas import RunCreate
from chorus.runs.threads_repository import ThreadRepository

log = logging.getLogger(__name__)


class CronFirer:
    def __init__(self, *, db: Database, crons: CronRepository, engine: RunEngine, threads: ThreadRepository) -> None:
        self.db = db
        self.crons = crons
        self.engine = engine
        self.threads = threads

    async def run(self, job: Job, ctx: JobContext) -> None:
        cron_id, at = str(job.payload["cron_id"]), datetime.fromisoformat(str(job.payload["at"]))
        cron = await self.crons.for_firing(cron_id)
        if cron is not None and cron["enabled"] and cron["next_run_date"] == at:
            await self._create_run(cron, at)
        async with self.db.connection() as conn, conn.transaction():
            if not await take_given_up(conn, job.job_id, ctx.lease):
                ctx.finished = True
                return  # another worker holds it now
            cur = await conn.execute("SELECT enabled FROM crons WHERE cron_id = %s FOR UPDATE", (cron_id,))
            if cron is not None and await cur.fetchone() is not None and cron["next_run_date"] == at:
                await schedule(conn, cron, after=at)
        ctx.finished = True

    async def _create_run(self, cron: dict[str, Any], at: datetime) -> None:
        tenant_id, cron_id = cron["tenant_id"], cron["cron_id"]
        try:
            req = RunCreate.model_validate({**cron["payload"], "assistant_id": cron["assistant_id"]})
            thread_id = cron["thread_id"]
            if thread_id is None:
                thread = await self.threads.create(
                    tenant_id,
                    thread_id=occurrence_id(cron_id, at, "thread"),
                    metadata={"cron_id": cron_id},
                    if_exists="do_nothing",
                )
                thread_id = str(thread["thread_id"])
            await self.engine.submit(
                tenant_id,
                thread_id,
                req,
                run_id=occurrence_id(cron_id, at, "run"),
                delete_thread_when_done=cron["thread_id"] is None and cron["on_run_completed"] == "delete",
            )
        except AlreadyExists:
            pass  # created by an earlier attempt at this occurrence
        except ChorusError as exc:  # e.g. its assistant was deleted, its thread is busy and rejects: skipped
            log.warning("a cron's occurrence made no run: %s", exc.detail, extra={"cron_id": cron_id})

    async def given_up(self, job: Job, lease: Lease) -> None:
        """An occurrence that failed on every attempt is skipped; the cron goes on with the next one."""
        cron = await self.crons.for_firing(str(job.payload["cron_id"]))
        async with self.db.connection() as conn, conn.transaction():
            if await take_given_up(conn, job.job_id, lease) and cron is not None:
                await schedule(conn, cron, after=datetime.fromisoformat(str(job.payload["at"])))
