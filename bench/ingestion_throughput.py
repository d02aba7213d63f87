"""Ingestion throughput with the offline embedder: documents per second through the whole job (queued,
claimed, parse, chunk, embed, store in one transaction), against embedding the same chunks alone in the same run.

    .venv/bin/python -m bench.ingestion_throughput [--documents 15] [--rounds 3] [--tiny]
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from pathlib import Path

from bench.harness import new_tenant, open_bench_database, parse_sizes
from chorus.agents.knowledge.chunking import chunk_document
from chorus.agents.knowledge.embedders import get_embedder
from chorus.agents.knowledge.local_files import ingest_path
from chorus.agents.knowledge.parsers import parse_document
from chorus.agents.knowledge.service import standalone_knowledge_base

CORPUS = Path(__file__).resolve().parents[1] / "configs" / "examples" / "knowledge" / "acme_support"
SIZES = {"documents": len(list(CORPUS.iterdir())), "rounds": 3}
TINY = {"documents": 1, "rounds": 1}


async def main(*, documents: int = SIZES["documents"], rounds: int = SIZES["rounds"]) -> dict[str, float]:
    db, _ = await open_bench_database()
    corpus = Path(tempfile.mkdtemp(prefix="chorus-bench-corpus-"))
    try:
        tenant_id = await new_tenant(db)
        embedder = get_embedder("all-MiniLM-L6-v2")
        for f in sorted(CORPUS.iterdir())[:documents]:
            shutil.copy(f, corpus / f.name)
        files = sorted(corpus.iterdir())
        texts = []
        for f in files:
            parsed = parse_document(f.name, f.read_bytes())
            texts += [c.embedding_text(parsed.title) for c in chunk_document(parsed)]
        embedder.embed(texts[:8])  # load and warm
        started = time.perf_counter()
        for _ in range(rounds):
            embedder.embed(texts)
        embed_only = (time.perf_counter() - started) / rounds
        async with standalone_knowledge_base(db, max_file_bytes=20 * 1024 * 1024) as kb:
            started = time.perf_counter()
            for r in range(rounds):
                outcomes = await ingest_path(kb, tenant_id, corpus, namespace=f"round{r}", skip_unchanged=False)
                if not all(o.status == "completed" for o in outcomes):
                    raise RuntimeError(f"ingestion failed: {outcomes}")
            full = (time.perf_counter() - started) / rounds
        print(
            f"ingestion (offline embedder): {len(files) / full:.1f} documents/s, {len(texts) / full:.0f} chunks/s "
            f"({len(files)} documents, {len(texts)} chunks, {full:.2f} s per pass); embedding alone {embed_only:.2f} s "
            f"-> whole job / embedding = {full / embed_only:.2f}x",
            flush=True,
        )
        return {"documents_per_s": len(files) / full, "ratio": full / embed_only}
    finally:
        shutil.rmtree(corpus, ignore_errors=True)
        await db.close()


if __name__ == "__main__":
    asyncio.run(main(**parse_sizes(__doc__, SIZES, TINY)))
