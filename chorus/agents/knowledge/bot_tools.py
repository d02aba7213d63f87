"""The knowledge tools bots call: `knowledge_search` (documents) and `faq_search` (FAQs).

The registry holds general versions that take a `namespace` (for /api/v1/tools); a bot whose config has
a `knowledge` block gets versions bound to its namespaces, so the model only supplies the question.
Results carry a citation (document title, page, lines) that the answer should quote.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from chorus.agents.configs.models import KnowledgeConfig
from chorus.agents.errors import NotFound, ToolError
from chorus.agents.knowledge.faq import FaqService
from chorus.agents.knowledge.repository import KnowledgeRepository
from chorus.agents.knowledge.search import hybrid_search
from chorus.agents.tools.registry import RegisteredTool, ToolContext, ToolFn, ToolRegistry, schema_from_signature

KNOWLEDGE_SEARCH = "knowledge_search"
FAQ_SEARCH = "faq_search"
KNOWLEDGE_TOOLS = (KNOWLEDGE_SEARCH, FAQ_SEARCH)
MIN_SIMILARITY = 0.3  # below this a chunk is not about the question; better to say so than to quote it
_KB_DESCRIPTION = (
    "Search the knowledge base (help articles, policies, manuals) for the answer to a customer's question. "
    "Cite the source of what you use."
)
_FAQ_DESCRIPTION = "Look up the frequently asked questions for a ready answer to a customer's question."
Question = Annotated[str, Field(description="the customer's question, in their words", min_length=1)]
TopK = Annotated[int, Field(ge=1, le=10, description="how many passages to return")]


async def _search_documents(ctx: ToolContext, namespaces: list[str], query: str, top_k: int) -> dict[str, Any]:
    repo = KnowledgeRepository(ctx.db)
    found: list[dict[str, Any]] = []
    for name in namespaces:
        ns = await repo.find_namespace(ctx.tenant_id, name)
        if ns is None:
            continue
        result = await hybrid_search(ctx.db, ns, query, top_k=top_k, min_similarity=MIN_SIMILARITY)
        found.extend({**r, "namespace": name} for r in result["results"])
    found.sort(key=lambda r: r["score"], reverse=True)
    results = [
        {
            "content": r["content"],
            "source": r["metadata"]["title"],
            "citation": r["citation"],
            "document_id": r["document_id"],
            "namespace": r["namespace"],
            "score": r["score"],
            "similarity": r["similarity"],
        }
        for r in found[:top_k]
    ]
    if not results:
        return {"results": [], "note": "nothing in the knowledge base answers this; say so, do not guess"}
    return {"results": results, "note": "answer only from these passages and cite them as [citation]"}


async def _search_faqs(ctx: ToolContext, namespace: str, query: str, threshold: float | None) -> dict[str, Any]:
    service = FaqService(ctx.db, KnowledgeRepository(ctx.db))
    try:
        found = await service.search(
            ctx.tenant_id,
            namespace,
            query,
            top_k=3,
            confidence_threshold=threshold if threshold is not None else 0.85,
            min_confidence=0.5,
            conversation_id=ctx.thread_id,
        )
    except NotFound:
        return {"results": [], "note": f"the FAQ namespace '{namespace}' has no FAQs yet"}
    results = [
        {k: r[k] for k in ("faq_id", "question", "answer", "confidence_score", "matched_via")} for r in found["results"]
    ]
    return {"results": results, "recommended_answer": found["recommended_answer"]}


async def knowledge_search(ctx: ToolContext, query: Question, namespace: str, top_k: TopK = 3) -> dict[str, Any]:
    if await KnowledgeRepository(ctx.db).find_namespace(ctx.tenant_id, namespace) is None:
        raise ToolError(f"no knowledge namespace '{namespace}'")
    return await _search_documents(ctx, [namespace], query, top_k)


async def faq_search(ctx: ToolContext, query: Question, namespace: str) -> dict[str, Any]:
    return await _search_faqs(ctx, namespace, query, None)


def register(registry: ToolRegistry) -> None:
    registry.tool(KNOWLEDGE_SEARCH, _KB_DESCRIPTION, side_effects=False)(knowledge_search)
    registry.tool(FAQ_SEARCH, _FAQ_DESCRIPTION, side_effects=False)(faq_search)


_BOUND_SCHEMAS: dict[str, dict[str, Any]] = {}


def _bound_schema(name: str, fn: ToolFn) -> dict[str, Any]:
    """The input schema of bound tool `name`, made once: every bot's closure comes from the same def, so has the
    same signature, and building the schema (a pydantic model each time) was a quarter of compiling a bot."""
    schema = _BOUND_SCHEMAS.get(name)
    if schema is None:
        schema = _BOUND_SCHEMAS[name] = schema_from_signature(fn)
    return schema


def bound_tools(knowledge: KnowledgeConfig | None) -> dict[str, RegisteredTool]:
    """The knowledge tools a bot gets from its `knowledge` block, bound to its namespaces."""
    if knowledge is None:
        return {}
    tools: dict[str, RegisteredTool] = {}
    if knowledge.namespaces:
        namespaces = list(knowledge.namespaces)

        async def bound_knowledge_search(ctx: ToolContext, query: Question, top_k: TopK = 3) -> dict[str, Any]:
            return await _search_documents(ctx, namespaces, query, top_k)

        tools[KNOWLEDGE_SEARCH] = RegisteredTool(
            KNOWLEDGE_SEARCH,
            _KB_DESCRIPTION,
            _bound_schema(KNOWLEDGE_SEARCH, bound_knowledge_search),
            bound_knowledge_search,
            side_effects=False,
        )
    if knowledge.faq_namespace:
        faq_namespace, threshold = knowledge.faq_namespace, knowledge.auto_answer_threshold

        async def bound_faq_search(ctx: ToolContext, query: Question) -> dict[str, Any]:
            return await _search_faqs(ctx, faq_namespace, query, threshold)

        tools[FAQ_SEARCH] = RegisteredTool(
            FAQ_SEARCH,
            _FAQ_DESCRIPTION,
            _bound_schema(FAQ_SEARCH, bound_faq_search),
            bound_faq_search,
            side_effects=False,
        )
    return tools


async def faq_auto_answer(ctx: ToolContext, knowledge: KnowledgeConfig | None, question: str) -> dict[str, Any] | None:
    """With auto-answer on (faq_namespace and auto_answer_threshold set), the FAQ that answers `question`
    with at least that confidence, else None."""
    if knowledge is None or not knowledge.faq_namespace or knowledge.auto_answer_threshold is None:
        return None
    service = FaqService(ctx.db, KnowledgeRepository(ctx.db))
    try:
        found = await service.search(
            ctx.tenant_id,
            knowledge.faq_namespace,
            question,
            top_k=1,
            confidence_threshold=knowledge.auto_answer_threshold,
            conversation_id=ctx.thread_id,
        )
    except NotFound:
        return None
    if not found["auto_response_enabled"]:
        return None
    top: dict[str, Any] = found["results"][0]
    return top
