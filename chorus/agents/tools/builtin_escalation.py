"""`escalate_to_human`: hands the conversation to a person; the thread is marked escalated.

It changes only the conversation's state, which is checkpointed with the tools step, so running it again
after a crash is harmless: it is not a side-effecting tool."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import Field

from chorus.agents.tools.registry import ToolContext, ToolRegistry, ToolResult


async def escalate_to_human(
    ctx: ToolContext,
    reason: Annotated[str, Field(description="Why a human should take over")] = "customer asked for a human",
) -> ToolResult:
    escalation = {
        "reason": reason,
        "trigger": "escalate_tool",
        "action": "immediate_handoff",
        "at": datetime.now(UTC).isoformat(),
    }
    return ToolResult(content={"status": "escalated", "reason": reason}, state_update={"escalation": escalation})


def register(registry: ToolRegistry) -> None:
    registry.tool(
        "escalate_to_human",
        "Hand the conversation to a human agent, e.g. when the customer asks for a person or is upset.",
        side_effects=False,
    )(escalate_to_human)
