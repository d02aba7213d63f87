"""Classified changes to a config under /api/v1/configs: PATCH (a JSON merge patch), the visual editor's
voice settings, and approving or rejecting a version that waits for approval (docs/api.md)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from chorus.agents.api_deps import ConfigServiceDep, PrincipalDep
from chorus.agents.configs.approvals import ConfigApprovals, Verdict, require_approver
from chorus.agents.configs.changes import ConfigChanges, ProposedChange, require_edit_permission
from chorus.agents.configs.history import parse_version
from chorus.agents.configs.router import ConfigIdPath
from chorus.agents.errors import InvalidInput
from chorus.agents.tenancy.keys import Principal

router = APIRouter(prefix="/api/v1/configs", tags=["configs"])


def _changes(service: ConfigServiceDep) -> ConfigChanges:
    return ConfigChanges(service)


def _approvals(service: ConfigServiceDep) -> ConfigApprovals:
    return ConfigApprovals(service)


def _editor(principal: PrincipalDep) -> Principal:
    require_edit_permission(principal)
    return principal


def _approver(principal: PrincipalDep) -> Principal:
    require_approver(principal)
    return principal


ChangesDep = Annotated[ConfigChanges, Depends(_changes)]
ApprovalsDep = Annotated[ConfigApprovals, Depends(_approvals)]
# Checked before the config is looked up: a key that may make no change (or approve none) learns nothing.
EditorDep = Annotated[Principal, Depends(_editor)]
ApproverDep = Annotated[Principal, Depends(_approver)]
VersionPath = Annotated[str, Path(description="A version number: 3 or v3", max_length=32)]


class VisualChanges(BaseModel):
    model_config = ConfigDict(extra="forbid")
    voice_settings: dict[str, Any] = Field(
        description="Merged into the config's voice_settings (RFC 7396: null removes a key, lists are replaced)"
    )


class VisualUpdate(BaseModel):
    """The seed's visual update (001 §6); `config_id` and `product_type` are optional checks of the path's."""

    model_config = ConfigDict(extra="forbid")
    config_id: str | None = Field(default=None, max_length=128)
    product_type: Literal["chatbot", "voicebot"] | None = None
    changes: VisualChanges
    commit_message: str | None = Field(default=None, max_length=1000)
    apply_immediately: bool = Field(
        default=False, description="Accepted; a change is applied at once exactly when its risk needs no approval"
    )


class Approve(BaseModel):
    model_config = ConfigDict(extra="forbid")
    comment: str | None = Field(default=None, max_length=1000, description="Why, kept with the approval")


class Reject(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=1000, description="Why, kept with the rejection")


def _impact(done: ProposedChange) -> str:
    kinds = sorted({c.type.removesuffix("_change").replace("_", " ") for c in done.classification.changes})
    return f"{done.classification.risk_level.capitalize()} - {', '.join(kinds)} changes" if kinds else "None"


def change_view(done: ProposedChange) -> dict[str, Any]:
    """A PATCH's or visual update's answer: the seed's fields of both (001 §6 and §7) in one shape."""
    c = done.classification
    stored = done.config
    return {
        "config_id": stored.key,
        "assistant_id": stored.config_id,
        "changed": done.changed,
        "version": stored.version,
        "status": done.status if done.changed else "unchanged",
        "current_version": stored.latest_version,
        "based_on": done.based_on,
        "risk_level": c.risk_level,
        "requires_approval": c.requires_approval,
        "approval_required_from": list(c.approval_required_from),
        "changes": [ch.to_dict() for ch in c.changes],
        "changes_detected": [{"field": ch.field, "change_type": ch.action} for ch in c.changes],
        "validation_status": "passed",
        "validation": {
            "valid": True,
            "warnings": [w.to_dict() for w in done.report.warnings] if done.report else [],
            "estimated_impact": _impact(done),
            "affected_conversations": 0,  # conversations keep the version they started with
        },
        "diff": done.diff.changes,
        "patch": done.diff.patch,
        "parsed_config": stored.config,
        "created_at": stored.updated_at,
    }


def verdict_view(done: Verdict) -> dict[str, Any]:
    return {
        "config_id": done.config.key,
        "assistant_id": done.config.config_id,
        "version": done.version,
        "status": done.status,
        "risk_level": done.risk_level,
        "current_version": done.config.version,
        "approvals": [s.to_dict() for s in done.signatures],
        "approval_required_from": done.missing,
    }


@router.patch(
    "/{config_id}",
    summary="Change a config by a JSON merge patch (RFC 7396): classified, checked per change, maybe approved",
    openapi_extra={
        "requestBody": {
            "content": {
                "application/merge-patch+json": {"schema": {"type": "object"}},
                "application/json": {"schema": {"type": "object"}},
            },
            "required": True,
        }
    },
)
async def patch_config(
    config_id: ConfigIdPath,
    principal: EditorDep,
    changes: ChangesDep,
    patch: Annotated[dict[str, Any], Body(description="The keys to change; null removes a key")],
    commit_message: Annotated[str | None, Query(max_length=1000, description="Why this version")] = None,
) -> dict[str, Any]:
    done = await changes.apply_patch(principal, config_id, patch, source="patch", commit_message=commit_message)
    return change_view(done)


@router.post("/{config_id}/visual-update", summary="The visual editor's voice settings: a classified change")
async def visual_update(
    config_id: ConfigIdPath, body: VisualUpdate, principal: EditorDep, changes: ChangesDep
) -> dict[str, Any]:
    stored = await changes.service.repo.find(principal.tenant_id, config_id)
    if body.config_id is not None and body.config_id not in (stored.key, stored.config_id):
        raise InvalidInput(
            f"the body names config '{body.config_id}' but the path config '{config_id}'; send one config's id",
            errors=[{"path": "$.config_id", "message": "differs from the path"}],
        )
    if body.product_type is not None and body.product_type != stored.product_type:
        raise InvalidInput(
            f"config '{stored.key}' is a {stored.product_type}, not a {body.product_type}",
            errors=[{"path": "$.product_type", "message": f"expected {stored.product_type}"}],
        )
    done = await changes.apply_patch(
        principal,
        stored.config_id,
        {"voice_settings": body.changes.voice_settings},
        source="visual_update",
        commit_message=body.commit_message,
    )
    return change_view(done)


@router.post("/{config_id}/versions/{version}/approve", summary="Approve a version waiting for approval")
async def approve_version(
    config_id: ConfigIdPath,
    version: VersionPath,
    principal: ApproverDep,
    approvals: ApprovalsDep,
    body: Annotated[Approve | None, Body()] = None,
) -> dict[str, Any]:
    done = await approvals.decide(
        principal,
        config_id,
        parse_version(version, where="$.version"),
        decision="approve",
        comment=body.comment if body else None,
    )
    return verdict_view(done)


@router.post("/{config_id}/versions/{version}/reject", summary="Reject a version waiting for approval, for good")
async def reject_version(
    config_id: ConfigIdPath, version: VersionPath, body: Reject, principal: ApproverDep, approvals: ApprovalsDep
) -> dict[str, Any]:
    done = await approvals.decide(
        principal, config_id, parse_version(version, where="$.version"), decision="reject", comment=body.reason
    )
    return verdict_view(done)
