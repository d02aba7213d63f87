"""A worker's presence lock: a process that died is found by the reapers of the others in seconds, not
when its 6 s leases run out; a live worker whose renewals are fresh is never reaped for a missing lock."""

from __future__ import annotations

import asyncio
import contextlib
import uuid

from chorus.agents.queue import JobQueue, Lease, NewJob, Notifications
from chorus.agents.storage.database import Database

KIND = "presence-test"


async def _running_job(queue: JobQueue, db: Database, worker: str, *, renewed_s_ago: float) -> str:
    job = await queue.enqueue(NewJob(kind=KIND, lane=f"lane-{uuid.uuid4()}"), claim=Lease(worker, 6))
    async with db.connection() as conn:  # as if its worker last renewed it `renewed_s_ago` seconds ago
        await conn.execute(
            "UPDATE queue_jobs SET lease_until = now() + make_interval(secs => %s) WHERE job_id = %s",
            (6 - renewed_s_ago, job.job_id),
        )
    return job.job_id


async def test_a_dead_workers_jobs_are_reaped_before_their_leases_run_out(db: Database) -> None:
    queue = JobQueue(db)
    alive, dead = f"alive-{uuid.uuid4().hex[:6]}", f"dead-{uuid.uuid4().hex[:6]}"
    notifications = Notifications(db.url)
    notifications.hold_presence(alive)
    listener = asyncio.create_task(notifications.run_forever())
    try:
        assert await notifications.wait_listening(10)
        stale_alive = await _running_job(queue, db, alive, renewed_s_ago=4)  # renewals late, but present
        stale_dead = await _running_job(queue, db, dead, renewed_s_ago=4)  # no presence: its process is gone
        fresh_dead = await _running_job(queue, db, dead, renewed_s_ago=0)  # just renewed: within the grace
        requeued, given_up = await queue.reap(Lease("reaper", 6), [KIND])
        reaped = {j.job_id for j in requeued}
        assert stale_dead in reaped, "a job of a worker without presence, not renewed for 4 s"
        assert stale_alive not in reaped and fresh_dead not in reaped
        assert not given_up
    finally:
        listener.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listener
        await notifications.close()
    # The listening session is gone (as when a process dies): its worker's jobs are reaped too.
    for _ in range(50):
        requeued, _ = await queue.reap(Lease("reaper", 6), [KIND])
        if stale_alive in {j.job_id for j in requeued}:
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError("the job of a worker whose session closed was not reaped")
    async with db.connection() as conn:
        await conn.execute("DELETE FROM queue_jobs WHERE kind = %s", (KIND,))
