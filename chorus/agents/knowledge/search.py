"""Hybrid search: pgvector cosine (HNSW), Postgres full-text and trigram similarity, fused by RRF.

Each signal ranks its own top candidates inside the namespace (and filters); reciprocal rank fusion
(score = sum of 1/(60 + rank)) merges them. `score` is that sum scaled so that a chunk ranked first by
every signal that found anything scores 1.0; `similarity` is the chunk's cosine similarity to the query.
- vector: the query embedding against chunk embeddings (HNSW index, iterative scan so filters keep recall)
- keyword: ranks, by how many of the query's words (English stemming) a chunk has in its heading (weight A)
  or text (B), the chunks that contain all of them (GIN index, at most 500) and the vector candidates
- trigram: for queries of up to 6 words, the query as a fuzzy match inside the document title and
  section heading (typos, product names)
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from chorus.agents.errors import InvalidInput
from chorus.agents.knowledge.embedders import embed, get_embedder, to_pgvector
from chorus.agents.knowledge.repository import Namespace
from chorus.agents.storage.database import Database

RRF_K = 60
KEYWORD_CANDIDATES = 500  # chunks containing every query word that the keyword signal ranks, at most
FUZZY_MAX_WORDS = 6  # the trigram signal is for short, possibly misspelt queries (titles, product names)
_COLUMNS = {"document_type": "document_type", "category": "category"}


@dataclass(frozen=True)
class Filters:
    document_type: list[str] | None = None
    category: list[str] | None = None
    date_start: date | None = None
    date_end: date | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


def _strings(value: Any, path: str) -> list[str]:
    values = value if isinstance(value, list) else [value]
    if not values or not all(isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in values):
        raise InvalidInput(
            f"filter {path} must be a string or a list of strings",
            errors=[{"path": path, "message": "expected a string or a list of strings"}],
        )
    return [str(v) for v in values]


def _date(value: Any, path: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        raise InvalidInput(
            f"filter {path} is not an ISO date (YYYY-MM-DD): {value!r}",
            errors=[{"path": path, "message": "expected an ISO date"}],
        ) from None


def parse_filters(raw: dict[str, Any] | None) -> Filters:
    """The seed's filter object: document_type, category (string or list), date_range {start, end};
    any other key must equal the document metadata value."""
    if not raw:
        return Filters()
    rest: dict[str, Any] = {}
    doc_type = category = None
    start = end = None
    for key, value in raw.items():
        path = f"$.filters.{key}"
        if key == "document_type":
            doc_type = _strings(value, path)
        elif key == "category":
            category = _strings(value, path)
        elif key == "date_range":
            if not isinstance(value, dict) or not set(value) <= {"start", "end"}:
                raise InvalidInput(
                    "filter $.filters.date_range must be an object with 'start' and/or 'end'",
                    errors=[{"path": path, "message": "expected {start, end}"}],
                )
            start, end = _date(value.get("start"), path + ".start"), _date(value.get("end"), path + ".end")
            if start and end and start > end:
                raise InvalidInput(
                    "filter date_range starts after it ends", errors=[{"path": path, "message": "start > end"}]
                )
        elif isinstance(value, (str, int, float, bool)):
            rest[key] = value
        else:
            raise InvalidInput(
                f"filter {path} must be a string, number or boolean (metadata equality)",
                errors=[{"path": path, "message": "expected a scalar"}],
            )
    return Filters(doc_type, category, start, end, rest)


def _filter_sql(f: Filters, params: dict[str, Any]) -> str:
    parts = []
    if f.document_type:
        params["f_type"] = f.document_type
        parts.append("document_type = ANY(%(f_type)s)")
    if f.category:
        params["f_cat"] = f.category
        parts.append("category = ANY(%(f_cat)s)")
    if f.date_start:
        params["f_start"] = f.date_start
        parts.append("document_date >= %(f_start)s")
    if f.date_end:
        params["f_end"] = f.date_end
        parts.append("document_date <= %(f_end)s")
    if f.metadata:
        from psycopg.types.json import Jsonb

        params["f_meta"] = Jsonb(f.metadata)
        parts.append("metadata @> %(f_meta)s")
    return "".join(f" AND {p}" for p in parts)


def _sql(dims: int, where: str) -> str:
    vec = f"embedding::vector({dims})"
    qv = f"%(v)s::vector({dims})"
    scope = f"tenant_id = %(t)s AND namespace = %(ns)s AND dims = {dims}{where}"
    return f"""
WITH
q AS (
    SELECT plainto_tsquery('english', %(q)s) AS all_words,
           replace(plainto_tsquery('english', %(q)s)::text, ' & ', ' | ')::tsquery AS any_word
),
vec AS (
    SELECT chunk_id, row_number() OVER (ORDER BY d, chunk_id) AS r FROM (
        SELECT chunk_id, {vec} <=> {qv} AS d FROM kb_chunks WHERE {scope} ORDER BY {vec} <=> {qv} LIMIT %(n)s
    ) v
),
kw AS (
    SELECT chunk_id, row_number() OVER (ORDER BY rank DESC, chunk_id) AS r FROM (
        SELECT chunk_id, ts_rank_cd(tsv, q.any_word) AS rank FROM (
            -- candidates: chunks with every word (GIN index), capped, plus the vector candidates
            (SELECT chunk_id, tsv FROM kb_chunks, q WHERE {scope} AND tsv @@ q.all_words LIMIT %(kw_cap)s)
            UNION
            (SELECT c.chunk_id, c.tsv FROM kb_chunks c JOIN vec USING (chunk_id))
        ) candidates, q
        WHERE candidates.tsv @@ q.any_word ORDER BY rank DESC LIMIT %(n)s
    ) k
),
tri AS (
    SELECT chunk_id, row_number() OVER (ORDER BY sim DESC, chunk_id) AS r FROM (
        SELECT chunk_id, word_similarity(%(q)s, heading) AS sim
        FROM kb_chunks WHERE {scope} AND %(fuzzy)s AND %(q)s <%% heading ORDER BY sim DESC LIMIT %(n)s
    ) g
),
fused AS (
    SELECT chunk_id, sum(1.0 / ({RRF_K} + r)) AS rrf,
           min(r) FILTER (WHERE signal = 'vector') AS vector_rank,
           min(r) FILTER (WHERE signal = 'keyword') AS keyword_rank,
           min(r) FILTER (WHERE signal = 'trigram') AS trigram_rank
    FROM (
        SELECT chunk_id, r, 'vector' AS signal FROM vec
        UNION ALL SELECT chunk_id, r, 'keyword' FROM kw
        UNION ALL SELECT chunk_id, r, 'trigram' FROM tri
    ) s GROUP BY chunk_id
),
signals AS (
    SELECT (SELECT count(*) > 0 FROM vec)::int + (SELECT count(*) > 0 FROM kw)::int
           + (SELECT count(*) > 0 FROM tri)::int AS active
)
SELECT c.chunk_id::text, c.document_id, c.ordinal, c.start_line, c.end_line, c.page, c.heading, c.content,
       c.metadata, d.title, d.source, f.vector_rank, f.keyword_rank, f.trigram_rank,
       f.rrf / (greatest(s.active, 1)::float8 / ({RRF_K} + 1)) AS score,
       1 - ({vec.replace("embedding", "c.embedding")} <=> {qv}) AS similarity
FROM fused f
JOIN kb_chunks c USING (chunk_id)
JOIN kb_documents d ON d.tenant_id = c.tenant_id AND d.namespace = c.namespace AND d.document_id = c.document_id
CROSS JOIN signals s
ORDER BY f.rrf DESC, similarity DESC
LIMIT %(k)s
"""


def citation(row: dict[str, Any]) -> str:
    where = []
    if row.get("page"):
        where.append(f"page {row['page']}")
    if row.get("start_line"):
        end = row.get("end_line")
        where.append(
            f"lines {row['start_line']}-{end}" if end and end != row["start_line"] else f"line {row['start_line']}"
        )
    return f"{row['title']}" + (f", {', '.join(where)}" if where else "")


def search_statement(
    ns: Namespace, query: str, vector: str, *, top_k: int, filters: Filters | None = None
) -> tuple[str, dict[str, Any]]:
    """The hybrid query and its parameters (also what bench/knowledge_search.py times)."""
    params: dict[str, Any] = {
        "t": ns.tenant_id,
        "ns": ns.namespace,
        "q": query,
        "v": vector,
        "n": max(top_k * 4, 40),
        "k": top_k,
        "kw_cap": KEYWORD_CANDIDATES,
        "fuzzy": len(query.split()) <= FUZZY_MAX_WORDS,
    }
    return _sql(ns.dimension, _filter_sql(filters or Filters(), params)), params


async def hybrid_search(
    db: Database,
    ns: Namespace,
    query: str,
    *,
    top_k: int = 5,
    filters: Filters | None = None,
    min_score: float = 0.0,
    min_similarity: float = 0.0,
) -> dict[str, Any]:
    started = time.perf_counter()
    if not query.strip():
        raise InvalidInput("query is empty", errors=[{"path": "$.query", "message": "empty"}])
    vector = (await embed(get_embedder(ns.embedding_model), [query]))[0]
    embedded = time.perf_counter()
    sql, params = search_statement(ns, query, to_pgvector(vector), top_k=top_k, filters=filters)
    async with db.connection() as conn, conn.transaction():
        # Keep scanning the HNSW graph until enough rows pass the tenant/namespace/filter conditions.
        await conn.execute(
            "SELECT set_config('hnsw.iterative_scan', 'relaxed_order', true), set_config('hnsw.ef_search', %s, true)",
            (str(max(40, params["n"])),),
        )
        cur = await conn.execute(sql, params)
        rows = await cur.fetchall()
    results = []
    for row in rows:
        score, similarity = float(row["score"]), float(row["similarity"])
        if score < min_score or similarity < min_similarity:
            continue
        metadata = {**(row["metadata"] or {}), "source": row["source"], "title": row["title"]}
        results.append(
            {
                "chunk_id": row["chunk_id"],
                "document_id": row["document_id"],
                "content": row["content"],
                "score": round(score, 4),
                "similarity": round(similarity, 4),
                "signals": {
                    "vector_rank": row["vector_rank"],
                    "keyword_rank": row["keyword_rank"],
                    "trigram_rank": row["trigram_rank"],
                },
                "metadata": metadata,
                "position": {
                    "ordinal": row["ordinal"],
                    "start_line": row["start_line"],
                    "end_line": row["end_line"],
                    "page": row["page"],
                    "heading": row["heading"],
                },
                "citation": citation(row),
            }
        )
    finished = time.perf_counter()
    return {
        "namespace": ns.namespace,
        "query": query,
        "results": results,
        "total_results": len(results),
        "embedding_model": ns.embedding_model,
        "latency_ms": round((finished - started) * 1000, 2),
        "timings_ms": {
            "embed": round((embedded - started) * 1000, 2),
            "search": round((finished - embedded) * 1000, 2),
        },
    }
