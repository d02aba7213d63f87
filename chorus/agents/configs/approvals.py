"""Approving and rejecting a pending config version (docs/api.md "Changes and approval"): medium risk needs an
organization_admin, high risk an organization_admin and a platform_engineer (two keys, any order). The version
becomes current with its last approval, if it was made on the version still current; else it must be made
again on the current one (409). `assert_deployable` is the gate every path to production goes through."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from chorus.agents.configs.approvals_repository import ApprovalRepository, Decision, LockedVersion, Signature
from chorus.agents.configs.change_risk import APPROVERS, RiskLevel
from chorus.agents.configs.deployments_repository import freeze_production
from chorus.agents.configs.history import VersionRecord
from chorus.agents.configs.models import BotConfig
from chorus.agents.configs.repository import StoredConfig
from chorus.agents.configs.service import ConfigService
from chorus.agents.configs.versions_repository import VersionRepository
from chorus.agents.errors import Conflict, Forbidden, InvalidInput, VersionNotFound
from chorus.agents.tenancy.keys import Principal
from chorus.agents.tenancy.permissions import Role

# Every role that approves some risk level: the only ones that may approve or reject at all.
APPROVER_ROLES: tuple[Role, ...] = tuple(dict.fromkeys(r for roles in APPROVERS.values() for r in roles))
VersionStatus = Literal["current", "approved", "superseded", "pending_approval", "rejected"]


def version_status(record: VersionRecord, current: int) -> VersionStatus:
    """How a version reads in the history: the current one; approved ones before it `superseded`, after it
    (the assistants API chose an older one) `approved`; or waiting, or rejected."""
    if record.status != "approved":
        return record.status
    if record.version == current:
        return "current"
    return "superseded" if record.version < current else "approved"


def assert_deployable(record: VersionRecord, *, where: str = "$.version") -> None:
    """Refuse (422) a version that may not serve conversations: one waiting for approval or rejected. The
    rollback, the assistants API's `latest` and the deploy endpoint call this before using a version."""
    if record.status == "pending_approval":
        needed = ", ".join(APPROVERS[risk_of(record.risk_level)])
        raise InvalidInput(
            f"version {record.version} is waiting for approval (its {record.risk_level} risk changes need "
            f"{needed}): approve it with POST …/versions/{record.version}/approve first",
            errors=[{"path": where, "message": "pending approval"}],
        )
    if record.status == "rejected":
        raise InvalidInput(
            f"version {record.version} was rejected and can never be used; make the change again as a new version",
            errors=[{"path": where, "message": "rejected"}],
        )


def risk_of(value: str | None) -> RiskLevel:
    for level in APPROVERS:
        if level == value:
            return level
    return "low"


def require_approver(principal: Principal) -> None:
    """Refuse (403, before any id is looked up) a key whose role approves nothing."""
    if principal.role not in APPROVER_ROLES:
        raise Forbidden(
            f"approving or rejecting a config change needs the role {' or '.join(APPROVER_ROLES)}; your key has "
            f"'{principal.role}'"
        )


@dataclass(frozen=True)
class Verdict:
    """A version after a decision: its status now, its signatures, and the roles still missing."""

    config: StoredConfig  # the config at its current version, after the decision
    version: int
    status: VersionStatus
    risk_level: str | None
    signatures: list[Signature]
    missing: list[Role]


def _missing(risk: RiskLevel, signatures: list[Signature]) -> list[Role]:
    signed = {s.role for s in signatures if s.decision == "approve"}
    return [r for r in APPROVERS[risk] if r not in signed]


class ConfigApprovals:
    def __init__(self, service: ConfigService) -> None:
        self.service = service
        self.repo = ApprovalRepository(service.repo.db)

    async def decide(
        self, principal: Principal, ident: str, version: int, *, decision: Decision, comment: str | None
    ) -> Verdict:
        require_approver(principal)
        config = await self.service.repo.find(principal.tenant_id, ident)
        async with self.repo.locked(principal.tenant_id, config.config_id, version) as locked:
            if locked is None:
                raise VersionNotFound(config.key, version, config.latest_version)
            risk = risk_of(locked.risk_level)
            self._check(principal, locked, risk, decision, config.key)
            await locked.sign(decision, key_id=principal.key_id, role=principal.role, comment=comment)
            if decision == "reject":
                await locked.set_status("rejected")
            elif _missing(risk, locked.signatures) == [principal.role]:  # this was the last approval missing
                parsed = BotConfig.model_validate(locked.config)
                await locked.set_status("approved")
                if principal.environment == "staging":  # the change reaches staging, never production
                    await freeze_production(locked.conn, principal.tenant_id, config.config_id, locked.current_version)
                await locked.make_current(name=parsed.display_name, description=parsed.config_metadata.description)
        now = await self.service.repo.find(principal.tenant_id, config.config_id)
        record = await _version_record(self.service, now, version)
        signed = (await self.repo.signatures(principal.tenant_id, config.config_id, [version]))[version]
        return Verdict(
            now,
            version,
            version_status(record, now.version),
            record.risk_level,
            signed,
            _missing(risk, signed) if record.status == "pending_approval" else [],
        )

    @staticmethod
    def _check(principal: Principal, locked: LockedVersion, risk: RiskLevel, decision: Decision, key: str) -> None:
        v = locked.version
        if locked.status == "rejected":
            raise Conflict(f"version {v} of '{key}' was rejected; make the change again as a new version")
        if locked.status == "approved":
            raise Conflict(f"version {v} of '{key}' is not waiting for approval (it is approved already)")
        needed = APPROVERS[risk]
        if principal.role not in needed:
            raise Forbidden(
                f"version {v} is {risk} risk: only {' and '.join(needed)} may approve or reject it; your key has "
                f"'{principal.role}'"
            )
        if any(s.key_id == principal.key_id for s in locked.signatures):
            raise Conflict(
                f"this key has already signed version {v}; a key counts once, so the next approval must come "
                f"from another key with the role {' or '.join(_missing(risk, locked.signatures)) or 'needed'}"
            )
        missing = _missing(risk, locked.signatures)
        if decision == "approve" and principal.role not in missing:
            raise Conflict(
                f"version {v} already has the approval of a {principal.role}; it still needs {' and '.join(missing)}"
            )
        if decision == "approve" and locked.based_on is not None and locked.based_on != locked.current_version:
            raise Conflict(
                f"version {v} was made on version {locked.based_on}, but version {locked.current_version} is "
                f"current now, so approving it would undo that one: reject it and send the change again (it will "
                f"be made on version {locked.current_version})"
            )


async def _version_record(service: ConfigService, config: StoredConfig, version: int) -> VersionRecord:
    record = await VersionRepository(service.repo.db).get(config.tenant_id, config.config_id, version)
    if record is None:
        raise VersionNotFound(config.key, version, config.latest_version)
    return record
