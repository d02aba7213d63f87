"""Tools: runs the tool calls of the last AI message. Failures become tool messages, never a crash.
Side-effecting tools go through the tool-call ledger, so a resumed step does not run them twice.

Each call reports its progress on the `custom` stream mode (`{"type": "tool", "tool", "tool_call_id",
"status": "running" | "done" | "error"}`): what a chat widget shows as "Looking up your order…"."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import json
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

from langchain_core.messages import AIMessage, ToolMessage
from langchain_core.runnables import RunnableConfig
from langgraph.config import get_stream_writer
from langgraph.graph import END
from langgraph.types import Command

from chorus.agents.errors import InvalidInput, ToolError
from chorus.agents.observability.metrics import ESCALATIONS
from chorus.agents.storage.database import Database
from chorus.agents.tools.audit import record_invocation
from chorus.agents.tools.ledger import Outcome, at_most_once
from chorus.agents.tools.registry import RegisteredTool, SecretResolver, ToolContext, ToolResult
from chorus.graphs.escalation import Escalator
from chorus.graphs.state import BotState

log = logging.getLogger(__name__)
# Mocked tool results of an eval run (tool name -> result), put in `configurable` by the run executor from
# what the eval runner stored with the run; a `__` key, which no client's run config may set (runs/schemas.py).
TOOL_MOCKS_KEY = "__chorus_tool_mocks"


def _content(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)


def tool_message(outcome: Outcome, *, tool_call_id: str, name: str) -> ToolMessage:
    if outcome.error is not None:
        return ToolMessage(
            content=outcome.error, tool_call_id=tool_call_id, name=name, status="error", id=str(uuid.uuid4())
        )
    return ToolMessage(content=outcome.content or "", tool_call_id=tool_call_id, name=name, id=str(uuid.uuid4()))


def _progress_writer() -> Callable[[Any], None]:
    """The run's `custom` stream (a no-op unless the run streams it, or outside a graph run)."""
    try:
        return get_stream_writer()
    except RuntimeError:  # called outside a graph run (tests, the tools API)
        return lambda _chunk: None


def make_tools_node(
    *,
    tools: dict[str, RegisteredTool],
    db: Database,
    escalator: Escalator | None,
    secrets: SecretResolver | None = None,
) -> Any:
    async def invoke(tool: RegisteredTool, ctx: ToolContext, args: dict[str, Any]) -> Outcome:
        started = time.perf_counter()
        result: ToolResult | None = None
        try:
            result, _ = await tool.invoke(ctx, args)
            outcome = Outcome(content=_content(result.content), state_update=result.state_update)
        except InvalidInput as exc:
            problems = "; ".join(f"{e['path']}: {e['message']}" for e in exc.errors)
            outcome = Outcome(error=f"{exc.detail}: {problems}" if problems else exc.detail)
        except ToolError as exc:
            outcome = Outcome(error=exc.detail)
        await record_invocation(
            ctx,
            tool_name=tool.name,
            source="graph",
            arguments=args,
            result=result.content if result else None,
            error=outcome.error,
            duration_ms=(time.perf_counter() - started) * 1000,
        )
        return outcome

    async def run_one(
        call: dict[str, Any], ctx: ToolContext, mocks: dict[str, Any]
    ) -> tuple[ToolMessage, dict[str, Any]]:
        name, args, call_id = call["name"], call.get("args") or {}, call["id"]
        ctx = dataclasses.replace(ctx, tool_call_id=call_id)
        progress = _progress_writer()
        progress({"type": "tool", "tool": name, "tool_call_id": call_id, "status": "running"})
        tool = tools.get(name)
        if name in mocks:  # an eval case's mocked result: the real tool is not called
            outcome = Outcome(content=_content(mocks[name]))
            progress({"type": "tool", "tool": name, "tool_call_id": call_id, "status": "done"})
            return tool_message(outcome, tool_call_id=call_id, name=name), outcome.state_update
        if tool is None:
            error = f"unknown tool '{name}'; available: {', '.join(sorted(tools)) or 'none'}"
            await record_invocation(
                ctx, tool_name=name, source="graph", arguments=args, result=None, error=error, duration_ms=0.0
            )
            outcome = Outcome(error=error)
        else:
            outcome = await at_most_once(tool, ctx, functools.partial(invoke, tool, ctx, args))
        status = "error" if outcome.error is not None else "done"
        progress({"type": "tool", "tool": name, "tool_call_id": call_id, "status": status})
        return tool_message(outcome, tool_call_id=call_id, name=name), outcome.state_update

    async def tools_node(state: BotState, config: RunnableConfig) -> Command[Any]:
        last = state["messages"][-1]
        if not isinstance(last, AIMessage):  # routing sends a turn here only after the model asked for tools
            raise RuntimeError(f"the tools step found a {type(last).__name__} last, not the model's tool calls")
        conf = config.get("configurable", {})
        ctx = ToolContext(
            tenant_id=conf["tenant_id"],
            db=db,
            thread_id=conf.get("thread_id"),
            run_id=conf.get("run_id"),
            secrets=secrets,
            environment=conf.get("environment", "production"),
        )
        mocks = conf.get(TOOL_MOCKS_KEY) or {}
        outcomes = await asyncio.gather(*(run_one(dict(c), ctx, mocks) for c in last.tool_calls))
        update: dict[str, Any] = {"messages": [m for m, _ in outcomes]}
        for _, state_update in outcomes:
            if escalation := state_update.get("escalation"):
                update["escalated"] = True
                update["escalation"] = {
                    **escalation,
                    "unavailable_action": escalator.unavailable_action if escalator else None,
                }
        if update.get("escalated"):
            ESCALATIONS.labels("escalate_tool").inc()
            text = escalator.handoff_text() if escalator else "I'm handing this conversation to a human agent."
            update["messages"].append(AIMessage(content=text, id=str(uuid.uuid4())))
            return Command(update=update, goto=END)
        return Command(update=update, goto="agent")

    return tools_node
