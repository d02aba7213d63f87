"""Human escalation: detect the configured triggers in a user turn and word the handoff."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any

from chorus.agents.configs.escalation_rules import EscalationRule, parse_trigger
from chorus.agents.configs.models import HumanEscalation

_REQUESTS_HUMAN = re.compile(
    r"\b(human|real person|live (agent|person)|representative|operator|"
    r"(talk|speak|chat) (to|with) (an? |the |your )?(agent|someone|somebody|person|doctor|nurse|manager|staff))\b",
    re.IGNORECASE,
)
DEFAULT_EMERGENCY = [
    "emergency",
    "chest pain",
    "can't breathe",
    "cannot breathe",
    "bleeding heavily",
    "unconscious",
    "overdose",
    "stroke",
    "heart attack",
    "suicide",
]

_HANDOFF = {
    "queue_callback": "I'm connecting you with a human agent. If no one is free right away, we'll queue a "
    "callback and contact you shortly.",
    "take_voicemail": "I'm transferring you to a member of our team. If no one is free, you can leave a "
    "voicemail and we'll call you back.",
}
_DEFAULT_HANDOFF = "I'm handing this conversation to a human agent, who will reply here shortly."
SUGGEST_HANDOFF = "Would you like me to connect you with a human agent?"


@cache
def _vader() -> Any:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


def sentiment_score(text: str) -> float:
    """0 (very negative) .. 1 (very positive), from VADER's compound score."""
    compound = float(_vader().polarity_scores(text)["compound"])
    return (compound + 1) / 2


@dataclass(frozen=True)
class Escalator:
    rules: list[EscalationRule]
    emergency_keywords: list[str]
    unavailable_action: str | None
    handoff_message: str | None

    @classmethod
    def from_config(cls, cfg: HumanEscalation | None) -> Escalator | None:
        if cfg is None or not cfg.enabled:
            return None
        rules = [r for t in cfg.triggers if (r := parse_trigger(t)) is not None]
        return cls(
            rules,
            [k.lower() for k in (cfg.emergency_keywords or DEFAULT_EMERGENCY)],
            cfg.unavailable_action,
            cfg.handoff_message,
        )

    def check_user_turn(self, text: str) -> tuple[EscalationRule, str] | None:
        """The first rule the user's message fires, with the reason, or None."""
        sentiment: float | None = None
        for rule in self.rules:
            if rule.kind == "requests_human" and _REQUESTS_HUMAN.search(text):
                return rule, "customer asked for a human"
            if rule.kind == "emergency" and any(k in text.lower() for k in self.emergency_keywords):
                return rule, "emergency keywords detected"
            if rule.kind == "sentiment_below" and rule.threshold is not None:
                sentiment = sentiment_score(text) if sentiment is None else sentiment
                if sentiment < rule.threshold:
                    return rule, f"sentiment {sentiment:.2f} below {rule.threshold}"
        return None

    def check_confidence(self, confidence: float | None) -> EscalationRule | None:
        if confidence is None:
            return None
        for rule in self.rules:
            if rule.kind == "confidence_below" and rule.threshold is not None and confidence < rule.threshold:
                return rule
        return None

    def handoff_text(self) -> str:
        if self.handoff_message:
            return self.handoff_message
        return _HANDOFF.get(self.unavailable_action or "", _DEFAULT_HANDOFF)

    def after_handoff_text(self) -> str:
        if self.unavailable_action == "queue_callback":
            return "A human agent has this conversation now; if no one is free, we'll call you back shortly."
        return "A human agent has this conversation now and will reply here shortly."


def escalation_record(reason: str, trigger: str, action: str, unavailable_action: str | None) -> dict[str, Any]:
    return {
        "reason": reason,
        "trigger": trigger,
        "action": action,
        "unavailable_action": unavailable_action,
        "at": datetime.now(UTC).isoformat(),
    }
