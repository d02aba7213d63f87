"""Bodies and answers of the Agent Server store API, as the official SDKs send and read them.

Namespaces travel as lists of labels in JSON bodies and joined with dots in `GET /store/items`'s query,
so a label may not contain a dot; every bound here answers a 422 that names the field.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from langgraph.store.base.embed import tokenize_path
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

MAX_DEPTH = 10  # labels in a namespace
MAX_LABEL = 128  # characters in a label
MAX_KEY = 512
MAX_TTL_MINUTES = 525_600  # a year
MAX_INDEX_FIELDS = 32
MAX_FILTER_KEYS = 32
MAX_OFFSET = 100_000
FILTER_OPERATORS = ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte")


def label_problem(label: str) -> str | None:
    """Why `label` cannot be a namespace label, or None."""
    if not label:
        return "a namespace label cannot be empty"
    if len(label) > MAX_LABEL:
        return f"a namespace label has at most {MAX_LABEL} characters"
    if "." in label:
        return "a namespace label cannot contain '.': the SDKs join labels with dots"
    if "\x00" in label:
        return "a namespace label cannot contain NUL characters"
    return None


def _label(value: str) -> str:
    if problem := label_problem(value):
        raise ValueError(problem)
    return value


def _key(value: str) -> str:
    if "\x00" in value:
        raise ValueError("a key cannot contain NUL characters")
    return value


def _field_path(value: str) -> str:
    if value != "$":
        try:
            tokenize_path(value)
        except Exception as exc:  # the tokenizer's own complaint, whatever it raises
            raise ValueError(f"'{value}' is not a field path such as 'text', 'a.b' or 'items[*].text': {exc}") from None
    return value


def _filter(value: dict[str, Any] | None) -> dict[str, Any] | None:
    for field, condition in (value or {}).items():
        if not field:
            raise ValueError("a filter names a field of the value; an empty name matches nothing")
        if isinstance(condition, dict):
            unknown = sorted(set(condition) - set(FILTER_OPERATORS))
            if unknown or not condition:
                raise ValueError(
                    f"filter '{field}': an object is a set of comparisons; use {', '.join(FILTER_OPERATORS)}"
                    + (f" (not {', '.join(unknown)})" if unknown else "")
                )
    return value


Label = Annotated[str, AfterValidator(_label)]
Namespace = Annotated[list[Label], Field(min_length=1, max_length=MAX_DEPTH, examples=[["users", "u-123"]])]
NamespacePrefix = Annotated[list[Label], Field(max_length=MAX_DEPTH)]
Key = Annotated[str, Field(min_length=1, max_length=MAX_KEY), AfterValidator(_key)]
FieldPath = Annotated[str, Field(min_length=1, max_length=256), AfterValidator(_field_path)]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PutItemBody(Body):
    namespace: Namespace
    key: Key
    value: dict[str, Any] = Field(description="a JSON object; its size is bounded by CHORUS_MAX_BODY_BYTES")
    index: Literal[False] | Annotated[list[FieldPath], Field(min_length=1, max_length=MAX_INDEX_FIELDS)] | None = Field(
        default=None,
        description="false: not found by semantic search; a list of field paths: embed those fields; "
        "absent: embed the whole value",
    )
    ttl: Annotated[int, Field(strict=True, ge=1, le=MAX_TTL_MINUTES)] | None = Field(
        default=None, description="minutes until the item expires (counted again from each read that refreshes it)"
    )


class DeleteItemBody(Body):
    namespace: Namespace
    key: Key


class SearchItemsBody(Body):
    namespace_prefix: NamespacePrefix = Field(default_factory=list)
    filter: Annotated[dict[str, Any] | None, Field(max_length=MAX_FILTER_KEYS), AfterValidator(_filter)] = Field(
        default=None,
        description="exact values ({'kind': 'note'}) or comparisons ({'stars': {'$gte': 4}}; $gt/$gte/$lt/$lte "
        "compare as text)",
    )
    limit: Annotated[int, Field(ge=1, le=1000)] = 10
    offset: Annotated[int, Field(ge=0, le=MAX_OFFSET)] = 0
    query: Annotated[str, Field(min_length=1, max_length=2000)] | None = Field(
        default=None, description="natural language: ranks by meaning (pgvector), best first, with a score"
    )
    refresh_ttl: bool | None = None


class ListNamespacesBody(Body):
    prefix: NamespacePrefix | None = Field(default=None, description="'*' matches any one label")
    suffix: NamespacePrefix | None = Field(default=None, description="'*' matches any one label")
    max_depth: Annotated[int, Field(ge=1, le=MAX_DEPTH)] | None = None
    limit: Annotated[int, Field(ge=1, le=1000)] = 100
    offset: Annotated[int, Field(ge=0, le=MAX_OFFSET)] = 0


class Item(BaseModel):
    namespace: list[str]
    key: str
    value: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class SearchItem(Item):
    score: float | None = Field(description="similarity to `query` (cosine, 1 is identical); null without a query")


class SearchItemsResponse(BaseModel):
    items: list[SearchItem]


class ListNamespacesResponse(BaseModel):
    namespaces: list[list[str]]
