"""Ingest files and folders from disk (the CLI and `make run`'s demo knowledge base)."""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chorus.agents.errors import ChorusError
from chorus.agents.knowledge.ingestion import IngestRequest
from chorus.agents.knowledge.parsers import SUPPORTED
from chorus.agents.knowledge.service import KnowledgeBase


@dataclass
class FileOutcome:
    path: Path
    status: str  # completed | unchanged | failed | skipped
    detail: str
    job: dict[str, Any] | None = None


def files_under(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise FileNotFoundError(f"{path} does not exist")
    return sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))


async def _stored_sha(kb: KnowledgeBase, tenant_id: str, namespace: str, document_id: str) -> str | None:
    async with kb.db.connection() as conn:
        cur = await conn.execute(
            "SELECT content_sha256, chunking_strategy, chunk_size FROM kb_documents"
            " WHERE tenant_id = %s AND namespace = %s AND document_id = %s",
            (tenant_id, namespace, document_id),
        )
        row = await cur.fetchone()
    return f"{row['content_sha256']}:{row['chunking_strategy']}:{row['chunk_size']}" if row else None


async def ingest_path(
    kb: KnowledgeBase,
    tenant_id: str,
    path: Path,
    *,
    namespace: str,
    chunking_strategy: str = "paragraph",
    chunk_size: int = 150,
    metadata: dict[str, Any] | None = None,
    skip_unchanged: bool = True,
) -> list[FileOutcome]:
    """Ingest a file or every supported file under a folder; document_id = path relative to the folder."""
    base = path if await asyncio.to_thread(path.is_dir) else path.parent
    outcomes: list[FileOutcome] = []
    for file in await asyncio.to_thread(files_under, path):
        if file.suffix.lower() not in SUPPORTED:
            outcomes.append(FileOutcome(file, "skipped", f"not a supported type ({', '.join(sorted(SUPPORTED))})"))
            continue
        data = await asyncio.to_thread(file.read_bytes)
        document_id = file.relative_to(base).as_posix()
        fingerprint = f"{hashlib.sha256(data).hexdigest()}:{chunking_strategy}:{chunk_size}"
        if skip_unchanged and await _stored_sha(kb, tenant_id, namespace, document_id) == fingerprint:
            outcomes.append(FileOutcome(file, "unchanged", "already ingested with the same content"))
            continue
        req = IngestRequest(
            namespace=namespace,
            document_id=document_id,
            metadata={"source": document_id, **(metadata or {})},
            chunking_strategy=chunking_strategy,  # type: ignore[arg-type]  # checked by check_request
            chunk_size=chunk_size,
        )
        try:
            job = await kb.ingestion.submit_file(tenant_id, req, file.name, data)
        except ChorusError as exc:
            outcomes.append(FileOutcome(file, "failed", exc.detail))
            continue
        done = await kb.jobs.finished(tenant_id, job["job_id"])
        detail = done["error"] or f"{done['result'].get('chunks', 0)} chunks"
        outcomes.append(FileOutcome(file, done["status"], detail, done))
    return outcomes
