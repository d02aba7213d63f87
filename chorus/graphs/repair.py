"""Repair tool calls left without results by a cancelled or crashed run, so the next turn works."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from langchain_core.messages import AIMessage, AnyMessage, BaseMessage, ToolCall, ToolMessage

from chorus.agents.tools.ledger import Outcome
from chorus.graphs.nodes.tools import tool_message

CANCELLED = "This tool call did not complete: the previous turn was cancelled before it finished."


def unanswered_tool_calls(messages: Sequence[BaseMessage]) -> list[ToolCall]:
    """The tool calls of the last AI message that never got a result."""
    answered = {m.tool_call_id for m in messages if isinstance(m, ToolMessage)}
    last_ai = next((m for m in reversed(messages) if isinstance(m, AIMessage)), None)
    if last_ai is None:
        return []
    return [c for c in last_ai.tool_calls if c.get("id") and c["id"] not in answered]


def dangling_tool_calls(
    messages: Sequence[BaseMessage], recorded: Mapping[str, Outcome] | None = None
) -> list[ToolMessage]:
    """Tool results to append for the tool calls of the last AI message that never got one. A call the
    tool-call ledger recorded is answered with what it recorded (its result, or that its outcome is
    unknown), not as cancelled: a side effect that happened must not look as if it had not."""
    recorded = recorded or {}
    return [
        tool_message(recorded.get(str(c["id"]), Outcome(error=CANCELLED)), tool_call_id=str(c["id"]), name=c["name"])
        for c in unanswered_tool_calls(messages)
    ]


def model_view(messages: Sequence[AnyMessage]) -> list[AnyMessage]:
    """The history as a model may see it: every tool call followed by its result."""
    answered = {m.tool_call_id for m in messages if isinstance(m, ToolMessage)}
    out: list[AnyMessage] = []
    for m in messages:
        out.append(m)
        if isinstance(m, AIMessage):
            for c in m.tool_calls:
                if c.get("id") and c["id"] not in answered:
                    out.append(ToolMessage(content=CANCELLED, tool_call_id=c["id"], name=c["name"], status="error"))
    return out
