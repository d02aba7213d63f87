"""KnowledgeBase: the one object the API, the CLI and the bot tools use for documents, search and FAQs."""

from __future__ import annotations

from typing import Any

from chorus.agents.knowledge.faq import FaqService
from chorus.agents.knowledge.ingestion import Ingestion
from chorus.agents.knowledge.jobs import JobProgress, JobRunner
from chorus.agents.knowledge.reembed import reembed_namespace
from chorus.agents.knowledge.repository import KnowledgeRepository
from chorus.agents.knowledge.search import Filters, hybrid_search
from chorus.agents.storage.database import Database


class KnowledgeBase:
    def __init__(self, db: Database, *, max_file_bytes: int, job_concurrency: int = 1) -> None:
        self.db = db
        self.repo = KnowledgeRepository(db)
        self.jobs = JobRunner(db, concurrency=job_concurrency)
        self.ingestion = Ingestion(self.repo, self.jobs, max_file_bytes=max_file_bytes)
        self.faqs = FaqService(db, self.repo)

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

        async def work(progress: JobProgress) -> dict[str, Any]:
            return await reembed_namespace(self.db, ns, model, progress)

        return await self.jobs.submit(tenant_id, namespace, "reembed", work)
