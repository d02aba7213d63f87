"""Parse human_escalation trigger conditions ("sentiment_score < 0.3", "user_requests_human", …)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from chorus.agents.configs.models import EscalationTrigger

TriggerKind = Literal["requests_human", "emergency", "sentiment_below", "confidence_below"]
_THRESHOLD = re.compile(r"^\s*(sentiment(?:_score)?|ai_confidence|confidence)\s*<\s*([0-9]*\.?[0-9]+)\s*$")
_REQUESTS = re.compile(r"^\w*_?requests?_(human|agent|person|doctor|nurse|manager|representative|operator)$")
_HANDOFF_ACTIONS = {"immediate_handoff", "immediate_transfer", "handoff", "transfer", "escalate"}


@dataclass(frozen=True)
class EscalationRule:
    kind: TriggerKind
    immediate: bool
    threshold: float | None = None
    source: str = ""


def parse_trigger(trigger: EscalationTrigger) -> EscalationRule | None:
    """The rule a trigger stands for, or None when Chorus does not understand the condition."""
    immediate = trigger.action in _HANDOFF_ACTIONS
    cond = trigger.condition.strip().lower()
    if m := _THRESHOLD.match(cond):
        kind: TriggerKind = "sentiment_below" if m.group(1).startswith("sentiment") else "confidence_below"
        return EscalationRule(kind, immediate, float(m.group(2)), trigger.condition)
    if _REQUESTS.match(cond):
        return EscalationRule("requests_human", immediate, source=trigger.condition)
    if cond in {"emergency_keywords_detected", "emergency_detected", "emergency"}:
        return EscalationRule("emergency", immediate, source=trigger.condition)
    return None
