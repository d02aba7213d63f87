"""Knowledge jobs on the job queue: accepted by one process and run by another, run again after their
worker died, handed back by a process that stops, given up after their last attempt.

Each "process" is a KnowledgeBase with a queue worker of its own (as `chorus kb` has). They share a database
of their own, so no other worker of the test session can take their jobs.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from chorus.agents.knowledge.ingestion import IngestRequest
from chorus.agents.knowledge.jobs import KIND
from chorus.agents.knowledge.service import KnowledgeBase, standalone_knowledge_base
from chorus.agents.queue import JobQueue, Lease
from chorus.agents.settings import Settings
from chorus.agents.storage.database import Database, open_database
from tests.conftest import make_tenant

RETURNS = "# Returns\n\nYou can return items within 30 days.\n\n## Fees\n\nChange-of-mind returns cost $6.95.\n"
LIMIT = 2 * 1024 * 1024


@pytest.fixture(scope="module")
async def own_db(db: Database, database_url: str, settings: Settings) -> AsyncIterator[Database]:
    name = f"kb_jobs_{uuid.uuid4().hex[:8]}"
    async with db.connection() as conn:
        await conn.execute(f'CREATE DATABASE "{name}"')
    url = make_conninfo(**{**conninfo_to_dict(database_url), "dbname": name})
    database = await open_database(settings, url=url)
    yield database
    await database.close()
    async with db.connection() as conn:
        await conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


async def _accept(kb: KnowledgeBase, tenant_id: str, document_id: str = "returns") -> str:
    req = IngestRequest(namespace="docs", document_id=document_id, chunk_size=50)
    accepted = await kb.ingestion.submit_text(tenant_id, req, RETURNS)
    assert accepted["status"] == "queued"
    return str(accepted["job_id"])


async def _rows(db: Database, job_id: str) -> dict[str, Any]:
    async with db.connection() as conn:
        cur = await conn.execute(
            "SELECT (SELECT count(*) FROM queue_jobs WHERE job_id = %(j)s) AS queued,"
            " (SELECT data FROM kb_job_inputs WHERE job_id = %(j)s) AS input",
            {"j": job_id},
        )
        row = await cur.fetchone()
    assert row is not None
    return dict(row)


async def test_a_job_accepted_by_one_process_is_run_by_another(own_db: Database) -> None:
    tenant = await make_tenant(own_db)
    async with standalone_knowledge_base(own_db, max_file_bytes=LIMIT) as first:
        await first.jobs.worker.drain(0)  # it is shutting down: it still answers, but takes no work
        job_id = await _accept(first, tenant.tenant_id)
        await asyncio.sleep(1)
        assert (await first.jobs.get(tenant.tenant_id, job_id))["status"] == "queued"  # no process runs it yet
        stored = await _rows(own_db, job_id)
        assert stored["queued"] == 1 and bytes(stored["input"]) == RETURNS.encode()  # durable once accepted

    async with standalone_knowledge_base(own_db, max_file_bytes=LIMIT) as second:
        done = await asyncio.wait_for(second.jobs.finished(tenant.tenant_id, job_id), 60)
        assert done["status"] == "completed", done
        assert done["result"] == {"document_id": "returns", "title": "Returns", "chunks": 2, "version": 1}
        found = await second.search(tenant.tenant_id, "docs", "how much does sending it back cost", top_k=1)
        assert found["results"][0]["citation"] == "Returns, lines 5-7"
    assert await _rows(own_db, job_id) == {"queued": 0, "input": None}  # the input goes when the job ends


async def test_a_job_whose_worker_died_is_run_again_once(own_db: Database) -> None:
    tenant = await make_tenant(own_db)
    async with standalone_knowledge_base(own_db, max_file_bytes=LIMIT) as first:
        await first.jobs.worker.drain(0)
        job_id = await _accept(first, tenant.tenant_id)
    # A worker claims it, starts it, and dies: its lease is never renewed.
    dead = Lease(worker="dead-process", seconds=0.5)
    claimed = await JobQueue(own_db).claim(kinds=[KIND], lease=dead, limit=1)
    assert [j.job_id for j in claimed] == [job_id]
    async with own_db.connection() as conn:
        await conn.execute("UPDATE kb_jobs SET status = 'processing', chunks_total = 2 WHERE job_id = %s", (job_id,))

    async with standalone_knowledge_base(own_db, max_file_bytes=LIMIT) as second:
        done = await asyncio.wait_for(second.jobs.finished(tenant.tenant_id, job_id), 60)  # reaped within ~10 s
        assert done["status"] == "completed" and done["result"]["version"] == 1, done
        # The dead worker, waking up late, can no longer write an outcome.
        assert not await second.jobs.fail(job_id, dead, "too late")
        assert (await second.jobs.get(tenant.tenant_id, job_id))["status"] == "completed"
        document = await second.repo.get_document(tenant.tenant_id, "docs", "returns")
        assert document["version"] == 1 and len(document["chunks"]) == 2


async def test_a_job_handed_back_by_a_stopping_process_is_finished_by_another(own_db: Database) -> None:
    tenant = await make_tenant(own_db)
    async with standalone_knowledge_base(own_db, max_file_bytes=LIMIT) as first:
        req = IngestRequest(namespace="docs", document_id="long", chunk_size=20)
        long_text = "\n\n".join(f"Rule {i}: parcels wait {i} days at the locker." for i in range(60))
        accepted = await first.ingestion.submit_text(tenant.tenant_id, req, long_text)
        job_id = str(accepted["job_id"])
        assert first.jobs.worker.running(job_id) is not None  # taken at once by the process that accepted it
    # `first` drained with no grace: the job went back to the queue, nothing of it stored.
    assert (await first.jobs.get(tenant.tenant_id, job_id))["status"] == "queued"
    assert (await _rows(own_db, job_id))["queued"] == 1
    async with standalone_knowledge_base(own_db, max_file_bytes=LIMIT) as second:
        done = await asyncio.wait_for(second.jobs.finished(tenant.tenant_id, job_id), 120)
    assert done["status"] == "completed" and done["result"]["version"] == 1, done


async def test_a_job_that_outlives_every_attempt_fails_with_the_reason(own_db: Database) -> None:
    tenant = await make_tenant(own_db)
    async with standalone_knowledge_base(own_db, max_file_bytes=LIMIT) as first:
        await first.jobs.worker.drain(0)
        job_id = await _accept(first, tenant.tenant_id)
    async with own_db.connection() as conn:  # as the third process to die while running it would leave it
        await conn.execute(
            "UPDATE queue_jobs SET status = 'running', worker = 'dead-process', attempts = max_attempts,"
            " lease_until = now() - interval '1 second' WHERE job_id = %s",
            (job_id,),
        )
    async with standalone_knowledge_base(own_db, max_file_bytes=LIMIT) as second:
        for _ in range(100):
            job = await second.jobs.get(tenant.tenant_id, job_id)
            if job["status"] == "failed":
                break
            await asyncio.sleep(0.1)
    assert job["status"] == "failed" and "stopped 3 time(s)" in job["error"] and "submit it again" in job["error"]
    assert await _rows(own_db, job_id) == {"queued": 0, "input": None}


async def test_a_given_up_job_whose_failure_was_not_recorded_is_given_up_again(own_db: Database) -> None:
    """The reaper used to delete a given-up job, then record its failure in a second transaction: a
    process dying between the two left the job `processing` for ever. Now the failure and the deletion
    are one transaction, and a job whose recorder died is handed out again once its lease lapses."""
    tenant = await make_tenant(own_db)
    async with standalone_knowledge_base(own_db, max_file_bytes=LIMIT) as kb:
        await kb.jobs.worker.drain(0)  # no reaper of its own: this test reaps by hand
        job_id = await _accept(kb, tenant.tenant_id)
        async with own_db.connection() as conn:
            await conn.execute(
                "UPDATE queue_jobs SET status = 'running', worker = 'dead-process', attempts = max_attempts,"
                " lease_until = now() - interval '1 second' WHERE job_id = %s",
                (job_id,),
            )
        queue = JobQueue(own_db)
        recorder = Lease(worker="recorder-that-dies", seconds=0.3)
        _requeued, given_up = await queue.reap(recorder, [KIND])
        assert [j.job_id for j in given_up] == [job_id]  # ... and the recorder dies before recording it
        assert (await kb.jobs.get(tenant.tenant_id, job_id))["status"] != "failed"
        await asyncio.sleep(0.5)
        survivor = Lease(worker="survivor", seconds=5)
        _requeued, again = await queue.reap(survivor, [KIND])
        assert [j.job_id for j in again] == [job_id]
        await kb.jobs.given_up(job_id, "stopped 3 time(s); submit it again", recorder)  # too late: not its own
        assert (await _rows(own_db, job_id))["queued"] == 1
        await kb.jobs.given_up(job_id, "stopped 3 time(s); submit it again", survivor)
        job = await kb.jobs.get(tenant.tenant_id, job_id)
    assert job["status"] == "failed" and "submit it again" in job["error"], job
    assert await _rows(own_db, job_id) == {"queued": 0, "input": None}
