"""FAQs (seed 001 §17 "FAQ Management"): versioned entries, search with confidence, analytics.

Every phrasing of an FAQ (its question and each alternate question) and its answer get a vector.
A search embeds the query and takes, per FAQ, its best-matching vector:
- confidence = cosine similarity to the best phrasing, or 0.9 x the similarity to the answer, whichever is
  higher; a close spelling of a phrasing (trigram similarity) also counts, so typos still match;
- matched_via = "question" / "alternate_question" when a phrasing gave the confidence and it is at least
  0.6 (a direct match), else "semantic_search".
`auto_response_enabled` is true when the top confidence reaches `confidence_threshold`, and then
`recommended_answer` is that FAQ's answer. Every search is logged for analytics.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection
from psycopg.errors import UniqueViolation
from psycopg.rows import DictRow
from psycopg.types.json import Jsonb

from chorus.agents.errors import Conflict, InvalidInput, NotFound
from chorus.agents.knowledge.embedders import Embedder, configured_model, embed, get_embedder, to_pgvector
from chorus.agents.knowledge.repository import KnowledgeRepository, Namespace
from chorus.agents.storage.database import Database, returned

DIRECT_MATCH = 0.6
ANSWER_WEIGHT = 0.9
LOW_CONFIDENCE = 0.6
_FAQ_COLUMNS = (
    "faq_id::text, namespace, category, question, alternate_questions, answer, tags, version, status, metadata,"
    " created_at, updated_at"
)


@dataclass(frozen=True)
class FaqInput:
    question: str
    answer: str
    category: str | None = None
    alternate_questions: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    metadata: dict[str, Any] | None = None

    def phrasings(self) -> list[tuple[str, str]]:
        return [("question", self.question), *(("alternate_question", a) for a in self.alternate_questions)]


def _duplicate_question(question: str, namespace: str) -> Conflict:
    return Conflict(
        f"an FAQ with the question '{question.strip()}' already exists in namespace '{namespace}'; "
        "change that FAQ instead, or word this question differently",
        extra={"errors": [{"path": "$.question", "message": "duplicate question"}]},
    )


def check_faq(faq: FaqInput, path: str = "$") -> list[dict[str, str]]:
    errors = []
    if not faq.question.strip():
        errors.append({"path": f"{path}.question", "message": "empty"})
    if not faq.answer.strip():
        errors.append({"path": f"{path}.answer", "message": "empty"})
    if len(faq.question) > 1000:
        errors.append({"path": f"{path}.question", "message": "longer than 1000 characters"})
    if len(faq.answer) > 20_000:
        errors.append({"path": f"{path}.answer", "message": "longer than 20000 characters"})
    if len(faq.alternate_questions) > 50:
        errors.append({"path": f"{path}.alternate_questions", "message": "more than 50"})
    return errors


class FaqService:
    def __init__(self, db: Database, repo: KnowledgeRepository) -> None:
        self.db = db
        self.repo = repo

    async def namespace_for_write(self, tenant_id: str, namespace: str) -> Namespace:
        found = await self.repo.find_namespace(tenant_id, namespace)
        if found is not None:
            return found
        model = configured_model()
        return await self.repo.ensure_namespace(tenant_id, namespace, model, get_embedder(model).dimension)

    # -- writes -----------------------------------------------------------------------------------

    async def vectors(self, ns: Namespace, faqs: list[FaqInput]) -> list[list[tuple[str, str, str]]]:
        """(kind, text, vector) for every phrasing and the answer of each FAQ, embedded in one batch."""
        embedder: Embedder = get_embedder(ns.embedding_model)
        texts: list[tuple[int, str, str]] = []
        for i, faq in enumerate(faqs):
            texts.extend((i, kind, text) for kind, text in faq.phrasings())
            texts.append((i, "answer", faq.answer))
        matrix = await embed(embedder, [t for _, _, t in texts])
        out: list[list[tuple[str, str, str]]] = [[] for _ in faqs]
        for (i, kind, text), vector in zip(texts, matrix, strict=True):
            out[i].append((kind, text, to_pgvector(vector)))
        return out

    @staticmethod
    async def _store_vectors(
        conn: AsyncConnection[DictRow], ns: Namespace, faq_id: str, vectors: list[tuple[str, str, str]]
    ) -> None:
        await conn.execute("DELETE FROM faq_vectors WHERE faq_id = %s", (faq_id,))
        async with conn.cursor().copy(
            "COPY faq_vectors (faq_id, tenant_id, namespace, kind, text, dims, embedding) FROM STDIN"
        ) as copy:
            for kind, text, vector in vectors:
                await copy.write_row((faq_id, ns.tenant_id, ns.namespace, kind, text, ns.dimension, vector))

    @staticmethod
    async def _record_version(
        conn: AsyncConnection[DictRow], row: dict[str, Any], actor: str | None, reason: str | None
    ) -> None:
        await conn.execute(
            "INSERT INTO faq_versions (version_id, faq_id, tenant_id, version, question, answer, alternate_questions,"
            " category, tags, changed_by, change_reason)"
            " SELECT %s, faq_id, tenant_id, version, question, answer, alternate_questions, category, tags, %s, %s"
            " FROM faqs WHERE faq_id = %s",
            (uuid.uuid4(), actor, reason, row["faq_id"]),
        )

    async def insert(
        self,
        conn: AsyncConnection[DictRow],
        ns: Namespace,
        faq: FaqInput,
        vectors: list[tuple[str, str, str]],
        *,
        actor: str | None,
        reason: str | None = "created",
    ) -> dict[str, Any]:
        faq_id = str(uuid.uuid4())
        cur = await conn.execute(
            "INSERT INTO faqs (faq_id, tenant_id, namespace, category, question, alternate_questions, answer, tags,"
            f" metadata, created_by, updated_by) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
            f" ON CONFLICT (tenant_id, namespace, lower(question)) DO NOTHING RETURNING {_FAQ_COLUMNS}",
            (
                faq_id,
                ns.tenant_id,
                ns.namespace,
                faq.category,
                faq.question.strip(),
                list(faq.alternate_questions),
                faq.answer,
                list(faq.tags),
                Jsonb(faq.metadata or {}),
                actor,
                actor,
            ),
        )
        row = await cur.fetchone()
        if row is None:
            raise _duplicate_question(faq.question, ns.namespace)
        await self._store_vectors(conn, ns, faq_id, vectors)
        await self._record_version(conn, row, actor, reason)
        return dict(row)

    async def create(self, tenant_id: str, namespace: str, faq: FaqInput, actor: str | None) -> dict[str, Any]:
        if errors := check_faq(faq):
            raise InvalidInput("the FAQ is invalid", errors=errors)
        ns = await self.namespace_for_write(tenant_id, namespace)
        (vectors,) = await self.vectors(ns, [faq])
        async with self.db.connection() as conn, conn.transaction():
            row = await self.insert(conn, ns, faq, vectors, actor=actor)
        return {**row, "vector_embedding_status": "generated"}

    async def apply_update(
        self,
        conn: AsyncConnection[DictRow],
        ns: Namespace,
        faq_id: str,
        merged: FaqInput,
        vectors: list[tuple[str, str, str]] | None,
        *,
        actor: str | None,
        reason: str | None,
    ) -> dict[str, Any]:
        cur = await conn.execute(
            "UPDATE faqs SET category = %s, question = %s, alternate_questions = %s, answer = %s, tags = %s,"
            f" metadata = %s, version = version + 1, updated_at = now(), updated_by = %s WHERE faq_id = %s"
            f" RETURNING {_FAQ_COLUMNS}",
            (
                merged.category,
                merged.question.strip(),
                list(merged.alternate_questions),
                merged.answer,
                list(merged.tags),
                Jsonb(merged.metadata or {}),
                actor,
                faq_id,
            ),
        )
        row = await cur.fetchone()
        if row is None:  # deleted while it was being updated
            raise NotFound(f"no FAQ '{faq_id}'")
        if vectors is not None:
            await self._store_vectors(conn, ns, faq_id, vectors)
        await self._record_version(conn, row, actor, reason)
        return dict(row)

    async def update(
        self, tenant_id: str, faq_id: str, changes: dict[str, Any], actor: str | None, reason: str | None
    ) -> dict[str, Any]:
        current = await self.get(tenant_id, faq_id)
        allowed = {"question", "answer", "category", "alternate_questions", "tags", "metadata"}
        if unknown := set(changes) - allowed:
            raise InvalidInput(
                f"these FAQ fields cannot be changed: {', '.join(sorted(unknown))}",
                errors=[{"path": f"$.{k}", "message": "not an updatable field"} for k in sorted(unknown)],
            )
        changed = [k for k in changes if changes[k] != current[k]]
        merged = faq_input({**current, **changes})
        if errors := check_faq(merged):
            raise InvalidInput("the FAQ is invalid", errors=errors)
        ns = await self.repo.namespace(tenant_id, current["namespace"])
        phrasing_changed = {"question", "answer", "alternate_questions"} & set(changed)
        vectors = (await self.vectors(ns, [merged]))[0] if phrasing_changed else None
        if not changed:
            return {**current, "updated_fields": [], "vector_embedding_status": "unchanged"}
        try:
            async with self.db.connection() as conn, conn.transaction():
                await conn.execute("SELECT 1 FROM faqs WHERE faq_id = %s FOR UPDATE", (faq_id,))
                row = await self.apply_update(conn, ns, faq_id, merged, vectors, actor=actor, reason=reason)
        except UniqueViolation:
            raise _duplicate_question(merged.question, ns.namespace) from None
        status = "regenerated" if vectors is not None else "unchanged"
        return {**row, "updated_fields": sorted(changed), "vector_embedding_status": status}

    async def delete(self, tenant_id: str, faq_id: str) -> dict[str, Any]:
        _check_id(faq_id)
        async with self.db.connection() as conn:
            cur = await conn.execute(
                "DELETE FROM faqs WHERE tenant_id = %s AND faq_id = %s RETURNING faq_id::text, now() AS deleted_at",
                (tenant_id, faq_id),
            )
            row = await cur.fetchone()
        if row is None:
            raise NotFound(f"no FAQ '{faq_id}'")
        return {"faq_id": row["faq_id"], "status": "deleted", "deleted_at": row["deleted_at"]}

    # -- reads ------------------------------------------------------------------------------------

    async def get(self, tenant_id: str, faq_id: str) -> dict[str, Any]:
        _check_id(faq_id)
        async with self.db.connection() as conn:
            cur = await conn.execute(
                f"SELECT {_FAQ_COLUMNS} FROM faqs WHERE tenant_id = %s AND faq_id = %s", (tenant_id, faq_id)
            )
            row = await cur.fetchone()
        if row is None:
            raise NotFound(f"no FAQ '{faq_id}'")
        return dict(row)

    async def list_faqs(
        self, tenant_id: str, namespace: str, *, category: str | None, limit: int, offset: int
    ) -> list[dict[str, Any]]:
        async with self.db.connection() as conn:
            cur = await conn.execute(
                f"SELECT {_FAQ_COLUMNS} FROM faqs WHERE tenant_id = %s AND namespace = %s"
                " AND (%s::text IS NULL OR category = %s) ORDER BY question LIMIT %s OFFSET %s",
                (tenant_id, namespace, category, category, limit, offset),
            )
            return [dict(r) for r in await cur.fetchall()]

    async def versions(self, tenant_id: str, faq_id: str) -> list[dict[str, Any]]:
        await self.get(tenant_id, faq_id)
        async with self.db.connection() as conn:
            cur = await conn.execute(
                "SELECT version, question, answer, alternate_questions, category, tags, changed_by::text, changed_at,"
                " change_reason FROM faq_versions WHERE tenant_id = %s AND faq_id = %s ORDER BY version",
                (tenant_id, faq_id),
            )
            return [dict(r) for r in await cur.fetchall()]

    async def search(
        self,
        tenant_id: str,
        namespace: str,
        query: str,
        *,
        top_k: int = 3,
        filters: dict[str, Any] | None = None,
        confidence_threshold: float = 0.85,
        min_confidence: float = 0.0,
        conversation_id: str | None = None,
        log: bool = True,
    ) -> dict[str, Any]:
        if not query.strip():
            raise InvalidInput("query is empty", errors=[{"path": "$.query", "message": "empty"}])
        ns = await self.repo.namespace(tenant_id, namespace)
        vector = to_pgvector((await embed(get_embedder(ns.embedding_model), [query]))[0])
        params: dict[str, Any] = {"t": tenant_id, "ns": namespace, "q": query, "v": vector}
        where = _faq_filters(filters or {}, params)
        dims = ns.dimension
        async with self.db.connection() as conn:
            cur = await conn.execute(
                "SELECT f.faq_id::text, f.question, f.answer, f.category, f.tags, f.metadata, v.kind,"
                f" 1 - (v.embedding::vector({dims}) <=> %(v)s::vector({dims})) AS sim,"
                " CASE WHEN v.kind = 'answer' THEN 0 ELSE similarity(lower(%(q)s), lower(v.text)) END AS fuzzy"
                " FROM faq_vectors v JOIN faqs f USING (faq_id)"
                f" WHERE v.tenant_id = %(t)s AND v.namespace = %(ns)s AND v.dims = {dims} AND f.status = 'active'"
                f"{where}",
                params,
            )
            rows = await cur.fetchall()
        best: dict[str, tuple[float, str, dict[str, Any]]] = {}
        for row in rows:
            if row["kind"] == "answer":
                confidence, via = ANSWER_WEIGHT * float(row["sim"]), "semantic_search"
            else:
                confidence = max(float(row["sim"]), float(row["fuzzy"]))
                via = row["kind"] if confidence >= DIRECT_MATCH else "semantic_search"
            held = best.get(row["faq_id"])
            if held is None or confidence > held[0]:
                best[row["faq_id"]] = (confidence, via, row)
        ranked = sorted(best.values(), key=lambda item: item[0], reverse=True)
        results = [
            {
                "faq_id": row["faq_id"],
                "question": row["question"],
                "answer": row["answer"],
                "category": row["category"],
                "tags": row["tags"],
                "confidence_score": round(max(0.0, min(1.0, confidence)), 4),
                "matched_via": via,
                "metadata": row["metadata"],
            }
            for confidence, via, row in ranked
            if confidence >= min_confidence
        ][:top_k]
        auto = bool(results) and results[0]["confidence_score"] >= confidence_threshold
        if log:
            top = results[0] if results else None
            async with self.db.connection() as conn:
                await conn.execute(
                    "INSERT INTO faq_search_logs (search_log_id, tenant_id, namespace, query, faq_id, confidence_score,"
                    " matched_via, conversation_id) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                    (
                        uuid.uuid4(),
                        tenant_id,
                        namespace,
                        query[:2000],
                        top["faq_id"] if top else None,
                        top["confidence_score"] if top else None,
                        top["matched_via"] if top else None,
                        conversation_id,
                    ),
                )
        return {
            "namespace": namespace,
            "results": results,
            "total_results": len(results),
            "auto_response_enabled": auto,
            "recommended_answer": results[0]["answer"] if auto else None,
            "confidence_threshold": confidence_threshold,
        }

    async def analytics(self, tenant_id: str, namespace: str, days: int) -> dict[str, Any]:
        await self.repo.namespace(tenant_id, namespace)
        args = {"t": tenant_id, "ns": namespace, "days": days, "low": LOW_CONFIDENCE}
        window = "tenant_id = %(t)s AND namespace = %(ns)s AND searched_at >= now() - make_interval(days => %(days)s)"
        async with self.db.connection() as conn:
            cur = await conn.execute(
                "SELECT (SELECT count(*) FROM faqs WHERE tenant_id = %(t)s AND namespace = %(ns)s"
                "   AND status = 'active') AS total_faqs,"
                f" count(*) AS total_searches, avg(confidence_score) AS avg_confidence,"
                " (now() - make_interval(days => %(days)s))::date AS since, now()::date AS until"
                f" FROM faq_search_logs WHERE {window}",
                args,
            )
            totals = returned(await cur.fetchone(), "the FAQ analytics totals")
            cur = await conn.execute(
                "SELECT l.faq_id::text, f.question, count(*) AS hit_count, avg(l.confidence_score) AS avg_confidence"
                f" FROM faq_search_logs l JOIN faqs f USING (faq_id) WHERE l.{window.replace(' AND ', ' AND l.')}"
                " AND l.confidence_score >= %(low)s GROUP BY l.faq_id, f.question ORDER BY hit_count DESC LIMIT 10",
                args,
            )
            top = await cur.fetchall()
            cur = await conn.execute(
                "SELECT min(query) AS query, count(*) AS search_count, avg(coalesce(confidence_score, 0))"
                f" AS avg_confidence FROM faq_search_logs WHERE {window}"
                " AND coalesce(confidence_score, 0) < %(low)s GROUP BY lower(btrim(query))"
                " ORDER BY search_count DESC, avg_confidence LIMIT 20",
                args,
            )
            low = await cur.fetchall()
            cur = await conn.execute(
                "SELECT coalesce(category, 'uncategorized') AS category, count(*) AS n FROM faqs"
                " WHERE tenant_id = %(t)s AND namespace = %(ns)s AND status = 'active' GROUP BY 1 ORDER BY 1",
                args,
            )
            categories = await cur.fetchall()
        return {
            "namespace": namespace,
            "date_range": f"{totals['since']} to {totals['until']}",
            "total_faqs": totals["total_faqs"],
            "total_searches": totals["total_searches"],
            "avg_confidence_score": _round(totals["avg_confidence"]),
            "top_faqs": [{**r, "avg_confidence": _round(r["avg_confidence"])} for r in top],
            "low_confidence_queries": [
                {
                    "query": r["query"],
                    "search_count": r["search_count"],
                    "avg_confidence": _round(r["avg_confidence"]),
                    "suggestion": f"Create an FAQ for: {r['query']}",
                }
                for r in low
            ],
            "category_breakdown": {r["category"]: r["n"] for r in categories},
        }


def faq_input(data: dict[str, Any]) -> FaqInput:
    return FaqInput(
        question=str(data.get("question") or ""),
        answer=str(data.get("answer") or ""),
        category=data.get("category") or None,
        alternate_questions=tuple(str(a).strip() for a in data.get("alternate_questions") or () if str(a).strip()),
        tags=tuple(str(t).strip() for t in data.get("tags") or () if str(t).strip()),
        metadata=dict(data.get("metadata") or {}),
    )


def _faq_filters(filters: dict[str, Any], params: dict[str, Any]) -> str:
    parts = []
    meta: dict[str, Any] = {}
    for key, value in filters.items():
        if key == "category":
            values = value if isinstance(value, list) else [value]
            if not all(isinstance(v, str) for v in values):
                raise InvalidInput(
                    "filter category must be a string or a list of strings",
                    errors=[{"path": "$.filters.category", "message": "expected string(s)"}],
                )
            params["f_cat"] = values
            parts.append("f.category = ANY(%(f_cat)s)")
        elif key == "tags":
            values = value if isinstance(value, list) else [value]
            params["f_tags"] = [str(v) for v in values]
            parts.append("f.tags && %(f_tags)s")
        elif isinstance(value, (str, int, float, bool)):
            meta[key] = value
        else:
            raise InvalidInput(
                f"filter $.filters.{key} must be a string, number or boolean",
                errors=[{"path": f"$.filters.{key}", "message": "expected a scalar"}],
            )
    if meta:
        params["f_meta"] = Jsonb(meta)
        parts.append("f.metadata @> %(f_meta)s")
    return "".join(f" AND {p}" for p in parts)


def _check_id(faq_id: str) -> None:
    try:
        uuid.UUID(faq_id)
    except ValueError:
        raise NotFound(f"no FAQ '{faq_id}'") from None


def _round(value: Any) -> float | None:
    return None if value is None else round(float(value), 4)


_DAYS = re.compile(r"^(\d{1,4})d$")


def parse_days(date_range: str) -> int:
    found = _DAYS.match(date_range.strip())
    if not found or not 1 <= int(found.group(1)) <= 3650:
        raise InvalidInput(
            f"date_range '{date_range}' must look like '30d' (1 to 3650 days)",
            errors=[{"path": "date_range", "message": "expected e.g. 30d"}],
        )
    return int(found.group(1))
