"""A visitor's own threads: created pinned to one of the publishable key's bots, with the visitor and the key
in the thread's metadata, and found again only by that visitor of that key. Any other thread, of this
tenant or another, is "not found" (never "forbidden": that would tell the visitor it exists)."""

from __future__ import annotations

import json
import uuid
from typing import Any

from langchain_core.messages import BaseMessage

from chorus.agents.configs.repository import ConfigRepository
from chorus.agents.errors import InvalidInput, ThreadNotFound
from chorus.runs.streaming import HIDDEN
from chorus.runs.threads_repository import ThreadRepository
from chorus.webchat.widget_access import WidgetCaller

VISITOR_FIELD = "visitor_id"
KEY_FIELD = "publishable_key_id"
_COLS = "thread_id, assistant_id, config_version, status, metadata, created_at, updated_at"


def _owner(caller: WidgetCaller) -> dict[str, str]:
    assert caller.visitor is not None
    return {VISITOR_FIELD: caller.visitor.visitor_id, KEY_FIELD: caller.key.key_id}


def thread_summary(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "thread_id": str(row["thread_id"]),
        "assistant_id": str(row["assistant_id"]) if row["assistant_id"] else None,
        "status": row["status"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


async def create_visitor_thread(
    threads: ThreadRepository, configs: ConfigRepository, caller: WidgetCaller, assistant_id: str
) -> dict[str, Any]:
    """A new thread of the visitor, pinned at once to the bot's current version (so its state can be read
    before the first message, and no run can name another bot)."""
    stored = await configs.get(caller.tenant_id, assistant_id)
    if stored.product_type != "chatbot":
        raise InvalidInput(f"assistant '{stored.config_id}' is a {stored.product_type}; the widget talks to chatbots")
    metadata = {**_owner(caller), "source": "widget", "assistant_id": stored.config_id, "graph_id": "chatbot"}
    async with threads.db.connection() as conn:
        cur = await conn.execute(
            "INSERT INTO threads (thread_id, tenant_id, assistant_id, config_version, metadata, expires_at)"
            f" VALUES (%s, %s, %s, %s, %s, %s) RETURNING {_COLS}",
            (uuid.uuid4(), caller.tenant_id, stored.config_id, stored.version, json.dumps(metadata), threads.expiry()),
        )
        row = await cur.fetchone()
    assert row is not None
    return row


async def own_thread(threads: ThreadRepository, caller: WidgetCaller, thread_id: str) -> dict[str, Any]:
    """The thread if it is this visitor's (through this key, with one of its bots); else ThreadNotFound."""
    row = await threads.get(caller.tenant_id, thread_id)
    metadata = row["metadata"] or {}
    owner = _owner(caller)
    assistant = str(row["assistant_id"]) if row["assistant_id"] else None
    if any(metadata.get(k) != v for k, v in owner.items()) or assistant not in caller.key.assistant_ids:
        raise ThreadNotFound(thread_id)
    return row


async def list_visitor_threads(threads: ThreadRepository, caller: WidgetCaller, *, limit: int) -> list[dict[str, Any]]:
    async with threads.db.connection() as conn:
        cur = await conn.execute(
            f"SELECT {_COLS} FROM threads WHERE tenant_id = %s AND metadata @> %s ORDER BY updated_at DESC LIMIT %s",
            (caller.tenant_id, json.dumps(_owner(caller)), limit),
        )
        return [thread_summary(r) for r in await cur.fetchall()]


def _text(message: BaseMessage) -> str:
    if isinstance(message.content, str):
        return message.content
    parts = [p.get("text", "") if isinstance(p, dict) else str(p) for p in message.content]
    return "".join(p for p in parts if isinstance(p, str))


def transcript(messages: list[BaseMessage]) -> list[dict[str, Any]]:
    """What the visitor saw: their messages and the bot's answers. Tool calls, tool results and the notes
    they carry for the model stay out (the widget shows tool activity only while a turn streams)."""
    out = []
    for m in messages:
        if m.type not in ("human", "ai"):
            continue
        text = _text(m)
        if text.strip():
            out.append({"id": m.id, "type": m.type, "content": text})
    return out


# Errors of a run that goes on (it moved to another process, or waits for the database): not the visitor's
# concern; the stream continues, or the widget rejoins.
_PASSING_ERRORS = {"server_draining", "run_moved", "database_unavailable"}
_VISITOR_ERROR = "Sorry, something went wrong while answering. Please try again."


def _slim(message: Any) -> dict[str, Any]:
    """A message as the visitor sees it: who, which, and the words (no tool calls, model names, usage)."""
    return {"type": message.type, "id": message.id, "content": _text(message)}


def for_visitor(event: str, data: Any) -> Any:
    """An event of a widget stream as a visitor may see it: an allow-list, field by field. Tokens carry only
    their text (no tool calls or their arguments, no model or usage metadata); state snapshots only the
    transcript and whether the conversation was handed to a person; errors only their code; tool activity
    only as `custom` progress (tool name and status, no result). Everything else stays on the server."""
    base = event.split("|", 1)[0]
    if base == "messages":
        message = data[0] if isinstance(data, list | tuple) and data else None
        if getattr(message, "type", None) not in ("ai", "AIMessageChunk", "human"):
            return HIDDEN
        return [_slim(message), {}]
    if base == "values" and isinstance(data, dict):
        return {"messages": transcript(list(data.get("messages") or [])), "escalated": bool(data.get("escalated"))}
    if base == "custom":
        if isinstance(data, dict) and data.get("type") == "tool":
            return {key: data.get(key) for key in ("type", "tool", "tool_call_id", "status")}
        return HIDDEN  # a node's own custom events may carry anything
    if base == "error":
        code = data.get("error") if isinstance(data, dict) else None
        if code in _PASSING_ERRORS:
            return HIDDEN
        return {"error": "run_failed" if code not in ("timeout", "rate_limited") else code, "message": _VISITOR_ERROR}
    return HIDDEN  # any other mode (updates, debug, events, checkpoints, ...)
