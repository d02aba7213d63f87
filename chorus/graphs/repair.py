"""Repair tool calls left without results by a cancelled or crashed run, so the next turn works."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from langchain_core.messages import AIMessage, AnyMessage, BaseMessage, ToolMessage

CANCELLED = "This tool call did not complete: the previous turn was cancelled before it finished."


def dangling_tool_calls(messages: Sequence[BaseMessage]) -> list[ToolMessage]:
    """Tool results to append for the tool calls of the last AI message that never got one."""
    answered = {m.tool_call_id for m in messages if isinstance(m, ToolMessage)}
    last_ai = next((m for m in reversed(messages) if isinstance(m, AIMessage)), None)
    if last_ai is None:
        return []
    return [
        ToolMessage(content=CANCELLED, tool_call_id=c["id"], name=c["name"], status="error", id=str(uuid.uuid4()))
        for c in last_ai.tool_calls
        if c.get("id") and c["id"] not in answered
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
