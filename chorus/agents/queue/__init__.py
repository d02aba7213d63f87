"""One Postgres job queue for every process: runs, knowledge jobs and later background work."""

from chorus.agents.queue.notifications import Notifications
from chorus.agents.queue.repository import CancelAction, Job, JobQueue, JobStatus, Lease, NewJob
from chorus.agents.queue.worker import JobContext, JobHandler, StopReason, Worker

__all__ = [
    "CancelAction",
    "Job",
    "JobContext",
    "JobHandler",
    "JobQueue",
    "JobStatus",
    "Lease",
    "NewJob",
    "Notifications",
    "StopReason",
    "Worker",
]
