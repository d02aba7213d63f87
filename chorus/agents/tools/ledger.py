"""The tool-call ledger: a tool that changes the world runs at most once per tool call.

A run resumed after its process died runs its unfinished tools step again, with the same tool call ids
(the model's message asking for them is checkpointed). So a side-effecting call is recorded as started,
in its own committed statement, before the tool runs, and its outcome after. When the same call comes
again, the recorded outcome is given back without calling; a call started but never finished (the
process died mid-call) is not run again either: the model is told its outcome is unknown.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg

from chorus.agents.errors import ChorusError
from chorus.agents.observability.metrics import TOOL_CALLS_NOT_REPEATED
from chorus.agents.storage.database import Database
from chorus.agents.tools.registry import RegisteredTool, ToolContext

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    """What a tool call told the model: the tool message's content, or its error; and the conversation
    state it changed (escalation)."""

    content: str | None = None
    error: str | None = None
    state_update: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_row(cls, status: str, result: dict[str, Any] | None, tool_name: str) -> Outcome:
        if status == "started":
            return cls(error=unknown_outcome(tool_name))
        result = result or {}
        if status == "failed":
            return cls(error=str(result.get("error", "")))
        return cls(content=str(result.get("content", "")), state_update=dict(result.get("state_update") or {}))


def unknown_outcome(tool_name: str) -> str:
    return (
        f"tool '{tool_name}' was not run: an earlier attempt of this same call was interrupted before its result "
        "was recorded, so whether it took effect is unknown. Do not call it again blindly: first check the "
        "current state (for example, look the order or the booking up), or hand the conversation to a human."
    )


def recorded(tool: RegisteredTool, ctx: ToolContext) -> bool:
    """Whether a call goes through the ledger: a side-effecting tool, called for a tool call of a thread (not
    the tool API's test invocations, which have neither)."""
    return tool.side_effects and ctx.thread_id is not None and ctx.tool_call_id is not None


async def at_most_once(tool: RegisteredTool, ctx: ToolContext, call: Callable[[], Awaitable[Outcome]]) -> Outcome:
    """`call()`'s outcome, recorded; or, for a tool call seen before, its recorded outcome without calling."""
    if not recorded(tool, ctx):
        return await call()
    try:
        earlier = await _begin(ctx, tool.name)
    except (ChorusError, psycopg.Error) as exc:
        detail = exc.detail if isinstance(exc, ChorusError) else type(exc).__name__
        return Outcome(error=f"tool '{tool.name}' was not run: its call could not be recorded first ({detail})")
    if earlier is not None:
        return earlier
    outcome = await call()
    try:
        await _finish(ctx, outcome)
    except (ChorusError, psycopg.Error):
        # The model still gets the result; only a resumed run would see this call as of unknown outcome.
        log.exception("could not record the outcome of a tool call", extra={"tool": tool.name})
    return outcome


async def _begin(ctx: ToolContext, tool_name: str) -> Outcome | None:
    """Record the call as started. None: its first attempt, go ahead. Else the outcome to give instead."""
    key = (ctx.tenant_id, ctx.thread_id, ctx.tool_call_id)
    async with ctx.db.connection() as conn:
        cur = await conn.execute(
            "INSERT INTO tool_calls (tenant_id, thread_id, tool_call_id, tool_name, run_id, status)"
            " VALUES (%s, %s, %s, %s, %s, 'started') ON CONFLICT DO NOTHING RETURNING status",
            (*key, tool_name, ctx.run_id),
        )
        if await cur.fetchone() is not None:
            return None
        # Seen before (rare: only a resumed step gets here). A new statement sees the committed row.
        cur = await conn.execute(
            "SELECT status, result FROM tool_calls WHERE tenant_id = %s AND thread_id = %s AND tool_call_id = %s",
            key,
        )
        row = await cur.fetchone()
    status = row["status"] if row else "started"
    outcome = Outcome.from_row(status, row["result"] if row else None, tool_name)
    TOOL_CALLS_NOT_REPEATED.labels(tool_name, "unknown" if status == "started" else "reused").inc()
    log.warning(
        "tool call seen before; not calling again",
        extra={"tool": tool_name, "tool_call_id": ctx.tool_call_id, "recorded_status": status},
    )
    return outcome


async def _finish(ctx: ToolContext, outcome: Outcome) -> None:
    result: dict[str, Any]
    if outcome.error is not None:
        status, result = "failed", {"error": outcome.error}
    else:
        status, result = "succeeded", {"content": outcome.content, "state_update": outcome.state_update}
    async with ctx.db.connection() as conn:
        await conn.execute(
            "UPDATE tool_calls SET status = %s, result = %s, finished_at = now()"
            " WHERE tenant_id = %s AND thread_id = %s AND tool_call_id = %s AND status = 'started'",
            (status, json.dumps(result, default=str), ctx.tenant_id, ctx.thread_id, ctx.tool_call_id),
        )


async def recorded_outcomes(
    db: Database, *, tenant_id: str, thread_id: str, calls: Sequence[tuple[str, str]]
) -> dict[str, Outcome]:
    """The recorded outcomes of these (tool call id, tool name) pairs, by tool call id; calls never recorded
    (read-only tools, or never started) are absent."""
    if not calls:
        return {}
    names = dict(calls)
    async with db.connection() as conn:
        cur = await conn.execute(
            "SELECT tool_call_id, status, result FROM tool_calls"
            " WHERE tenant_id = %s AND thread_id = %s AND tool_call_id = ANY(%s)",
            (tenant_id, thread_id, list(names)),
        )
        rows = await cur.fetchall()
    return {r["tool_call_id"]: Outcome.from_row(r["status"], r["result"], names[r["tool_call_id"]]) for r in rows}
