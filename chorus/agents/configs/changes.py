"""Changing a config by a JSON merge patch (PATCH, the visual editor): the result is validated, classified
(change_risk.py), allowed only if the caller's role holds the permission of every change, and stored as a new
version, current at once when its risk needs no approval, else waiting as `pending_approval`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from chorus.agents.configs.change_risk import ChangeClassification, DetectedChange, classify_changes
from chorus.agents.configs.diff import ConfigDiff, diff_configs
from chorus.agents.configs.history import Author
from chorus.agents.configs.merge_patch import merge_patch
from chorus.agents.configs.repository import Review, StoredConfig
from chorus.agents.configs.service import ConfigService, require_same_kind
from chorus.agents.configs.validation import ValidationReport
from chorus.agents.errors import Forbidden, InvalidInput
from chorus.agents.tenancy.keys import Principal
from chorus.agents.tenancy.permissions import ConfigPermission, has_permission, roles_with_permission

PatchSource = Literal["patch", "visual_update", "chat"]
# The permissions that let a key propose some change: a key with none of them cannot patch at all.
EDIT_PERMISSIONS: tuple[ConfigPermission, ...] = (
    "edit_system_prompt",
    "add_remove_tools",
    "modify_integrations",
    "change_voice_params",
)


@dataclass(frozen=True)
class ProposedChange:
    """What a patch did. `config` is the new version (a pending one reads as itself, its `latest_version`
    the current one), or the current version when nothing changed."""

    config: StoredConfig
    based_on: int
    classification: ChangeClassification
    diff: ConfigDiff
    report: ValidationReport | None

    @property
    def changed(self) -> bool:
        return bool(self.classification.changes)

    @property
    def status(self) -> Literal["current", "pending_approval"]:
        return "current" if self.config.version == self.config.latest_version else "pending_approval"


def require_edit_permission(principal: Principal) -> None:
    """Refuse (403) a key whose role may propose no change at all (a viewer)."""
    if not any(has_permission(principal.role, p) for p in EDIT_PERMISSIONS):
        raise Forbidden(
            f"changing a config needs one of the permissions {', '.join(EDIT_PERMISSIONS)}; your key has "
            f"'{principal.role}' (GET /api/v1/configs/permissions lists who has which)"
        )


def refuse_missing_permissions(principal: Principal, changes: tuple[DetectedChange, ...]) -> None:
    missing: dict[ConfigPermission, list[str]] = {}
    for change in changes:
        if not has_permission(principal.role, change.permission):
            missing.setdefault(change.permission, []).append(change.field)
    if not missing:
        return
    parts = [
        f"'{permission}' (for {', '.join(fields)}), which the roles {', '.join(roles_with_permission(permission))} have"
        for permission, fields in missing.items()
    ]
    raise Forbidden(
        f"this change needs the permission {'; and '.join(parts)}; your key has '{principal.role}'. Nothing was "
        "stored: leave those fields out, or ask a key with that permission",
        extra={"missing_permissions": list(missing)},
    )


def _patched(current: StoredConfig, patch: Any) -> dict[str, Any]:
    if not isinstance(patch, dict):
        raise InvalidInput(
            "a JSON merge patch (RFC 7396) is a JSON object of the keys to change; null removes a key",
            errors=[{"path": "$", "message": "expected an object"}],
        )
    new: dict[str, Any] = merge_patch(current.config, patch)
    meta = new.get("config_metadata")
    if isinstance(meta, dict):
        if meta.get("config_id", current.key) != current.key:
            raise InvalidInput(
                f"a config's id cannot change (it is '{current.key}'): upload the file as a new config instead",
                errors=[{"path": "$.config_metadata.config_id", "message": "cannot change"}],
            )
        # The stored copy names its id and version; both are Chorus's to write, so a patch cannot change them.
        new["config_metadata"] = {**meta, "config_id": current.key, "version": current.version}
    return new


class ConfigChanges:
    def __init__(self, service: ConfigService) -> None:
        self.service = service

    async def apply_patch(
        self,
        principal: Principal,
        ident: str,
        patch: Any,
        *,
        source: PatchSource,
        commit_message: str | None,
    ) -> ProposedChange:
        """Apply `patch` to the current version. Raises Forbidden (a change the role may not make) or
        InvalidInput (the result breaks the schema) with nothing stored; no change stores nothing."""
        require_edit_permission(principal)
        current = await self.service.repo.find(principal.tenant_id, ident)
        new = _patched(current, patch)
        classification = classify_changes(current.config, new)
        if not classification.changes:
            return ProposedChange(current, current.version, classification, diff_configs(current.config, new), None)
        refuse_missing_permissions(principal, classification.changes)
        report, config = await self.service.checked(principal.tenant_id, new)
        require_same_kind(current, config)
        review = Review(
            status="pending_approval" if classification.requires_approval else "approved",
            risk_level=classification.risk_level,
            classification=classification.to_dict(),
            based_on=current.version,
        )
        stored = await self.service.repo.add_version(
            tenant_id=principal.tenant_id,
            config_id=current.config_id,
            config=new,
            metadata=current.metadata,
            name=config.display_name,
            description=config.config_metadata.description,
            commit_message=commit_message,
            source=source,
            author=Author.of(principal),
            review=review,
        )
        return ProposedChange(stored, current.version, classification, diff_configs(current.config, new), report)
