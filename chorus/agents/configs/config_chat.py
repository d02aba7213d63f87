"""The rules of the config editor chat (`POST /api/v1/configs/chat`): the edits a person asks for become a JSON
merge patch of the config's current version, which is previewed (classified by change_risk.py, diffed by
diff.py, validated) and stored only when the person confirms, through the same path as PATCH (changes.py).

The editor is a bot whose tools (chorus/agents/tools/builtin_config_editor.py) call these functions; they
reach the caller through `EDITOR_SESSION`, which only the chat service (chorus/runs/config_chat.py) sets. A
request can never carry it, so the tools act with the caller's key and refuse to work anywhere else.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from chorus.agents.configs.change_risk import ChangeClassification, DetectedChange, classify_changes
from chorus.agents.configs.changes import ConfigChanges, ProposedChange
from chorus.agents.configs.config_edits import Edit, apply_edit, merge_patch_between
from chorus.agents.configs.diff import diff_configs
from chorus.agents.configs.repository import StoredConfig
from chorus.agents.configs.service import ConfigService, require_same_kind
from chorus.agents.errors import ChorusError, Forbidden, InvalidInput, ToolError
from chorus.agents.tenancy.keys import Principal
from chorus.agents.tenancy.permissions import has_permission

# The editor's own tools: never offered to a bot (a bot that could edit configs would be a way around roles).
EDITOR_TOOLS = ("get_config", "propose_change", "apply_change")
DEFAULT_CONFIDENCE = 0.9
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


def tool_catalogue(service: ConfigService, config: dict[str, Any]) -> list[str]:
    """The tools a bot may be given: the registry's built-ins (not the editor's own) and its tools_needed."""
    declared = [t["tool_name"] for t in config.get("tools_needed") or [] if isinstance(t, dict) and "tool_name" in t]
    return sorted({*(n for n in service.registry.names() if n not in EDITOR_TOOLS), *declared})


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
        touched, exact = apply_edit(new, edit, catalogue)
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
