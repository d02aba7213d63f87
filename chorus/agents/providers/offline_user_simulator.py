"""The offline model as the simulated user of an eval case (configs/system/user-simulator.json): it follows the
persona's script from the case's brief instead of inventing a customer. A real model reads the same brief.

The brief is the conversation's first message, whose last line is `SIMULATION BRIEF: {json}` (persona, scenario,
opening, script). With `script` a list, it says the opening and then the lines in order, then ends. With
`script` facts ({"order id": "ORD-1001"}), it opens with `opening` (else the scenario), answers each bot
message that names facts with their values (in the order the bot named them, comma-separated), says "I don't
know that." to any other question, and ends once the bot answers without asking anything.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage

BRIEF_MARK = "SIMULATION BRIEF:"
END_MARK = "[END]"
ROLE = "user simulator"  # the config's system_prompt.role, as the system prompt writes it
_DONE = f"Thanks, that's all I needed. {END_MARK}"
_NOT_KNOWN = "I don't know that."


def handles(messages: Sequence[BaseMessage]) -> bool:
    """Whether the model is the user simulator: its system prompt's role says so."""
    return any(
        isinstance(m, SystemMessage) and re.search(rf"^Role:\s*{ROLE}\s*$", str(m.content), re.MULTILINE)
        for m in messages
    )


def brief(messages: Sequence[BaseMessage]) -> dict[str, Any] | None:
    first = next((m for m in messages if isinstance(m, HumanMessage)), None)
    last_line = str(first.content).rsplit("\n", 1)[-1] if first is not None else ""
    if not last_line.startswith(BRIEF_MARK):  # the JSON is the brief's last line (whatever the persona says)
        return None
    try:
        data = json.loads(last_line.removeprefix(BRIEF_MARK))
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _phrase(key: str) -> str:
    return " ".join(re.findall(r"[a-z0-9]+", key.lower()))


def _named_at(fact: str, said: str) -> int | None:
    """Where the bot's message names a fact: the whole phrase, or else every word of it."""
    phrase = _phrase(fact)
    if not phrase:
        return None
    at = said.find(phrase)
    if at >= 0:
        return at
    spots = [re.search(rf"\b{re.escape(w)}\b", said) for w in phrase.split()]
    return min(s.start() for s in spots if s) if all(spots) else None


def respond(messages: Sequence[BaseMessage]) -> AIMessage:
    """The simulated user's next message."""
    data = brief(messages)
    if data is None:
        return AIMessage(f"I have nothing to ask. {END_MARK}")
    spoken = sum(1 for m in messages if isinstance(m, AIMessage))
    script = data.get("script")
    opening = data.get("opening")
    if isinstance(script, list):
        lines = ([opening] if opening else []) + [str(line) for line in script]
        return AIMessage(lines[spoken] if spoken < len(lines) else _DONE)
    if spoken == 0:
        return AIMessage(str(opening or data.get("scenario") or "Hello"))
    said = " ".join(re.findall(r"[a-z0-9?]+", str(messages[-1].content).lower()))
    if "?" not in said:  # the bot answered without asking anything: the user got what they came for
        return AIMessage(_DONE)
    facts = script if isinstance(script, dict) else {}
    named = sorted((at, str(value)) for key, value in facts.items() if (at := _named_at(key, said)) is not None)
    return AIMessage(", ".join(value for _, value in named) if named else _NOT_KNOWN)
