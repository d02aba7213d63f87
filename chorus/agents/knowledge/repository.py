"""SQL for namespaces, documents and chunks. Every statement is scoped by tenant and namespace."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import date
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import DictRow

from chorus.agents.errors import Conflict, InvalidInput, NotFound
from chorus.agents.storage.database import Database, returned

_NAMESPACE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def check_namespace(namespace: str) -> str:
    if not _NAMESPACE.match(namespace or ""):
        raise InvalidInput(
            f"invalid namespace '{namespace}': use 1-64 letters, digits, '_', '-' or '.', starting with a letter or "
            "digit",
            errors=[{"path": "$.namespace", "message": "invalid namespace name"}],
        )
    return namespace


@dataclass(frozen=True)
class Namespace:
    tenant_id: str
    namespace: str
    embedding_model: str
    dimension: int


@dataclass(frozen=True)
class ChunkRow:
    ordinal: int
    content: str
    start_line: int | None
    end_line: int | None
    page: int | None
    heading: str
    vector: str  # pgvector text form


@dataclass(frozen=True)
class DocumentRow:
    document_id: str
    title: str
    source: str
    content_type: str
    content_sha256: str
    bytes: int
    metadata: dict[str, Any]
    chunking_strategy: str
    chunk_size: int


def _as_date(value: Any) -> date | None:
    if value in (None, ""):
        return None
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        raise InvalidInput(
            f"metadata date '{value}' is not an ISO date (YYYY-MM-DD)",
            errors=[{"path": "$.metadata.created_at", "message": "not an ISO date"}],
        ) from None


def filter_columns(metadata: dict[str, Any]) -> tuple[str | None, str | None, date | None]:
    """The metadata fields searches filter on, copied onto each chunk."""
    doc_type = metadata.get("document_type")
    category = metadata.get("category")
    when = metadata.get("date", metadata.get("created_at"))
    return (
        str(doc_type) if doc_type is not None else None,
        str(category) if category is not None else None,
        _as_date(when),
    )


class KnowledgeRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- namespaces -------------------------------------------------------------------------------

    async def ensure_namespace(self, tenant_id: str, namespace: str, model: str, dimension: int) -> Namespace:
        check_namespace(namespace)
        async with self.db.connection() as conn:
            await conn.execute(
                "INSERT INTO kb_namespaces (tenant_id, namespace, embedding_model, dimension)"
                " VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
                (tenant_id, namespace, model, dimension),
            )
        return await self.namespace(tenant_id, namespace)

    async def find_namespace(self, tenant_id: str, namespace: str) -> Namespace | None:
        async with self.db.connection() as conn:
            cur = await conn.execute(
                "SELECT tenant_id::text, namespace, embedding_model, dimension FROM kb_namespaces"
                " WHERE tenant_id = %s AND namespace = %s",
                (tenant_id, namespace),
            )
            row = await cur.fetchone()
        return Namespace(**row) if row else None

    async def existing_namespaces(self, tenant_id: str, names: list[str]) -> set[str]:
        """Which of `names` are namespaces of the tenant (one query, whatever their number)."""
        if not names:
            return set()
        async with self.db.connection() as conn:
            cur = await conn.execute(
                "SELECT namespace FROM kb_namespaces WHERE tenant_id = %s AND namespace = ANY(%s)",
                (tenant_id, names),
            )
            return {row["namespace"] for row in await cur.fetchall()}

    async def namespace(self, tenant_id: str, namespace: str) -> Namespace:
        found = await self.find_namespace(tenant_id, check_namespace(namespace))
        if found is None:
            raise NotFound(f"no knowledge namespace '{namespace}'; ingest a document or create an FAQ to start one")
        return found

    async def list_namespaces(self, tenant_id: str) -> list[dict[str, Any]]:
        async with self.db.connection() as conn:
            cur = await conn.execute(
                "SELECT n.namespace, n.embedding_model, n.dimension, n.created_at, n.updated_at,"
                " (SELECT count(*) FROM kb_documents d WHERE d.tenant_id = n.tenant_id AND d.namespace = n.namespace)"
                "   AS documents,"
                " (SELECT count(*) FROM kb_chunks c WHERE c.tenant_id = n.tenant_id AND c.namespace = n.namespace)"
                "   AS chunks,"
                " (SELECT count(*) FROM faqs f WHERE f.tenant_id = n.tenant_id AND f.namespace = n.namespace"
                "   AND f.status = 'active') AS faqs"
                " FROM kb_namespaces n WHERE n.tenant_id = %s ORDER BY n.namespace",
                (tenant_id,),
            )
            return list(await cur.fetchall())

    # -- documents --------------------------------------------------------------------------------

    async def replace_document(
        self, conn: AsyncConnection[DictRow], ns: Namespace, doc: DocumentRow, chunks: list[ChunkRow]
    ) -> int:
        """Store the document and its chunks in the caller's transaction, replacing any earlier version.

        Returns the document's version. Readers see the old chunks or the new ones, never a mix.
        """
        doc_type, category, when = filter_columns(doc.metadata)
        async with conn.transaction():
            current = await self._model_of(conn, ns)
            if current != ns.embedding_model:
                raise Conflict(
                    f"namespace '{ns.namespace}' was re-embedded with '{current}' while this document was being "
                    "processed; ingest it again"
                )
            cur = await conn.execute(
                "INSERT INTO kb_documents (tenant_id, namespace, document_id, title, source, content_type,"
                " content_sha256, bytes, metadata, chunking_strategy, chunk_size, chunk_count)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (tenant_id, namespace, document_id) DO UPDATE SET title = EXCLUDED.title,"
                " source = EXCLUDED.source, content_type = EXCLUDED.content_type,"
                " content_sha256 = EXCLUDED.content_sha256, bytes = EXCLUDED.bytes, metadata = EXCLUDED.metadata,"
                " chunking_strategy = EXCLUDED.chunking_strategy, chunk_size = EXCLUDED.chunk_size,"
                " chunk_count = EXCLUDED.chunk_count, version = kb_documents.version + 1, updated_at = now()"
                " RETURNING version",
                (
                    ns.tenant_id,
                    ns.namespace,
                    doc.document_id,
                    doc.title,
                    doc.source,
                    doc.content_type,
                    doc.content_sha256,
                    doc.bytes,
                    _json(doc.metadata),
                    doc.chunking_strategy,
                    doc.chunk_size,
                    len(chunks),
                ),
            )
            row = returned(await cur.fetchone(), "INSERT INTO kb_documents … RETURNING")
            await conn.execute(
                "DELETE FROM kb_chunks WHERE tenant_id = %s AND namespace = %s AND document_id = %s",
                (ns.tenant_id, ns.namespace, doc.document_id),
            )
            async with conn.cursor().copy(
                "COPY kb_chunks (chunk_id, tenant_id, namespace, document_id, ordinal, start_line, end_line, page,"
                " heading, content, document_type, category, document_date, metadata, dims, embedding) FROM STDIN"
            ) as copy:
                for c in chunks:
                    await copy.write_row(
                        (
                            uuid.uuid4(),
                            ns.tenant_id,
                            ns.namespace,
                            doc.document_id,
                            c.ordinal,
                            c.start_line,
                            c.end_line,
                            c.page,
                            c.heading,
                            c.content,
                            doc_type,
                            category,
                            when,
                            _json(doc.metadata),
                            ns.dimension,
                            c.vector,
                        )
                    )
            await conn.execute(
                "UPDATE kb_namespaces SET updated_at = now() WHERE tenant_id = %s AND namespace = %s",
                (ns.tenant_id, ns.namespace),
            )
            return int(row["version"])

    @staticmethod
    async def _model_of(conn: AsyncConnection[DictRow], ns: Namespace) -> str:
        cur = await conn.execute(
            "SELECT embedding_model FROM kb_namespaces WHERE tenant_id = %s AND namespace = %s FOR SHARE",
            (ns.tenant_id, ns.namespace),
        )
        row = await cur.fetchone()
        if row is None:
            raise NotFound(f"knowledge namespace '{ns.namespace}' was deleted")
        return str(row["embedding_model"])

    async def list_documents(self, tenant_id: str, namespace: str, *, limit: int, offset: int) -> list[dict[str, Any]]:
        async with self.db.connection() as conn:
            cur = await conn.execute(
                "SELECT document_id, title, source, content_type, bytes, metadata, chunking_strategy, chunk_size,"
                " chunk_count, version, created_at, updated_at FROM kb_documents"
                " WHERE tenant_id = %s AND namespace = %s ORDER BY document_id LIMIT %s OFFSET %s",
                (tenant_id, namespace, limit, offset),
            )
            return list(await cur.fetchall())

    async def get_document(self, tenant_id: str, namespace: str, document_id: str) -> dict[str, Any]:
        async with self.db.connection() as conn:
            cur = await conn.execute(
                "SELECT document_id, title, source, content_type, bytes, metadata, chunking_strategy, chunk_size,"
                " chunk_count, version, created_at, updated_at FROM kb_documents"
                " WHERE tenant_id = %s AND namespace = %s AND document_id = %s",
                (tenant_id, namespace, document_id),
            )
            row = await cur.fetchone()
            if row is None:
                raise NotFound(f"no document '{document_id}' in namespace '{namespace}'")
            cur = await conn.execute(
                "SELECT chunk_id::text, ordinal, start_line, end_line, page, heading, content FROM kb_chunks"
                " WHERE tenant_id = %s AND namespace = %s AND document_id = %s ORDER BY ordinal",
                (tenant_id, namespace, document_id),
            )
            return {**row, "chunks": list(await cur.fetchall())}

    async def delete_document(self, tenant_id: str, namespace: str, document_id: str) -> None:
        async with self.db.connection() as conn:
            cur = await conn.execute(
                "DELETE FROM kb_documents WHERE tenant_id = %s AND namespace = %s AND document_id = %s",
                (tenant_id, namespace, document_id),
            )
            if cur.rowcount == 0:
                raise NotFound(f"no document '{document_id}' in namespace '{namespace}'")

    async def delete_namespace(self, tenant_id: str, namespace: str) -> None:
        async with self.db.connection() as conn:
            cur = await conn.execute(
                "DELETE FROM kb_namespaces WHERE tenant_id = %s AND namespace = %s", (tenant_id, namespace)
            )
            if cur.rowcount == 0:
                raise NotFound(f"no knowledge namespace '{namespace}'")


def _json(value: dict[str, Any]) -> Any:
    from psycopg.types.json import Jsonb

    return Jsonb(value)
