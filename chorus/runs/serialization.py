"""JSON for the API: state values, messages and stream chunks, in the LangGraph Agent Server's shapes."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from uuid import UUID

import orjson
from langchain_core.messages import BaseMessage
from pydantic import BaseModel


def _default(obj: Any) -> Any:
    if isinstance(obj, BaseMessage | BaseModel):
        return obj.model_dump(mode="json")
    if isinstance(obj, datetime | date):
        return obj.isoformat()
    if isinstance(obj, UUID):
        return str(obj)
    if isinstance(obj, set | frozenset | tuple):
        return list(obj)
    return repr(obj)


def dumps(value: Any) -> bytes:
    return orjson.dumps(value, default=_default, option=orjson.OPT_NON_STR_KEYS)


def jsonable(value: Any) -> Any:
    result: Any = orjson.loads(dumps(value))
    return result


def stream_metadata(meta: dict[str, Any]) -> dict[str, Any]:
    """The JSON-safe part of LangGraph's per-token metadata (node, step, tags, …)."""
    return {
        k: v
        for k, v in meta.items()
        if isinstance(v, str | int | float | bool | type(None)) or (k == "tags" and isinstance(v, list))
    }
