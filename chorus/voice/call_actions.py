"""What a graph run asks the call to do: end it, transfer it, or (when the graph escalated) hand it to a person.

GraphLLM streams the graph's node updates next to its tokens; this reads the call actions out of them: the
results of the call-control tools (chorus/agents/tools/builtin_call.py) and the graph's `escalated` flag.
The voice session carries them out after the answer is spoken (call_control.py)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from langchain_core.messages import ToolMessage

from chorus.agents.tools.builtin_call import ACTION_KEY, CALL_TOOLS, END_CALL, TRANSFER_CALL

ActionKind = Literal["end_call", "transfer", "escalate"]


@dataclass(frozen=True)
class CallAction:
    kind: ActionKind
    destination: str | None = None  # transfer: the destination's name, checked by the tool
    reason: str | None = None  # escalate: why the graph escalated


def _tool_action(message: ToolMessage) -> CallAction | None:
    if message.name not in CALL_TOOLS or message.status == "error" or not isinstance(message.content, str):
        return None
    try:
        payload = json.loads(message.content)
    except ValueError:
        return None
    if not isinstance(payload, dict):
        return None
    if payload.get(ACTION_KEY) == END_CALL:
        return CallAction("end_call")
    if payload.get(ACTION_KEY) == TRANSFER_CALL and isinstance(payload.get("destination"), str):
        return CallAction("transfer", destination=payload["destination"])
    return None


def call_actions_in(update: Any) -> list[CallAction]:
    """The call actions in one item of the graph's `updates` stream ({node: the node's state update})."""
    if not isinstance(update, dict):
        return []
    actions: list[CallAction] = []
    for values in update.values():
        if not isinstance(values, dict):
            continue
        if values.get("escalated") is True:
            record = values.get("escalation")
            reason = record.get("reason") if isinstance(record, dict) else None
            actions.append(CallAction("escalate", reason=reason if isinstance(reason, str) else None))
        for message in values.get("messages") or []:
            if isinstance(message, ToolMessage) and (action := _tool_action(message)) is not None:
                actions.append(action)
    return actions
