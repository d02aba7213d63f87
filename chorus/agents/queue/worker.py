"""The worker of one process: claims jobs, runs them, renews their leases, reaps dead workers' jobs,
acts on cancels from any process, and drains at shutdown.

Timing: leases last `LEASE_S` and are renewed every `RENEW_S`; every process reaps abandoned jobs every
`REAP_S`: a job of a process that died is running again (or given up) within about 3-5 s when Postgres saw
the process go (its presence lock, see repository.PRESENCE_GRACE_S), within about 8 s otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from chorus.agents.queue.notifications import Notifications
from chorus.agents.queue.repository import CANCEL_CHANNEL, WAKE_CHANNEL, CancelAction, Job, JobQueue, Lease

log = logging.getLogger(__name__)
# A lease outlives three renewal periods (two missed renewals are survived); a process that died is found
# within LEASE_S + REAP_S: about 6-8 s.
LEASE_S = 6.0
RENEW_S = 1.5
REAP_S = 1.5
POLL_S = 5.0  # a claim attempt even without a wake-up (a notification lost while reconnecting)


class StopReason(StrEnum):
    """Why the worker stopped a job's task."""

    INTERRUPT = "interrupt"  # a user cancel: keep what it checkpointed
    ROLLBACK = "rollback"  # a user cancel: erase the run
    HAND_BACK = "hand_back"  # the process drains: put the job back for another worker
    LOST = "lost"  # the lease was taken over by another worker: touch nothing


class JobHandler(Protocol):
    """What a kind of job does. `run` ends its job itself (deleting the queue row in the statement that
    records the outcome, see repository.finish_sql); `given_up` records the failure of a job the reaper
    gave up after its last attempt, deleting the job (`take_given_up`) in the same transaction."""

    async def run(self, job: Job, ctx: JobContext) -> None: ...

    async def given_up(self, job: Job, lease: Lease) -> None: ...


@dataclass
class JobContext:
    job: Job
    lease: Lease
    stop_reason: StopReason | None = None
    # Set by the handler once its outcome (and the end of the job) is committed: nothing left to stop.
    finished: bool = False
    # Whether its task has begun: a task cancelled before that never runs its handler, which then could not
    # record what the stop means (hand the job back), so a stop that early waits for the task to begin.
    started: bool = False
    task: asyncio.Task[None] | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class _Kind:
    handler: JobHandler
    slots: int


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Worker:
    def __init__(self, queue: JobQueue, notifications: Notifications, *, worker: str | None = None) -> None:
        self.queue = queue
        self.notifications = notifications
        self.lease = Lease(worker=worker or worker_id(), seconds=LEASE_S)
        self._kinds: dict[str, _Kind] = {}
        self._running: dict[str, JobContext] = {}
        self._wake = asyncio.Event()
        self._draining = False
        self._tasks: list[asyncio.Task[None]] = []
        self.on_lane_free: list[Callable[[str], Awaitable[None]]] = []
        notifications.hold_presence(self.lease.worker)  # other processes' reapers see at once if this one dies
        notifications.on(WAKE_CHANNEL, lambda _payload: self._wake.set())
        notifications.on(CANCEL_CHANNEL, self._on_cancel_note)
        notifications.on_reconnect(self._wake.set)

    def register(self, kind: str, handler: JobHandler, *, concurrency: int) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency of job kind '{kind}' must be at least 1")
        self._kinds[kind] = _Kind(handler, concurrency)

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        self._wake.set()  # claim what is already queued at once
        self._tasks = [
            asyncio.create_task(self._claim_forever(), name="queue-claim"),
            asyncio.create_task(self._renew_forever(), name="queue-renew"),
            asyncio.create_task(self._reap_forever(), name="queue-reap"),
        ]

    async def drain(self, grace_s: float) -> None:
        """Stop taking work; let running jobs finish within `grace_s`, then hand the rest back."""
        self._draining = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        pending = [ctx.done for ctx in self._running.values()]
        if pending:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(grace_s):
                    await asyncio.gather(*(d.wait() for d in pending))
        left = list(self._running.values())
        for ctx in left:
            self._stop(ctx, StopReason.HAND_BACK)
        for ctx in left:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(5):
                    await ctx.done.wait()

    def wake_after(self, seconds: float) -> None:
        """Look for claimable jobs again in `seconds` (a job queued to be retried then), not only at the next
        poll."""
        asyncio.get_running_loop().call_later(max(0.0, seconds), self._wake.set)

    # -- running jobs ----------------------------------------------------------------------------

    def running(self, job_id: str) -> JobContext | None:
        return self._running.get(job_id)

    def busy(self, kind: str) -> int:
        return sum(1 for c in self._running.values() if c.job.kind == kind)

    def has_room(self, kind: str) -> bool:
        spec = self._kinds.get(kind)
        return spec is not None and not self._draining and self.busy(kind) < spec.slots

    def adopt(self, job: Job) -> JobContext:
        """Run a job this worker already holds (claimed when it was enqueued)."""
        if job.worker != self.lease.worker:
            raise ValueError(f"job {job.job_id} is held by {job.worker}, not by this worker")
        earlier = self._running.get(job.job_id)
        if earlier is not None:
            # Reaped (its renewals came late) and claimed again by this same worker: the earlier task must
            # not go on beside the new one.
            self._stop(earlier, StopReason.LOST)
        ctx = JobContext(job=job, lease=self.lease)
        self._running[job.job_id] = ctx
        ctx.task = asyncio.create_task(self._run(ctx), name=f"job-{job.kind}-{job.job_id}")
        return ctx

    async def _run(self, ctx: JobContext) -> None:
        job = ctx.job
        ctx.started = True
        if ctx.stop_reason is not None and ctx.task is not None:
            ctx.task.cancel()  # stopped before it began: the handler sees it at its first await
        try:
            await self._kinds[job.kind].handler.run(job, ctx)
        except asyncio.CancelledError:
            pass  # the handler has recorded what the stop means for its domain
        except Exception:
            log.exception("job failed", extra={"job_id": job.job_id, "kind": job.kind})
        finally:
            if self._running.get(job.job_id) is ctx:  # not a later claim of the same job (after a lost lease)
                del self._running[job.job_id]
            ctx.done.set()
            self._wake.set()
            if job.lane and not self._draining and ctx.stop_reason is None:
                for callback in self.on_lane_free:
                    with contextlib.suppress(Exception):
                        await callback(job.lane)

    def _stop(self, ctx: JobContext, reason: StopReason) -> None:
        if ctx.stop_reason is not None:
            # Already stopping. The renewal repeats a cancel every few seconds until the job ends; a second
            # task.cancel() would interrupt the handler while it records the first stop, and its run would
            # never end (its joiners waiting forever).
            return
        ctx.stop_reason = reason
        if ctx.started and ctx.task is not None and not ctx.task.done():
            ctx.task.cancel()

    def cancel_local(self, job_id: str, action: CancelAction) -> bool:
        ctx = self._running.get(job_id)
        if ctx is None:
            return False
        self._stop(ctx, StopReason(action.value))
        return True

    def _on_cancel_note(self, payload: str) -> None:
        job_id, _, action = payload.partition(":")
        with contextlib.suppress(ValueError):
            self.cancel_local(job_id, CancelAction(action))

    # -- loops -----------------------------------------------------------------------------------

    async def claim_lane(self, lane: str) -> None:
        """After a lane's job ended here: take its next job at once if this worker has room."""
        job = await self.queue.claim_lane(lane, lease=self.lease)
        if job is None:
            return
        if job.kind in self._kinds and self.has_room(job.kind):
            self.adopt(job)
        else:
            await self.queue.hand_back(job.job_id, self.lease)

    async def _claim_forever(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(POLL_S):
                    await self._wake.wait()
            self._wake.clear()
            for kind, spec in self._kinds.items():
                room = spec.slots - self.busy(kind)
                try:
                    jobs = await self.queue.claim(kinds=[kind], lease=self.lease, limit=min(room, 16))
                except Exception as exc:
                    log.warning("could not claim jobs: %s", type(exc).__name__)
                    await asyncio.sleep(1)
                    continue
                for job in jobs:
                    self.adopt(job)
                if len(jobs) == min(room, 16) and room > 0:
                    self._wake.set()  # there may be more

    async def _renew_forever(self) -> None:
        while True:
            await asyncio.sleep(RENEW_S)
            ids = list(self._running)
            try:
                ours, cancels = await self.queue.renew(self.lease, ids)
            except Exception as exc:
                log.warning("could not renew job leases: %s", type(exc).__name__)
                continue
            for job_id in ids:
                ctx = self._running.get(job_id)
                if ctx is None or ctx.finished:
                    continue
                if job_id not in ours:
                    log.warning("lost the lease of a job; stopping it here", extra={"job_id": job_id})
                    self._stop(ctx, StopReason.LOST)
                elif job_id in cancels:
                    self._stop(ctx, StopReason(cancels[job_id].value))

    async def _reap_forever(self) -> None:
        while True:
            await asyncio.sleep(REAP_S * (0.75 + random.random() / 2))
            try:
                requeued, given_up = await self.queue.reap(self.lease, list(self._kinds))
            except Exception as exc:
                log.warning("could not reap expired jobs: %s", type(exc).__name__)
                continue
            for job in requeued:
                log.warning(
                    "a worker stopped renewing a job; it is queued again",
                    extra={"job_id": job.job_id, "kind": job.kind, "worker": job.worker},
                )
            for job in given_up:
                spec = self._kinds.get(job.kind)
                log.error("a job failed on every attempt; giving up", extra={"job_id": job.job_id, "kind": job.kind})
                if spec is not None:
                    try:
                        await spec.handler.given_up(job, self.lease)
                    except Exception:
                        log.exception("could not record a given-up job", extra={"job_id": job.job_id})
            if requeued:
                self._wake.set()
