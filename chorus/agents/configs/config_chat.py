"""The rules of the config editor chat (`POST /api/v1/configs/chat`): the edits a person asks for become a JSON
merge patch of the config's current version, which is previewed (classified by change_risk.py, diffed by
diff.py, validated) and stored only when the person confirms, through the same path as PATCH (changes.py).

The editor is a bot whose tools (chorus/agents/tools/builtin_config_editor.py) call these functions; they
reach the caller through `EDITOR_SESSION`, which only the chat service (chorus/runs/config_chat.py) sets. A
request can never carry it, so the tools act with the caller's key and refuse to work anywhere else.
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import json
import re
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from chorus.agents.configs.change_risk import ChangeClassification, DetectedChange, classify_changes
from chorus.agents.configs.changes import ConfigChanges, ProposedChange
from chorus.agents.configs.diff import diff_configs
from chorus.agents.configs.repository import StoredConfig
from chorus.agents.configs.service import ConfigService, require_same_kind
from chorus.agents.errors import ChorusError, Forbidden, InvalidInput, ToolError
from chorus.agents.tenancy.keys import Principal
from chorus.agents.tenancy.permissions import has_permission

# The editor's own tools: never offered to a bot (a bot that could edit configs would be a way around roles).
EDITOR_TOOLS = ("get_config", "propose_change", "apply_change")
DEFAULT_CONFIDENCE = 0.9
_PATH = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*){0,7}$"
_CONFIRM = re.compile(
    r"\b(yes|yep|yeah|sure|ok|okay|confirm(ed)?|apply( it| them| the changes?| this| that)?|go ahead|do it|"
    r"ship it|sounds good|looks good|approved?)\b",
    re.IGNORECASE,
)
_NEGATION = re.compile(r"\b(no|not|don'?t|do not|never|cancel|wait|stop|hold on|instead|undo)\b", re.IGNORECASE)


def is_confirmation(text: str) -> bool:
    """Whether a message says yes to the change proposed before it ("yes, apply it", "go ahead"). The chat
    service decides this, not the model: a change is stored only on a person's yes."""
    return bool(_CONFIRM.search(text)) and not _NEGATION.search(text)


# -- edits: what a person asks for, in terms a model can produce -------------------------------------------

Confidence = Annotated[float | None, Field(default=None, ge=0, le=1, description="How sure the request means this")]
DottedPath = Annotated[str, Field(pattern=_PATH, description="A dotted path, e.g. llm_config.parameters.temperature")]


class _Edit(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SetValue(_Edit):
    """Set a value at a dotted path (null removes it)."""

    op: Literal["set"]
    path: DottedPath
    value: Any = None
    confidence: Confidence = None


class ScaleValue(_Edit):
    """Multiply a number at a path (speak 20% slower: factor 0.8); `default` when it has no value yet."""

    op: Literal["scale"]
    path: DottedPath
    factor: Annotated[float, Field(gt=0, le=10)]
    default: float | None = None
    confidence: Confidence = None


class SetGreeting(_Edit):
    """The first message; also the widget's greeting when the config sets one of its own."""

    op: Literal["set_greeting"]
    text: Annotated[str, Field(min_length=1, max_length=1000)]
    confidence: Confidence = None


class AddTool(_Edit):
    """Bind a tool of the catalogue (the built-ins, and the config's own tools_needed) to the bot."""

    op: Literal["add_tool"]
    tool_name: Annotated[str, Field(min_length=1, max_length=64)]
    confidence: Confidence = None


class RemoveTool(_Edit):
    op: Literal["remove_tool"]
    tool_name: Annotated[str, Field(min_length=1, max_length=64)]
    confidence: Confidence = None


Edit = Annotated[SetValue | ScaleValue | SetGreeting | AddTool | RemoveTool, Field(discriminator="op")]
_EDITS: TypeAdapter[list[Edit]] = TypeAdapter(list[Edit])


class ProposeArguments(BaseModel):
    """The arguments of the propose_change tool (its JSON Schema is the tool's input schema)."""

    model_config = ConfigDict(extra="forbid")
    edits: Annotated[list[Edit], Field(min_length=1, max_length=20, description="The changes, applied in order")]
    summary: Annotated[str | None, Field(default=None, max_length=500, description="What the person asked")] = None


def parse_edits(raw: Any) -> list[Edit]:
    try:
        return _EDITS.validate_python(raw)
    except ValidationError as exc:
        errors = [
            {
                "path": "$.edits" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in e["loc"]),
                "message": e["msg"],
            }
            for e in exc.errors()
        ]
        raise InvalidInput(
            "the edits are not valid; each is one of set, scale, set_greeting, add_tool, remove_tool", errors=errors
        ) from None


def tool_catalogue(service: ConfigService, config: dict[str, Any]) -> list[str]:
    """The tools a bot may be given: the registry's built-ins (not the editor's own) and its tools_needed."""
    declared = [t["tool_name"] for t in config.get("tools_needed") or [] if isinstance(t, dict) and "tool_name" in t]
    return sorted({*(n for n in service.registry.names() if n not in EDITOR_TOOLS), *declared})


def _suggest(name: str, names: list[str]) -> list[str]:
    words = [w for w in re.split(r"[\s_-]+", name.lower()) if w]
    containing = [n for n in names if words and all(w in n.lower() for w in words)]
    close = difflib.get_close_matches(name.lower().replace(" ", "_"), names, n=3, cutoff=0.5)
    return list(dict.fromkeys([*containing, *close]))[:5]


def resolve_tool(name: str, names: list[str], *, what: str) -> tuple[str, bool]:
    """The tool `name` stands for among `names`, and whether it was exact; InvalidInput with a "did you mean"
    when it names none of them or several."""
    wanted = name.strip().lower().replace(" ", "_").replace("-", "_")
    if wanted in names:
        return wanted, True
    suggestions = _suggest(name, names)
    containing = [n for n in names if all(w in n for w in wanted.split("_") if w)]
    if len(containing) == 1:
        return containing[0], False
    hint = f"; did you mean {' or '.join(repr(s) for s in suggestions)}?" if suggestions else ""
    raise InvalidInput(
        f"there is no tool '{name}' {what}{hint} The tools are: {', '.join(names) or 'none'}",
        errors=[{"path": "$.tool_name", "message": "unknown tool", "suggestions": suggestions}],
    )


def _parent(doc: dict[str, Any], path: str, *, create: bool) -> tuple[dict[str, Any] | None, str]:
    parts = path.split(".")
    node: Any = doc
    for i, part in enumerate(parts[:-1]):
        nxt = node.get(part)
        if nxt is None:
            if not create:
                return None, parts[-1]
            nxt = node[part] = {}
        if not isinstance(nxt, dict):
            where = ".".join(parts[: i + 1])
            raise InvalidInput(
                f"'{where}' is not an object, so '{path}' cannot be set inside it; set '{where}' whole instead",
                errors=[{"path": f"$.{where}", "message": "not an object"}],
            )
        node = nxt
    return node, parts[-1]


def _apply(doc: dict[str, Any], edit: Edit, catalogue: list[str]) -> tuple[str, bool]:
    """Apply one edit to `doc` in place; the path it touched and whether a tool name was resolved exactly."""
    if isinstance(edit, SetValue):
        parent, key = _parent(doc, edit.path, create=edit.value is not None)
        if parent is not None:
            if edit.value is None:
                parent.pop(key, None)
            else:
                parent[key] = copy.deepcopy(edit.value)
        return edit.path, True
    if isinstance(edit, ScaleValue):
        parent, key = _parent(doc, edit.path, create=True)
        assert parent is not None
        current = parent.get(key, edit.default)
        if isinstance(current, bool) or not isinstance(current, int | float):
            raise InvalidInput(
                f"'{edit.path}' has no number to scale (it is {json.dumps(current)}); set it to a value instead",
                errors=[{"path": f"$.{edit.path}", "message": "not a number"}],
            )
        parent[key] = round(current * edit.factor, 2)
        return edit.path, True
    if isinstance(edit, SetGreeting):
        doc["first_message"] = edit.text
        webchat = doc.get("webchat")
        if isinstance(webchat, dict) and webchat.get("greeting"):
            webchat["greeting"] = edit.text
        return "first_message", True
    tools = doc.setdefault("tools_available", [])
    if isinstance(edit, AddTool):
        name, exact = resolve_tool(edit.tool_name, catalogue, what="in the catalogue")
        entry = next((t for t in tools if isinstance(t, dict) and t.get("tool_name") == name), None)
        if entry is not None and entry.get("status") == "implemented":
            raise InvalidInput(
                f"the bot already has the tool '{name}'", errors=[{"path": "$.tool_name", "message": "already bound"}]
            )
        if entry is not None:
            entry["status"] = "implemented"
        else:
            tools.append({"tool_name": name, "status": "implemented"})
        return "tools_available", exact
    bound = [t["tool_name"] for t in tools if isinstance(t, dict) and isinstance(t.get("tool_name"), str)]
    name, exact = resolve_tool(edit.tool_name, bound, what="on this bot")
    doc["tools_available"] = [t for t in tools if not (isinstance(t, dict) and t.get("tool_name") == name)]
    return "tools_available", exact


def merge_patch_between(old: Any, new: Any) -> Any:
    """The JSON merge patch (RFC 7396) that turns `old` into `new` (lists are replaced whole)."""
    if not isinstance(old, dict) or not isinstance(new, dict):
        return copy.deepcopy(new)
    patch: dict[str, Any] = {k: None for k in old if k not in new}
    for key, value in new.items():
        if key not in old:
            patch[key] = copy.deepcopy(value)
        elif old[key] != value:
            patch[key] = merge_patch_between(old[key], value)
    return patch


# -- proposals ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Proposal:
    """A change shown to the person and not stored: the merge patch of version `based_on`, and how sure the
    edits were about each path they touched."""

    proposal_id: str
    config_id: str  # the assistant id
    key: str
    based_on: int
    patch: dict[str, Any]
    summary: str | None
    confidence: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return {
            "proposal_id": self.proposal_id,
            "config_id": self.config_id,
            "key": self.key,
            "based_on": self.based_on,
            "patch": self.patch,
            "summary": self.summary,
            "confidence": self.confidence,
        }

    @staticmethod
    def from_dict(data: dict[str, Any]) -> Proposal:
        return Proposal(
            proposal_id=str(data["proposal_id"]),
            config_id=str(data["config_id"]),
            key=str(data["key"]),
            based_on=int(data["based_on"]),
            patch=dict(data["patch"]),
            summary=data.get("summary"),
            confidence={str(k): float(v) for k, v in (data.get("confidence") or {}).items()},
        )


@dataclass(frozen=True)
class Preview:
    """A proposal with what it would do: the classified changes, the diff, and whether the caller may apply it."""

    proposal: Proposal
    classification: ChangeClassification
    diff: dict[str, Any]
    json_patch: list[dict[str, Any]]
    missing_permissions: tuple[str, ...]

    def detected_changes(self) -> list[dict[str, Any]]:
        return [change_view(c, self.proposal.confidence) for c in self.classification.changes]

    def to_dict(self) -> dict[str, Any]:
        c = self.classification
        return {
            **self.proposal.to_dict(),
            "status": "proposed",
            "detected_changes": self.detected_changes(),
            "risk_level": c.risk_level,
            "requires_approval": c.requires_approval,
            "approval_required_from": list(c.approval_required_from),
            "preview": {"based_on": self.proposal.based_on, "diff": self.diff, "patch": self.json_patch},
            "can_apply": not self.missing_permissions,
            "missing_permissions": list(self.missing_permissions),
            "next": "show these changes to the person and ask them to confirm; only then call apply_change "
            "with this proposal_id",
        }


def _confidence_of(field_path: str, confidence: dict[str, float]) -> float:
    best = max(
        (p for p in confidence if field_path == p or field_path.startswith((p + ".", p + "["))), key=len, default=None
    )
    return confidence[best] if best is not None else DEFAULT_CONFIDENCE


def change_view(change: DetectedChange, confidence: dict[str, float]) -> dict[str, Any]:
    """One detected change in the seed's shape (001 §6 "Conversational Configuration Chat")."""
    out: dict[str, Any] = {
        "type": change.type,
        "action": change.action,
        "parameter": change.field,
        "current_value": change.old_value,
        "proposed_value": change.new_value,
        "confidence": _confidence_of(change.field, confidence),
        "risk_level": change.risk_level,
        "permission": change.permission,
        "approval_required_from": list(change.approval_required_from),
    }
    if change.item_key == "tool_name":
        out["tool_name"] = change.item_name
        value = change.new_value if isinstance(change.new_value, dict) else {}
        out["tool_status"] = value.get("status", "implemented") if change.action != "remove" else None
    return out


async def propose(
    service: ConfigService, principal: Principal, current: StoredConfig, edits: list[Edit], summary: str | None
) -> Preview:
    """Apply the edits to a copy of the current version and check the result as a new version would be
    checked (schema, tools, secrets, product type). Nothing is stored; InvalidInput says what is wrong."""
    catalogue = tool_catalogue(service, current.config)
    new = copy.deepcopy(current.config)
    confidence: dict[str, float] = {}
    for edit in edits:
        touched, exact = _apply(new, edit, catalogue)
        confidence[touched] = edit.confidence if edit.confidence is not None else (DEFAULT_CONFIDENCE if exact else 0.8)
    if isinstance(new.get("config_metadata"), dict):
        new["config_metadata"] = {**new["config_metadata"], "config_id": current.key, "version": current.version}
    patch = merge_patch_between(current.config, new)
    classification = classify_changes(current.config, new)
    if not classification.changes:
        raise InvalidInput(
            "nothing would change: the config already has these values",
            errors=[{"path": "$.edits", "message": "no change"}],
        )
    _, config = await service.checked(principal.tenant_id, new)
    require_same_kind(current, config)
    digest = hashlib.sha256(
        json.dumps([current.config_id, current.version, patch], sort_keys=True).encode()
    ).hexdigest()
    proposal = Proposal(
        f"prop_{digest[:16]}", current.config_id, current.key, current.version, patch, summary, confidence
    )
    diff = diff_configs(current.config, new)
    missing = tuple(
        sorted({c.permission for c in classification.changes if not has_permission(principal.role, c.permission)})
    )
    return Preview(proposal, classification, diff.changes, diff.patch, missing)


# -- the session: who is chatting, about which config, and what happened in this turn ----------------------


@dataclass
class EditorSession:
    """One turn of the editor chat, as its tools see it. `confirmed`: the person said yes in this turn (or the
    API call confirmed), the only way apply_change stores anything. The tools record what they did."""

    principal: Principal
    service: ConfigService
    config_id: str
    pending: Proposal | None
    confirmed: bool
    previews: list[Preview] = field(default_factory=list)
    applied: list[ProposedChange] = field(default_factory=list)
    rejected: list[InvalidInput] = field(default_factory=list)
    refused: list[ChorusError] = field(default_factory=list)


EDITOR_SESSION: ContextVar[EditorSession | None] = ContextVar("chorus_config_editor_session", default=None)


def editor_session(tool_name: str) -> EditorSession:
    session = EDITOR_SESSION.get()
    if session is None:
        raise ToolError(
            f"tool '{tool_name}' works only in the config editor chat (POST /api/v1/configs/chat), with the "
            "caller's own key; it cannot be bound to a bot or invoked directly"
        )
    return session


async def apply_proposal(session: EditorSession, proposal_id: str) -> ProposedChange:
    """Store the pending proposal as a new version with source "chat", exactly as a PATCH by the caller's key
    would be (its permissions checked per change; a medium or high risk version waits for approval)."""
    pending = session.pending
    if pending is None or pending.proposal_id != proposal_id:
        waiting = f"the one waiting is '{pending.proposal_id}'" if pending else "none is waiting"
        raise ToolError(f"no proposed change '{proposal_id}' waits in this conversation ({waiting}); propose it first")
    if not session.confirmed:
        raise ToolError(
            "the person has not confirmed this change in their last message; show them the preview and ask them "
            "to confirm (for example 'yes, apply it'). Nothing was stored"
        )
    current = await session.service.repo.find(session.principal.tenant_id, pending.config_id)
    if current.version != pending.based_on:
        raise ToolError(
            f"the config changed since this proposal (it was version {pending.based_on}, it is now version "
            f"{current.version}); nothing was stored: propose the change again to see what it does now"
        )
    try:
        done = await ConfigChanges(session.service).apply_patch(
            session.principal,
            pending.config_id,
            pending.patch,
            source="chat",
            commit_message=f"config chat: {pending.summary}" if pending.summary else "config chat",
        )
    except Forbidden as exc:
        session.refused.append(exc)
        raise ToolError(f"{exc.detail}. Nothing was stored") from None
    session.applied.append(done)
    session.pending = None
    return done
