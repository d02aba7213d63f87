"""Change classification: what changed between two versions of a bot config, of which seed type (001 §6),
how risky, and whose approval it needs. One table, `RULES`; docs/config-format.md prints the same table
and a test keeps the two equal. Pure functions over plain JSON: no I/O, no validation, unknown keys welcome.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from chorus.agents.tenancy.permissions import ConfigPermission, Role

ChangeType = Literal[
    "system_prompt_change",
    "greeting_change",
    "tool_change",
    "integration_change",
    "llm_change",
    "voice_parameter_change",
    "voice_provider_change",
    "telephony_change",
    "workflow_change",
    "knowledge_change",
    "webchat_change",
    "metadata_change",
    "comment_change",
    "unknown_change",
]
Action = Literal["add", "remove", "modify"]
RuleAction = Literal["add", "remove", "modify", "any"]
RiskLevel = Literal["low", "medium", "high"]

RISK_LEVELS: tuple[RiskLevel, ...] = ("low", "medium", "high")
# Low changes are approved by themselves; medium ones by an organization admin; high ones by an organization
# admin and a platform engineer (seed 001 §6, "Approval Workflows" 7-9).
APPROVERS: dict[RiskLevel, tuple[Role, ...]] = {
    "low": (),
    "medium": ("organization_admin",),
    "high": ("organization_admin", "platform_engineer"),
}


@dataclass(frozen=True)
class Rule:
    """Changes at `path` (or below it, unless a longer rule matches) doing `action` are `change_type` of
    `risk`; proposing one needs `permission`. `[]` stands for any item of a list keyed by name."""

    path: str
    action: RuleAction
    change_type: ChangeType
    risk: RiskLevel
    permission: ConfigPermission
    what: str

    @property
    def approvers(self) -> tuple[Role, ...]:
        return APPROVERS[self.risk]


def _rule(
    path: str, action: RuleAction, change_type: ChangeType, risk: RiskLevel, permission: ConfigPermission, what: str
) -> Rule:
    return Rule(path, action, change_type, risk, permission, what)


_PROMPT: ConfigPermission = "edit_system_prompt"
_TOOLS: ConfigPermission = "add_remove_tools"
_INTEGRATIONS: ConfigPermission = "modify_integrations"
_VOICE: ConfigPermission = "change_voice_params"

# The most specific path wins; then the row for the change's action, else the row for "any".
RULES: tuple[Rule, ...] = (
    _rule("system_prompt.tone", "any", "system_prompt_change", "low", _PROMPT, "tone of voice"),
    _rule("system_prompt.voice_specific", "any", "voice_parameter_change", "low", _VOICE, "speaking rate, pauses"),
    _rule("system_prompt", "any", "system_prompt_change", "medium", _PROMPT, "role, instructions, constraints"),
    _rule("first_message", "any", "greeting_change", "medium", _PROMPT, "what every customer meets first"),
    _rule("tools_available[]", "add", "tool_change", "medium", _TOOLS, "a tool added"),
    _rule("tools_available[]", "remove", "tool_change", "high", _TOOLS, "a tool removed"),
    _rule("tools_available[]", "modify", "tool_change", "medium", _TOOLS, "a tool's other fields"),
    _rule("tools_available[].status", "add", "tool_change", "medium", _TOOLS, "a tool becomes implemented (bound)"),
    _rule("tools_available[].status", "remove", "tool_change", "high", _TOOLS, "an implemented tool is unbound"),
    _rule("tools_available[].status", "modify", "tool_change", "low", _TOOLS, "missing <-> in_progress (not bound)"),
    _rule("tools_available[].github_issue", "any", "tool_change", "low", _TOOLS, "bookkeeping"),
    _rule("tools_available", "any", "tool_change", "high", _TOOLS, "the list as a whole (names missing or repeated)"),
    _rule("tools_needed[]", "remove", "tool_change", "high", _TOOLS, "a tool definition removed"),
    _rule("tools_needed[]", "any", "tool_change", "medium", _TOOLS, "a tool definition added or changed"),
    _rule("tools_needed[].http", "any", "tool_change", "high", _INTEGRATIONS, "where a tool sends its requests"),
    _rule("tools_needed[].metadata", "any", "tool_change", "low", _TOOLS, "bookkeeping"),
    _rule("tools_needed", "any", "tool_change", "high", _TOOLS, "the list as a whole (names missing or repeated)"),
    _rule("integrations", "any", "integration_change", "high", _INTEGRATIONS, "external systems"),
    _rule("integrations[].github_issue", "any", "integration_change", "low", _INTEGRATIONS, "bookkeeping"),
    _rule("integrations_needed", "any", "integration_change", "high", _INTEGRATIONS, "external systems asked for"),
    _rule("integrations_needed[].metadata", "any", "integration_change", "low", _INTEGRATIONS, "bookkeeping"),
    _rule("database_config", "any", "integration_change", "high", _INTEGRATIONS, "the customer database"),
    _rule("llm_config", "any", "llm_change", "high", _INTEGRATIONS, "model, provider, endpoint, key, fallbacks"),
    _rule("llm_config.parameters", "any", "llm_change", "medium", _PROMPT, "temperature, max_tokens, top_p"),
    _rule("llm_config.offline_token_delay_ms", "any", "llm_change", "low", _PROMPT, "offline model pacing"),
    _rule("voice_settings", "any", "voice_parameter_change", "low", _VOICE, "speed, stop-speaking plan, sounds"),
    _rule("livekit_config", "any", "voice_parameter_change", "low", _VOICE, "voice, VAD, room prefix"),
    _rule("livekit_config.stt_language", "any", "voice_parameter_change", "medium", _VOICE, "language understood"),
    _rule("livekit_config.stt_provider", "any", "voice_provider_change", "high", _INTEGRATIONS, "who hears the calls"),
    _rule("livekit_config.stt_model", "any", "voice_provider_change", "high", _INTEGRATIONS, "speech-to-text model"),
    _rule("livekit_config.tts_provider", "any", "voice_provider_change", "high", _INTEGRATIONS, "who speaks"),
    _rule("livekit_config.tts_model", "any", "voice_provider_change", "high", _INTEGRATIONS, "text-to-speech model"),
    _rule("sip_config", "any", "telephony_change", "high", _INTEGRATIONS, "numbers, providers, recording"),
    _rule("workflow_features", "any", "workflow_change", "medium", _PROMPT, "PII, follow-ups, surveys, outbound"),
    _rule("workflow_features.human_escalation", "any", "workflow_change", "medium", _PROMPT, "escalation rules"),
    _rule("workflow_features.call_transfer", "any", "workflow_change", "high", _INTEGRATIONS, "transfer destinations"),
    _rule("knowledge", "any", "knowledge_change", "medium", _PROMPT, "namespaces, FAQ, auto-answer threshold"),
    _rule("vector_db_config", "any", "knowledge_change", "medium", _PROMPT, "recorded vector store"),
    _rule("webchat", "any", "webchat_change", "low", _PROMPT, "the widget's look"),
    _rule("webchat.greeting", "any", "greeting_change", "medium", _PROMPT, "the widget's first message"),
    _rule("config_metadata", "any", "metadata_change", "low", _PROMPT, "name, description, labels"),
    _rule("config_metadata.product_type", "any", "metadata_change", "high", _INTEGRATIONS, "chatbot <-> voicebot"),
    _rule("config_metadata.config_id", "any", "metadata_change", "high", _INTEGRATIONS, "the config's identity"),
    _rule("_", "any", "comment_change", "low", _PROMPT, "a `_comment` key anywhere"),
    _rule("", "any", "unknown_change", "high", _INTEGRATIONS, "a key Chorus does not know"),
)

# Lists whose items are compared by this key rather than by position (reordering them is not a change).
KEYED_LISTS: dict[str, str] = {
    "tools_available": "tool_name",
    "tools_needed": "tool_name",
    "integrations": "integration_name",
    "integrations_needed": "integration_name",
    "workflow_features.call_transfer.transfer_destinations": "name",
}
# Statuses under which a tool is bound to the model: moving into or out of one is adding or removing it.
_BOUND = "implemented"
_ITEM = re.compile(r"\[[^\]]*\]")
_NAME_FIELDS = {"tool_name": "tool_name", "integration_name": "integration_name", "name": "destination"}


@dataclass(frozen=True)
class DetectedChange:
    """One change: its seed type and action, the dotted path (keyed items as `tools_available[name]`),
    the old and new values (None when absent) and what it takes to make it."""

    type: ChangeType
    action: Action
    field: str
    old_value: Any
    new_value: Any
    risk_level: RiskLevel
    permission: ConfigPermission
    item_key: str | None = None
    item_name: str | None = None

    @property
    def approval_required_from(self) -> tuple[Role, ...]:
        return APPROVERS[self.risk_level]

    def to_dict(self) -> dict[str, Any]:
        """The seed's shape (001 §6 version history): type, action, field, old/new value, risk_level, and
        `tool_name` / `integration_name` / `destination` for items of keyed lists."""
        out: dict[str, Any] = {
            "type": self.type,
            "action": self.action,
            "field": self.field,
            "old_value": self.old_value,
            "new_value": self.new_value,
            "risk_level": self.risk_level,
            "permission": self.permission,
        }
        if self.item_key is not None:
            out[_NAME_FIELDS[self.item_key]] = self.item_name
        return out


@dataclass(frozen=True)
class ChangeClassification:
    """All changes between two versions; `risk_level` is the highest of them ("low" when nothing changed)."""

    changes: tuple[DetectedChange, ...]

    @property
    def risk_level(self) -> RiskLevel:
        return max((c.risk_level for c in self.changes), key=RISK_LEVELS.index, default="low")

    @property
    def approval_required_from(self) -> tuple[Role, ...]:
        return APPROVERS[self.risk_level]

    @property
    def requires_approval(self) -> bool:
        return bool(self.approval_required_from)

    @property
    def permissions_needed(self) -> tuple[ConfigPermission, ...]:
        return tuple(sorted({c.permission for c in self.changes}))

    def to_dict(self) -> dict[str, Any]:
        return {
            "changes": [c.to_dict() for c in self.changes],
            "risk_level": self.risk_level,
            "requires_approval": self.requires_approval,
            "approval_required_from": list(self.approval_required_from),
            "permissions_needed": list(self.permissions_needed),
        }


def classify_changes(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> ChangeClassification:
    """Every change from `old` (None: a new config) to `new`, classified by `RULES`. A key set to null
    and an absent key are the same; lists keyed by name are compared by name, other lists as a whole."""
    raw: list[tuple[str, Action, Any, Any, str | None, str | None]] = []
    _diff(dict(old or {}), dict(new), "", raw)
    return ChangeClassification(tuple(_classified(*entry) for entry in raw))


def rule_for(path: str, action: Action) -> Rule:
    """The rule of a change at a concrete path (`tools_available[initiate_refund].status`)."""
    pattern = _ITEM.sub("[]", path)
    if any(part.startswith("_") for part in re.split(r"[.\[\]]+", pattern) if part):
        pattern = "_"
    best = max((r for r in RULES if _covers(r.path, pattern)), key=lambda r: len(r.path))
    rows = [r for r in RULES if r.path == best.path]
    return next((r for r in rows if r.action == action), None) or next(r for r in rows if r.action == "any")


def _covers(rule_path: str, pattern: str) -> bool:
    if rule_path == "":
        return True
    if rule_path == pattern:
        return True
    # A rule on a list ("integrations") covers its items ("integrations[]…"), a rule on a mapping its keys.
    return pattern.startswith(rule_path + ".") or pattern.startswith(rule_path + "[]")


def _classified(
    path: str, action: Action, old: Any, new: Any, item_key: str | None, item_name: str | None
) -> DetectedChange:
    rule = rule_for(path, action)
    return DetectedChange(
        type=rule.change_type,
        action=action,
        field=path,
        old_value=old,
        new_value=new,
        risk_level=rule.risk,
        permission=rule.permission,
        item_key=item_key,
        item_name=item_name,
    )


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def _diff(
    old: Any,
    new: Any,
    path: str,
    out: list[tuple[str, Action, Any, Any, str | None, str | None]],
    item: tuple[str, str] | None = None,
) -> None:
    key, name = item if item else (None, None)
    if (old is not None or new is not None) and all(v is None or isinstance(v, dict) for v in (old, new)):
        old_map, new_map = old or {}, new or {}
        for k in [*old_map, *(k for k in new_map if k not in old_map)]:
            _diff(old_map.get(k), new_map.get(k), _join(path, k), out, item)
        return
    pattern = _ITEM.sub("[]", path)
    list_key = KEYED_LISTS.get(pattern)
    if list_key and _keyed(old, list_key) is not None and _keyed(new, list_key) is not None:
        _diff_keyed(_keyed(old, list_key) or {}, _keyed(new, list_key) or {}, path, list_key, out)
        return
    old, new = (None if v == [] else v for v in (old, new))  # an empty list says what an absent one does
    if old == new:
        return
    action: Action = "add" if old is None else "remove" if new is None else "modify"
    if pattern == "tools_available[].status":  # a tool's binding follows its status
        if new == _BOUND and old != _BOUND:
            action = "add"
        elif old == _BOUND and new != _BOUND:
            action = "remove"
        else:
            action = "modify"
    elif isinstance(old, list) and isinstance(new, list) and old != new:
        action = _list_action(old, new)
    out.append((path, action, old, new, key, name))


def _diff_keyed(
    old: dict[str, Any],
    new: dict[str, Any],
    path: str,
    list_key: str,
    out: list[tuple[str, Action, Any, Any, str | None, str | None]],
) -> None:
    for name in [*old, *(n for n in new if n not in old)]:
        item_path = f"{path}[{name}]"
        if name not in new:
            out.append((item_path, "remove", old[name], None, list_key, name))
        elif name not in old:
            out.append((item_path, "add", None, new[name], list_key, name))
        else:
            _diff(old[name], new[name], item_path, out, (list_key, name))


def _keyed(items: Any, key: str) -> dict[str, Any] | None:
    """The list's items by name, or None when it is not a list of objects with distinct names."""
    if items is None:
        return {}
    if not isinstance(items, list):
        return None
    by_name: dict[str, Any] = {}
    for entry in items:
        if not isinstance(entry, dict) or not isinstance(entry.get(key), str) or entry[key] in by_name:
            return None
        by_name[entry[key]] = entry
    return by_name


def _list_action(old: list[Any], new: list[Any]) -> Action:
    """Adding items to a plain list is an add, taking some away a remove, anything else a modify."""
    if len(new) > len(old) and _contains(new, old):
        return "add"
    if len(old) > len(new) and _contains(old, new):
        return "remove"
    return "modify"


def _contains(bigger: list[Any], smaller: list[Any]) -> bool:
    """Whether every item of `smaller` is in `bigger`, counting repeats (items may be unhashable)."""
    remaining = list(bigger)
    for entry in smaller:
        if entry not in remaining:
            return False
        remaining.remove(entry)
    return True
