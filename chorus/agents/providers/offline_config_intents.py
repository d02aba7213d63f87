"""The offline model's behaviour as the config editor (docs/offline-model.md): a deterministic parser of
config-editing requests into propose_change edits, "yes, apply it" into apply_change, and answers written
from the tools' results. A real model reads the same tool schemas and needs none of this.

Requests it understands, one per clause ("make it speak slower and add a refund tool" is two): speak
slower / faster / at a speed; the tone; the temperature; add or remove a tool; the greeting; the system
prompt's instructions. Anything else gets an answer listing these, and no change.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Sequence
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage

from chorus.agents.configs.config_chat import EDITOR_TOOLS, is_confirmation

SPEED_PATH = "voice_settings.model_settings.speed"
TEMPERATURE_PATH = "llm_config.parameters.temperature"
_SLOWER, _FASTER = 0.8, 1.25
_TONES = (
    "friendly",
    "formal",
    "casual",
    "empathetic",
    "professional",
    "warm",
    "playful",
    "concise",
    "enthusiastic",
    "calm",
    "polite",
    "cheerful",
    "serious",
)
_ACTIONS = r"add|enable|remove|drop|disable|delete|change|set|make|speak|talk|use|lower|raise|increase|decrease|greet"
# Clauses: split at sentence ends, and at "and" / "," only when an action follows ("warm and friendly" stays).
_SPLIT = re.compile(
    rf"[.;!?]+(?=\s|$)\s*|\n+|,?\s+(?:and|also|then)\s+(?=(?:also\s+)?(?:{_ACTIONS})\b)|,\s*(?=(?:{_ACTIONS})\b)", re.I
)
_NUMBER = re.compile(r"(\d+(?:\.\d+)?)")
_QUOTED = re.compile(r"[\"\u201c'\u2018](.+?)[\"\u201d'\u2019](?=\s|$|[.,!?])", re.S)
CAPABILITIES = (
    "speak slower or faster (or at a speed such as 0.9)",
    "change the tone (e.g. 'make the tone more formal')",
    "change the temperature (e.g. 'set the temperature to 0.3')",
    "add or remove a tool by name",
    "change the greeting (e.g. 'change the greeting to \"Hello!\"')",
    "replace the system prompt's instructions",
)


def _edit(op: str, confidence: float, **fields: Any) -> dict[str, Any]:
    return {"op": op, **fields, "confidence": confidence}


def _speed(clause: str) -> dict[str, Any] | None:
    low = clause.lower()
    if not re.search(r"\b(speak|talk|speech|speed|voice|pace|slow|fast|quick)", low):
        return None
    number = _NUMBER.search(low)
    if number and re.search(r"\b(speed|pace|rate)\b", low):
        return _edit("set", 0.95, path=SPEED_PATH, value=float(number.group(1)))
    if re.search(r"\b(slower|more slowly|slow down|too fast)\b", low):
        return _edit("scale", 0.95, path=SPEED_PATH, factor=_SLOWER, default=1.0)
    if re.search(r"\b(faster|more quickly|quicker|speed up|too slow)\b", low):
        return _edit("scale", 0.95, path=SPEED_PATH, factor=_FASTER, default=1.0)
    return None


def _temperature(clause: str) -> dict[str, Any] | None:
    low = clause.lower()
    if "temperature" not in low:
        return None
    number = _NUMBER.search(low)
    if number:
        return _edit("set", 0.95, path=TEMPERATURE_PATH, value=float(number.group(1)))
    if re.search(r"\b(lower|reduce|decrease|less)\b", low):
        return _edit("scale", 0.85, path=TEMPERATURE_PATH, factor=0.5, default=0.7)
    if re.search(r"\b(raise|increase|higher|more)\b", low):
        return _edit("scale", 0.85, path=TEMPERATURE_PATH, factor=1.5, default=0.7)
    return None


def _tone(clause: str) -> dict[str, Any] | None:
    low = clause.lower()
    said = re.search(r"\btone\b.*?\b(?:to|be|is|into|:)\s+(?:more\s+|a\s+|an\s+|the\s+)?(.+)$", low)
    if said:
        words = re.sub(r"\b(one|tone|please|instead)\b", " ", said.group(1))
        kept = re.sub(r"[^a-z -]", " ", words).split()
        if kept:
            return _edit("set", 0.9, path="system_prompt.tone", value="_".join(kept[:5]))
    low = re.sub(
        r"\b(friendl|warm|calm|polit|seri)(?:i?er)\b",
        lambda m: {"friendl": "friendly", "polit": "polite", "seri": "serious"}.get(m.group(1), m.group(1)),
        low,
    )
    found = [t for t in _TONES if re.search(rf"\b{t}(ly)?\b", low)]
    if found and re.search(r"\b(make|sound|be|more|tone|less)\b", low):
        return _edit("set", 0.85, path="system_prompt.tone", value="_".join(found[:3]))
    return None


def _tool(clause: str) -> dict[str, Any] | None:
    low = clause.lower()
    verb = re.match(
        r"^\s*(?:please\s+|also\s+|can you\s+|could you\s+)*(add|enable|give (?:it|the bot)|bind|remove|drop|disable|"
        r"delete|take away|turn off)\s+(?:the\s+|a\s+|an\s+)?(.+?)\s*$",
        low,
    )
    if not verb or not re.search(r"\btools?\b|_", verb.group(2)):
        return None
    name = re.sub(r"\b(tools?|to the bot|from the bot|to it|from it|please|ability|capability)\b", " ", verb.group(2))
    name = "_".join(re.sub(r"[^a-z0-9_ ]", " ", name).split())
    if not name:
        return None
    op = "add_tool" if verb.group(1) in ("add", "enable", "bind") or verb.group(1).startswith("give") else "remove_tool"
    return _edit(op, 0.88, tool_name=name)


_GREETING = re.compile(r"\b(greeting|first message|welcome message|greet)\b", re.I)
_CLAUSE_START = re.compile(r"(?:[.;!?]\s+|\n|,\s*|\s+and\s+)(?!.*(?:[.;!?]\s+|\n|,\s*|\s+and\s+))", re.S)


def _greeting(text: str) -> tuple[dict[str, Any] | None, str]:
    """A greeting asked for, and the rest of the message. A quoted greeting is taken as quoted (the message
    may go on with other requests); an unquoted one is the rest of the message."""
    keyword = _GREETING.search(text)
    if not keyword:
        return None, text
    quoted = _QUOTED.search(text, keyword.end())
    before = text[: keyword.start()]
    start = _CLAUSE_START.search(before)
    rest_before = before[: start.start()] if start else ""
    if quoted:
        greeting, rest = quoted.group(1), rest_before + " " + text[quoted.end() :]
    else:
        said = re.search(r"\b(?:to|with|:|say|says)\s+(.+)$", text[keyword.end() :], re.I | re.S)
        greeting, rest = (said.group(1) if said else ""), rest_before
    greeting = greeting.strip().strip("\"'“”").strip()
    return (_edit("set_greeting", 0.9, text=greeting) if greeting else None), rest


def _instructions(clause: str) -> dict[str, Any] | None:
    said = re.search(r"\b(?:system prompt|instructions)\b\s*(?:to\s*:?|:|=|with)\s*(.+)$", clause, re.I | re.S)
    if not said:
        return None
    text = said.group(1).strip().strip("\"'“”").strip()
    return _edit("set", 0.8, path="system_prompt.instructions", value=text) if text else None


def parse_edits(text: str) -> list[dict[str, Any]]:
    """The propose_change edits a message asks for, clause by clause; [] when it asks for none we know.
    A system prompt given in full is taken whole (it may contain "and")."""
    whole = _instructions(text)
    if whole is not None:
        return [whole]
    greeting, text = _greeting(text)
    edits = [greeting] if greeting else []
    for clause in (c for c in _SPLIT.split(text) if c and c.strip()):
        for parse in (_temperature, _tone, _tool, _speed):
            found = parse(clause)
            if found is not None:
                edits.append(found)
                break
    return edits


def pending_proposal(messages: Sequence[BaseMessage]) -> str | None:
    """The id of the last proposal shown in the conversation that was neither applied nor replaced."""
    for m in reversed(messages):
        if not isinstance(m, ToolMessage) or m.status == "error":
            continue
        if m.name == "apply_change":
            return None
        if m.name == "propose_change":
            data = _json(m.content)
            return str(data["proposal_id"]) if "proposal_id" in data else None
    return None


def _json(content: Any) -> dict[str, Any]:
    try:
        data = json.loads(str(content))
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _call(name: str, args: dict[str, Any]) -> AIMessage:
    call = {"name": name, "args": args, "id": f"call_{uuid.uuid4().hex[:16]}", "type": "tool_call"}
    return AIMessage(content="", tool_calls=[call], response_metadata={"confidence": 0.9})


def respond(messages: Sequence[BaseMessage]) -> AIMessage:
    """The editor's next message: a tool call, or an answer from the tools' results."""
    last = messages[-1] if messages else HumanMessage("")
    if isinstance(last, ToolMessage):
        return _answer(messages)
    text = str(last.content)
    edits = parse_edits(text)
    if edits:
        return _call("propose_change", {"edits": edits, "summary": text.strip()[:500]})
    pending = pending_proposal(messages)
    if pending and is_confirmation(text):
        return _call("apply_change", {"proposal_id": pending})
    if pending and re.search(r"\b(no|cancel|don'?t|never ?mind|stop)\b", text, re.I):
        return AIMessage(content="All right, I won't apply it; nothing was changed. What would you like instead?")
    if re.search(r"\b(show|current|what(?:'s| is| are))\b", text, re.I):
        return _call("get_config", {})
    return AIMessage(
        content="I can't make that change from here. I can: " + "; ".join(CAPABILITIES) + ". Nothing was changed.",
        response_metadata={"confidence": 0.4},
    )


def _value(value: Any) -> str:
    if isinstance(value, dict) and "tool_name" in value:
        return f"{value['tool_name']} ({value.get('status')})"
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else f"“{value}”"
    return text if len(text) <= 200 else text[:200] + "…"


def _describe_proposal(data: dict[str, Any]) -> str:
    lines = [f"I've detected {len(data['detected_changes'])} change(s):", ""]
    for i, c in enumerate(data["detected_changes"], 1):
        what = f"{c['action']} tool {c['tool_name']}" if c.get("tool_name") else f"{c['parameter']}"
        lines.append(f"{i}. **{what}** ({c['risk_level']} risk)")
        if not c.get("tool_name"):
            lines.append(f"   - Current: {_value(c['current_value'])}")
            lines.append(f"   - Proposed: {_value(c['proposed_value'])}")
    lines.append("")
    if data.get("requires_approval"):
        who = " and ".join(data["approval_required_from"])
        lines.append(f"Once applied, this {data['risk_level']} risk change waits for approval by {who}.")
    if not data.get("can_apply", True):
        lines.append(f"Your key cannot apply it (it lacks {', '.join(data['missing_permissions'])}).")
    lines.append('Would you like me to apply these changes? Reply "yes, apply it".')
    return "\n".join(lines)


def _answer(messages: Sequence[BaseMessage]) -> AIMessage:
    results: list[ToolMessage] = []
    for m in reversed(messages):
        if not isinstance(m, ToolMessage):
            break
        results.insert(0, m)
    parts = []
    for r in results:
        data = _json(r.content)
        if r.status == "error":
            verb = {"apply_change": "apply", "propose_change": "prepare"}.get(r.name or "", "do")
            parts.append(f"I couldn't {verb} that change: {r.content}. Nothing was changed.")
        elif r.name == "propose_change":
            parts.append(_describe_proposal(data))
        elif r.name == "apply_change" and data.get("status") == "pending_approval":
            who = " and ".join(data["approval_required_from"])
            parts.append(
                f"Saved as version {data['version']}, which waits for approval by {who}; version "
                f"{data['current_version']} stays live until then."
            )
        elif r.name == "apply_change":
            parts.append(f"Done: version {data.get('version')} is live.")
        elif r.name == "get_config":
            parts.append(f"{data.get('config_id')} is at version {data.get('version')}: {_value(data.get('value'))}")
    return AIMessage(content="\n\n".join(parts), response_metadata={"confidence": 0.9})


def handles(tools: Sequence[dict[str, Any]]) -> bool:
    """Whether the bound tools are the config editor's and only those (then this module answers instead of the
    ordinary rules; a bot that binds one of them among others keeps the ordinary behaviour)."""
    names = {t.get("function", {}).get("name") for t in tools}
    return "propose_change" in names and names <= set(EDITOR_TOOLS)
