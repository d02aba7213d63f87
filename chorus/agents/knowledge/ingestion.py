"""Ingestion: accepted as a job with its input stored; run by a worker: parse, chunk, embed, then replace
the document's chunks and end the job in one transaction (so a job run again never stores twice)."""

from __future__ import annotations

import asyncio
import hashlib
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from chorus.agents.errors import InvalidInput, NotFound, PayloadTooLarge
from chorus.agents.knowledge.chunking import STRATEGIES, Chunk, Strategy, chunk_document
from chorus.agents.knowledge.embedders import configured_model, embed, get_embedder, to_pgvector
from chorus.agents.knowledge.jobs import JobInput, JobProgress, KnowledgeJobs
from chorus.agents.knowledge.parsers import ParsedDocument, UnreadableDocument, parse_document, parse_text
from chorus.agents.knowledge.repository import ChunkRow, DocumentRow, KnowledgeRepository, Namespace, filter_columns

MAX_CHUNKS_PER_DOCUMENT = 20_000
_EMBED_BATCH = 64
_DOCUMENT_ID = re.compile(r"^[^\x00-\x1f]{1,200}$")


@dataclass(frozen=True)
class IngestRequest:
    namespace: str
    document_id: str
    metadata: dict[str, Any] = field(default_factory=dict)
    chunking_strategy: Strategy = "paragraph"
    chunk_size: int = 150
    title: str | None = None


def check_request(req: IngestRequest) -> None:
    errors = []
    if not _DOCUMENT_ID.match(req.document_id or ""):
        errors.append({"path": "$.document_id", "message": "1-200 characters, no control characters"})
    if req.chunking_strategy not in STRATEGIES:
        errors.append({"path": "$.chunking_strategy", "message": f"one of {', '.join(STRATEGIES)}"})
    if not 20 <= req.chunk_size <= 2000:
        errors.append({"path": "$.chunk_size", "message": "between 20 and 2000 words"})
    if errors:
        raise InvalidInput("the ingestion request is invalid", errors=errors)
    filter_columns(req.metadata)  # a bad date fails now, not in the job


class Ingestion:
    def __init__(self, repo: KnowledgeRepository, jobs: KnowledgeJobs, *, max_file_bytes: int) -> None:
        self.repo = repo
        self.jobs = jobs
        self.max_file_bytes = max_file_bytes

    async def _namespace(self, tenant_id: str, namespace: str) -> Namespace:
        found = await self.repo.find_namespace(tenant_id, namespace)
        if found is not None:
            return found
        model = configured_model()
        return await self.repo.ensure_namespace(tenant_id, namespace, model, get_embedder(model).dimension)

    async def submit_text(self, tenant_id: str, req: IngestRequest, content: str) -> dict[str, Any]:
        check_request(req)
        if not content.strip():
            raise InvalidInput("content is empty", errors=[{"path": "$.content", "message": "empty"}])
        data = content.encode()
        self._check_size(len(data))
        ns = await self._namespace(tenant_id, req.namespace)
        params = {"request": asdict(req), "markdown": "#" in content or "\n\n" in content}
        job = await self.jobs.submit(
            tenant_id, ns.namespace, "ingest", params=params, data=data, document_id=req.document_id
        )
        return {**job, "chunks_to_process": estimate_chunks(len(content.split()), req.chunk_size)}

    async def submit_file(self, tenant_id: str, req: IngestRequest, filename: str, data: bytes) -> dict[str, Any]:
        from chorus.agents.knowledge.parsers import content_type_for

        check_request(req)
        content_type_for(filename)  # unsupported types are refused now with 415
        if not data.strip():
            raise UnreadableDocument(f"'{filename}' is empty")
        self._check_size(len(data))
        ns = await self._namespace(tenant_id, req.namespace)
        params = {"request": asdict(req), "filename": filename}
        job = await self.jobs.submit(
            tenant_id, ns.namespace, "ingest", params=params, data=data, document_id=req.document_id, filename=filename
        )
        return {**job, "chunks_to_process": None}

    async def run(self, job: JobInput, progress: JobProgress) -> dict[str, Any]:
        """The job's work, from its stored input."""
        req = IngestRequest(**job.params["request"])
        ns = await self.repo.find_namespace(job.tenant_id, job.namespace)
        if ns is None:
            raise NotFound(f"knowledge namespace '{job.namespace}' was deleted before this document was ingested")
        filename = job.params.get("filename")
        if filename is not None:
            parsed = await asyncio.to_thread(parse_document, filename, job.data)
        else:
            parsed = parse_text(job.data.decode(), req.document_id, markdown=bool(job.params.get("markdown")))
        if req.title:
            parsed = ParsedDocument(req.title, parsed.content_type, parsed.lines)
        source = str(req.metadata.get("source") or filename or req.document_id)
        return await self._ingest(ns, req, parsed, job.data, source, progress)

    def _check_size(self, size: int) -> None:
        if size > self.max_file_bytes:
            raise PayloadTooLarge(
                f"the document is {size} bytes; the limit is {self.max_file_bytes} (CHORUS_UPLOAD_MAX_BYTES)"
            )

    async def _ingest(
        self,
        ns: Namespace,
        req: IngestRequest,
        parsed: ParsedDocument,
        raw: bytes,
        source: str,
        progress: JobProgress,
    ) -> dict[str, Any]:
        embedder = get_embedder(ns.embedding_model)
        chunks: list[Chunk] = await asyncio.to_thread(
            chunk_document, parsed, strategy=req.chunking_strategy, chunk_size=req.chunk_size, embed=embedder.embed
        )
        if not chunks:
            raise InvalidInput(f"'{source}' produced no chunks")
        if len(chunks) > MAX_CHUNKS_PER_DOCUMENT:
            raise InvalidInput(
                f"'{source}' makes {len(chunks)} chunks; the limit is {MAX_CHUNKS_PER_DOCUMENT} per document"
            )
        await progress.update(chunks_total=len(chunks))
        title = parsed.title
        rows: list[ChunkRow] = []
        for start in range(0, len(chunks), _EMBED_BATCH):
            batch = chunks[start : start + _EMBED_BATCH]
            vectors = await embed(embedder, [c.embedding_text(title) for c in batch])
            rows.extend(
                ChunkRow(c.ordinal, c.content, c.start_line, c.end_line, c.page, c.context(title), to_pgvector(v))
                for c, v in zip(batch, vectors, strict=True)
            )
            await progress.update(chunks_processed=len(rows), embeddings_generated=len(rows))
        document = DocumentRow(
            document_id=req.document_id,
            title=title,
            source=source,
            content_type=parsed.content_type,
            content_sha256=hashlib.sha256(raw).hexdigest(),
            bytes=len(raw),
            metadata=req.metadata,
            chunking_strategy=req.chunking_strategy,
            chunk_size=req.chunk_size,
        )
        async with self.repo.db.connection() as conn, conn.transaction():
            version = await self.repo.replace_document(conn, ns, document, rows)
            result = {"document_id": req.document_id, "title": title, "chunks": len(rows), "version": version}
            await progress.complete(conn, result)
        return result


def estimate_chunks(words: int, chunk_size: int) -> int:
    return max(1, -(-words // chunk_size))
