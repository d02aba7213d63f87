"""Re-embed a namespace with another model: every chunk and FAQ phrasing gets a new vector, and the
namespace switches model (and the job ends) in one transaction, so searches never mix vectors of two
models and a job run again never re-embeds twice."""

from __future__ import annotations

from typing import Any

from chorus.agents.errors import Conflict
from chorus.agents.knowledge.embedders import check_model, embed, get_embedder, to_pgvector
from chorus.agents.knowledge.jobs import JobProgress
from chorus.agents.knowledge.repository import Namespace
from chorus.agents.storage.database import Database

_BATCH = 64


async def reembed_namespace(db: Database, ns: Namespace, model: str, progress: JobProgress) -> dict[str, Any]:
    check_model(model)
    embedder = get_embedder(model)
    async with db.connection() as conn:
        cur = await conn.execute(
            "SELECT chunk_id, heading || E'\\n' || content AS text FROM kb_chunks"
            " WHERE tenant_id = %s AND namespace = %s ORDER BY chunk_id",
            (ns.tenant_id, ns.namespace),
        )
        chunks = await cur.fetchall()
        cur = await conn.execute(
            "SELECT vector_id, text FROM faq_vectors WHERE tenant_id = %s AND namespace = %s ORDER BY vector_id",
            (ns.tenant_id, ns.namespace),
        )
        phrasings = await cur.fetchall()
    await progress.update(chunks_total=len(chunks) + len(phrasings))
    texts = [r["text"] for r in chunks] + [r["text"] for r in phrasings]
    vectors: list[str] = []
    for start in range(0, len(texts), _BATCH):
        matrix = await embed(embedder, texts[start : start + _BATCH])
        vectors.extend(to_pgvector(v) for v in matrix)
        await progress.update(chunks_processed=len(vectors), embeddings_generated=len(vectors))
    async with db.connection() as conn, conn.transaction():
        cur = await conn.execute(
            "SELECT embedding_model FROM kb_namespaces WHERE tenant_id = %s AND namespace = %s FOR UPDATE",
            (ns.tenant_id, ns.namespace),
        )
        row = await cur.fetchone()
        cur = await conn.execute(
            "SELECT count(*) AS n FROM kb_chunks WHERE tenant_id = %s AND namespace = %s"
            " AND chunk_id <> ALL(%s::uuid[])",
            (ns.tenant_id, ns.namespace, [r["chunk_id"] for r in chunks]),
        )
        added = await cur.fetchone()
        cur = await conn.execute(
            "SELECT count(*) AS n FROM faq_vectors WHERE tenant_id = %s AND namespace = %s"
            " AND vector_id <> ALL(%s::bigint[])",
            (ns.tenant_id, ns.namespace, [r["vector_id"] for r in phrasings]),
        )
        added_faqs = await cur.fetchone()
        changed = bool(added and added["n"]) or bool(added_faqs and added_faqs["n"])
        if row is None or row["embedding_model"] != ns.embedding_model or changed:
            raise Conflict(f"namespace '{ns.namespace}' changed while it was being re-embedded; run the re-embed again")
        await conn.execute("CREATE TEMP TABLE reembedded (ref text, is_chunk boolean, embedding vector) ON COMMIT DROP")
        async with conn.cursor().copy("COPY reembedded (ref, is_chunk, embedding) FROM STDIN") as copy:
            for r, v in zip(chunks, vectors, strict=False):
                await copy.write_row((str(r["chunk_id"]), True, v))
            for r, v in zip(phrasings, vectors[len(chunks) :], strict=True):
                await copy.write_row((str(r["vector_id"]), False, v))
        await conn.execute(
            "UPDATE kb_chunks c SET embedding = r.embedding, dims = %s FROM reembedded r"
            " WHERE r.is_chunk AND c.chunk_id = r.ref::uuid",
            (embedder.dimension,),
        )
        await conn.execute(
            "UPDATE faq_vectors f SET embedding = r.embedding, dims = %s FROM reembedded r"
            " WHERE NOT r.is_chunk AND f.vector_id = r.ref::bigint AND f.tenant_id = %s AND f.namespace = %s",
            (embedder.dimension, ns.tenant_id, ns.namespace),
        )
        await conn.execute(
            "UPDATE kb_namespaces SET embedding_model = %s, dimension = %s, updated_at = now()"
            " WHERE tenant_id = %s AND namespace = %s",
            (model, embedder.dimension, ns.tenant_id, ns.namespace),
        )
        result = {
            "namespace": ns.namespace,
            "from_model": ns.embedding_model,
            "embedding_model": model,
            "dimension": embedder.dimension,
            "chunks": len(chunks),
            "faq_phrasings": len(phrasings),
        }
        await progress.complete(conn, result)
    return result
