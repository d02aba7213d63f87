"""Hybrid query latency at 10k and 100k chunks, against exact (no-index) search in the same run.

Corpus: the example support corpus split into sentences, each embedded with the offline model; every
chunk joins three random sentences (text) and the normalised mix of their vectors (embedding), so the
full-text, trigram and vector signals all see realistic data without embedding 100k chunks for an hour.
Queries: the 52 labelled questions of tests/knowledge/data. Printed: p50/p95 of the SQL search (the
part that grows with the corpus), p95 end to end (with embedding the query), and the ratio of the
indexed hybrid search to the same query run with index scans disabled (exact scan).

    .venv/bin/python -m bench.knowledge_search [--sizes 10000,100000] [--questions 52] [--sentences N] [--tiny]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import time
import uuid
from pathlib import Path

import numpy as np

from bench.harness import median, new_tenant, open_bench_database, pct
from chorus.agents.knowledge.embedders import get_embedder, to_pgvector
from chorus.agents.knowledge.repository import KnowledgeRepository
from chorus.agents.knowledge.search import hybrid_search, search_statement
from chorus.agents.storage.database import Database

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "configs" / "examples" / "knowledge" / "acme_support"
QUESTIONS = ROOT / "tests" / "knowledge" / "data" / "retrieval_questions.json"
TARGET_MS = 20.0


def sentences() -> list[str]:
    out: list[str] = []
    for path in sorted(CORPUS.glob("*.md")):
        text = re.sub(r"[#*\-]", " ", path.read_text())
        out.extend(s.strip() for s in re.split(r"(?<=[.!?])\s+|\n\n", text) if len(s.split()) >= 5)
    return out


async def fill(db: Database, tenant_id: str, namespace: str, count: int, pool: list[str], vectors: np.ndarray) -> None:
    rng = random.Random(count)
    per_doc = 10
    async with db.connection() as conn, conn.transaction():
        docs = count // per_doc
        offset = (
            await (
                await conn.execute(
                    "SELECT count(*) AS n FROM kb_documents WHERE tenant_id = %s AND namespace = %s",
                    (tenant_id, namespace),
                )
            ).fetchone()
            or {"n": 0}
        )["n"]
        async with conn.cursor().copy(
            "COPY kb_documents (tenant_id, namespace, document_id, title, source, content_type, content_sha256,"
            " bytes, chunking_strategy, chunk_size, chunk_count) FROM STDIN"
        ) as copy:
            for d in range(offset, offset + docs):
                await copy.write_row(
                    (
                        tenant_id,
                        namespace,
                        f"doc-{d}",
                        f"Article {d}",
                        f"doc-{d}",
                        "text/markdown",
                        "x",
                        1000,
                        "paragraph",
                        150,
                        per_doc,
                    )
                )
        async with conn.cursor().copy(
            "COPY kb_chunks (chunk_id, tenant_id, namespace, document_id, ordinal, start_line, end_line, heading,"
            " content, dims, embedding) FROM STDIN"
        ) as copy:
            for i in range(docs * per_doc):
                picks = rng.sample(range(len(pool)), 3)
                weights = np.array([rng.random() + 0.2 for _ in picks], dtype=np.float32)
                mixed = (vectors[picks] * weights[:, None]).sum(axis=0)
                mixed /= np.linalg.norm(mixed)
                d = offset + i // per_doc
                await copy.write_row(
                    (
                        uuid.uuid4(),
                        tenant_id,
                        namespace,
                        f"doc-{d}",
                        i % per_doc,
                        1,
                        3,
                        f"Article {d}",
                        " ".join(pool[p] for p in picks),
                        384,
                        to_pgvector(mixed),
                    )
                )


async def measure(db: Database, tenant_id: str, namespace: str, questions: list[str], exact: bool) -> list[float]:
    ns = await KnowledgeRepository(db).namespace(tenant_id, namespace)
    embedder = get_embedder(ns.embedding_model)
    query_vectors = [to_pgvector(v) for v in embedder.embed(questions)]
    times: list[float] = []
    for _ in range(3 if not exact else 1):
        for q, v in zip(questions, query_vectors, strict=True):
            sql, params = search_statement(ns, q, v, top_k=5)
            async with db.connection() as conn, conn.transaction():
                await conn.execute("SELECT set_config('hnsw.iterative_scan', 'relaxed_order', true)")
                if exact:
                    await conn.execute("SET LOCAL enable_indexscan = off")
                    await conn.execute("SET LOCAL enable_bitmapscan = off")
                started = time.perf_counter()
                await (await conn.execute(sql, params)).fetchall()
                times.append((time.perf_counter() - started) * 1000)
    return times


SIZES = (10_000, 100_000)
TINY_SIZES = (200,)
TINY_QUESTIONS = 2
TINY_SENTENCES = 8
TINY = {"sizes": TINY_SIZES, "questions": TINY_QUESTIONS, "sentences_used": TINY_SENTENCES}


async def main(
    *, sizes: tuple[int, ...] = SIZES, questions: int | None = None, sentences_used: int | None = None
) -> dict[str, float]:
    """`questions` and `sentences_used` (of the corpus, to build chunks from) default to all."""
    db, _ = await open_bench_database()
    try:
        tenant_id = await new_tenant(db)
        namespace = "bench"
        model = get_embedder("all-MiniLM-L6-v2")
        await KnowledgeRepository(db).ensure_namespace(tenant_id, namespace, model.name, model.dimension)
        pool = sentences()[:sentences_used]
        vectors = model.embed(pool)
        asked = [q["q"] for q in json.loads(QUESTIONS.read_text())["questions"]][:questions]
        result: dict[str, float] = {}
        loaded = 0
        for size in sizes:
            started = time.perf_counter()
            await fill(db, tenant_id, namespace, size - loaded, pool, vectors)
            loaded = size
            async with db.connection() as conn:
                await conn.execute("ANALYZE kb_chunks")
            fill_s = time.perf_counter() - started
            await measure(db, tenant_id, namespace, asked[:5], exact=False)  # warm
            indexed = await measure(db, tenant_id, namespace, asked, exact=False)
            exact = await measure(db, tenant_id, namespace, asked, exact=True)
            ns = await KnowledgeRepository(db).namespace(tenant_id, namespace)
            e2e = []
            for q in asked:
                t = time.perf_counter()
                await hybrid_search(db, ns, q, top_k=5)
                e2e.append((time.perf_counter() - t) * 1000)
            p95 = pct(indexed, 0.95)
            print(
                f"knowledge search @ {size:>7} chunks: SQL p50 {median(indexed):.1f} ms, p95 {p95:.1f} ms "
                f"(target {TARGET_MS:.0f} ms: {'met' if p95 <= TARGET_MS else 'NOT met'}); exact-scan p95 "
                f"{pct(exact, 0.95):.1f} ms -> ratio {p95 / pct(exact, 0.95):.3f}x; end to end with query "
                f"embedding p95 {pct(e2e, 0.95):.1f} ms; load+index {fill_s:.0f} s",
                flush=True,
            )
            result[f"p95_ms_{size}"] = p95
            result[f"ratio_{size}"] = p95 / pct(exact, 0.95)
        return result
    finally:
        await db.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default=None, help="chunk counts, comma-separated: default 10000,100000, tiny 200")
    parser.add_argument("--questions", type=int, default=None, help=f"default all 52, tiny {TINY_QUESTIONS}")
    parser.add_argument("--sentences", type=int, default=None, help=f"default all, tiny {TINY_SENTENCES}")
    parser.add_argument("--tiny", action="store_true", help="the smoke test's sizes: seconds, not minutes")
    args = parser.parse_args()
    sizes = tuple(int(s) for s in args.sizes.split(",")) if args.sizes else TINY_SIZES if args.tiny else SIZES
    questions = args.questions or (TINY_QUESTIONS if args.tiny else None)
    sentences_used = args.sentences or (TINY_SENTENCES if args.tiny else None)
    asyncio.run(main(sizes=sizes, questions=questions, sentences_used=sentences_used))
