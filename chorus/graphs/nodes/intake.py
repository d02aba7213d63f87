"""Intake: first node of every turn. Captures PII and fires the escalation triggers of the user turn."""

from __future__ import annotations

import uuid
from typing import Any

from langchain_core.messages import AIMessage, HumanMessage
from langgraph.graph import END
from langgraph.types import Command

from chorus.agents.observability.metrics import ESCALATIONS
from chorus.agents.pii import extract_pii
from chorus.graphs.escalation import Escalator, escalation_record
from chorus.graphs.state import BotState


def make_intake(*, pii_fields: list[str], escalator: Escalator | None) -> Any:
    async def intake(state: BotState) -> Command[Any]:
        messages = state.get("messages", [])
        last = messages[-1] if messages else None
        text = str(last.content) if isinstance(last, HumanMessage) else ""
        update: dict[str, Any] = {"suggest_handoff": False}
        if pii_fields and text and (found := extract_pii(text, pii_fields)):
            update["pii"] = found
        if escalator is None:
            return Command(update=update, goto="agent")
        if state.get("escalated"):
            reply = AIMessage(content=escalator.after_handoff_text(), id=str(uuid.uuid4()))
            return Command(update={**update, "messages": [reply]}, goto=END)
        fired = escalator.check_user_turn(text) if text else None
        if fired is not None:
            rule, reason = fired
            if rule.immediate:
                ESCALATIONS.labels(rule.kind).inc()
                record = escalation_record(reason, rule.source, "immediate_handoff", escalator.unavailable_action)
                reply = AIMessage(content=escalator.handoff_text(), id=str(uuid.uuid4()))
                return Command(
                    update={**update, "escalated": True, "escalation": record, "messages": [reply]}, goto=END
                )
            update["suggest_handoff"] = True
        return Command(update=update, goto="agent")

    return intake
