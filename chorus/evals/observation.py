"""What one trial of a case observed: the bot's answers, its tool calls, escalation, latency and tokens, and
what its knowledge tools retrieved (the retrieval context of the judged and retrieval metrics)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ToolCall:
    name: str
    arguments: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "arguments": self.arguments}


@dataclass(frozen=True)
class Retrieved:
    """One passage a knowledge tool returned (knowledge_search: a document chunk; faq_search: an FAQ), in the
    order the bot received them."""

    document_id: str
    title: str
    content: str


@dataclass(frozen=True)
class ModelUsage:
    model: str
    input_tokens: int
    output_tokens: int


@dataclass(frozen=True)
class Observation:
    output: str  # the bot's last answer (of the last user turn)
    answers: tuple[str, ...] = ()  # its answer to each user turn
    tool_calls: tuple[ToolCall, ...] = ()
    escalated: bool = False
    latency_ms: float | None = 0.0  # the whole case: every turn, from submit to end (None: not known)
    tokens: int | None = None  # input + output tokens of every run (None: not reported)
    usage: tuple[ModelUsage, ...] | None = None  # the same by model (None: not reported)
    user_turns: tuple[str, ...] = ()  # the user's turns, as sent
    retrieved: tuple[Retrieved, ...] = ()  # every knowledge tool result of the conversation, in order
