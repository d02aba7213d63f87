"""Request bodies of the knowledge API (seed 001 §17 field names)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from chorus.agents.knowledge.chunking import DEFAULT_CHUNK_SIZE

Namespace = Annotated[str, Field(min_length=1, max_length=64, examples=["acme_support"])]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class IngestBody(Body):
    document_id: Annotated[str, Field(min_length=1, max_length=200)]
    content: Annotated[str, Field(min_length=1)]
    namespace: Namespace
    title: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    chunking_strategy: Literal["semantic", "fixed_size", "paragraph"] = "paragraph"
    chunk_size: Annotated[int, Field(ge=20, le=2000, description="target chunk size in words")] = DEFAULT_CHUNK_SIZE


class QueryBody(Body):
    query: Annotated[str, Field(min_length=1, max_length=2000)]
    namespace: Namespace
    top_k: Annotated[int, Field(ge=1, le=50)] = 5
    filters: dict[str, Any] | None = Field(
        default=None,
        description="document_type / category (string or list), date_range {start, end} (ISO dates); any other "
        "key must equal the document's metadata value",
    )
    min_score: Annotated[float, Field(ge=0, le=1)] = 0.0
    min_similarity: Annotated[float, Field(ge=-1, le=1)] = -1.0
    enable_graph_rag: bool = Field(default=False, description="accepted for seed compatibility; not supported")


class FaqBody(Body):
    namespace: Namespace
    question: Annotated[str, Field(min_length=1, max_length=1000)]
    answer: Annotated[str, Field(min_length=1, max_length=20_000)]
    category: Annotated[str, Field(max_length=200)] | None = None
    alternate_questions: Annotated[list[Annotated[str, Field(max_length=1000)]], Field(max_length=50)] = Field(
        default_factory=list
    )
    tags: Annotated[list[Annotated[str, Field(max_length=100)]], Field(max_length=50)] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)


class FaqPatch(Body):
    question: Annotated[str, Field(min_length=1, max_length=1000)] | None = None
    answer: Annotated[str, Field(min_length=1, max_length=20_000)] | None = None
    category: Annotated[str, Field(max_length=200)] | None = None
    alternate_questions: list[Annotated[str, Field(max_length=1000)]] | None = None
    tags: list[Annotated[str, Field(max_length=100)]] | None = None
    metadata: dict[str, Any] | None = None
    change_reason: Annotated[str, Field(max_length=500)] | None = None


class FaqSearchBody(Body):
    query: Annotated[str, Field(min_length=1, max_length=2000)]
    namespace: Namespace
    top_k: Annotated[int, Field(ge=1, le=50)] = 3
    filters: dict[str, Any] | None = None
    confidence_threshold: Annotated[float, Field(ge=0, le=1, description="auto-response threshold")] = 0.85
    min_confidence: Annotated[float, Field(ge=0, le=1)] = 0.0
    conversation_id: Annotated[str, Field(max_length=200)] | None = None


class ReembedBody(Body):
    embedding_model: Annotated[str, Field(examples=["all-MiniLM-L6-v2", "text-embedding-3-small"])]
