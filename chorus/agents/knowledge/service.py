"""KnowledgeBase: the one object the API, the CLI and the bot tools use for documents, search and FAQs."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from chorus.agents.knowledge.faq import FaqService
from chorus.agents.knowledge.faq_import import run_import
from chorus.agents.knowledge.ingestion import Ingestion
from chorus.agents.knowledge.job_handlers import KnowledgeJobHandler
from chorus.agents.knowledge.jobs import KIND, JobInput, JobProgress, KnowledgeJobs
from chorus.agents.knowledge.reembed import reembed_namespace
from chorus.agents.knowledge.repository import KnowledgeRepository
from chorus.agents.knowledge.search import Filters, hybrid_search
from chorus.agents.queue import JobQueue, Notifications, Worker
from chorus.agents.storage.database import Database


class KnowledgeBase:
    """Its jobs run on `worker` (registered here for the `knowledge` kind, `job_concurrency` at a time)."""

    def __init__(self, db: Database, *, max_file_bytes: int, worker: Worker, job_concurrency: int = 1) -> None:
        self.db = db
        self.repo = KnowledgeRepository(db)
        self.jobs = KnowledgeJobs(db, worker)
        self.ingestion = Ingestion(self.repo, self.jobs, max_file_bytes=max_file_bytes)
        self.faqs = FaqService(db, self.repo)
        handler = KnowledgeJobHandler(
            jobs=self.jobs,
            queue=worker.queue,
            work={"ingest": self.ingestion.run, "faq_import": self._run_import, "reembed": self._run_reembed},
        )
        worker.register(KIND, handler, concurrency=job_concurrency)

    async def search(
        self,
        tenant_id: str,
        namespace: str,
        query: str,
        *,
        top_k: int = 5,
        filters: Filters | None = None,
        min_score: float = 0.0,
        min_similarity: float = 0.0,
    ) -> dict[str, Any]:
        ns = await self.repo.namespace(tenant_id, namespace)
        return await hybrid_search(
            self.db, ns, query, top_k=top_k, filters=filters, min_score=min_score, min_similarity=min_similarity
        )

    async def submit_reembed(self, tenant_id: str, namespace: str, model: str) -> dict[str, Any]:
        ns = await self.repo.namespace(tenant_id, namespace)
        return await self.jobs.submit(tenant_id, ns.namespace, "reembed", params={"model": model})

    async def _run_reembed(self, job: JobInput, progress: JobProgress) -> dict[str, Any]:
        ns = await self.repo.namespace(job.tenant_id, job.namespace)
        return await reembed_namespace(self.db, ns, str(job.params["model"]), progress)

    async def _run_import(self, job: JobInput, progress: JobProgress) -> dict[str, Any]:
        return await run_import(self.faqs, job, progress)


@contextlib.asynccontextmanager
async def standalone_knowledge_base(
    db: Database, *, max_file_bytes: int, drain_seconds: float = 0.0
) -> AsyncIterator[KnowledgeBase]:
    """A KnowledgeBase with a queue worker of its own, for a process that runs no server (`chorus kb`, the
    demo set-up, benchmarks). Its jobs usually run right here; while it lives it may also run knowledge jobs
    other processes queued, and at the end it hands back what is still running (`drain_seconds` later)."""
    notifications = Notifications(db.url)
    worker = Worker(JobQueue(db), notifications)
    kb = KnowledgeBase(db, max_file_bytes=max_file_bytes, worker=worker)
    listening = asyncio.create_task(notifications.run_forever(), name="notifications")
    await notifications.wait_listening(5)  # without it jobs are still found by polling
    worker.start()
    try:
        yield kb
    finally:
        await worker.drain(drain_seconds)
        listening.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listening
        await notifications.close()
