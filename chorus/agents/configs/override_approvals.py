"""Approving and rejecting an environment's overrides revision that waits for approval: the same rules as a
config version's (approvals.py): medium risk needs an organization_admin, high risk an organization_admin and
a platform_engineer. The revision comes into force with its last approval, if it was made on the overrides
still in force; else it must be sent again (409)."""

from __future__ import annotations

from datetime import UTC, datetime

from chorus.agents.configs.approvals import require_approver, risk_of
from chorus.agents.configs.approvals_repository import Decision
from chorus.agents.configs.change_risk import APPROVERS
from chorus.agents.configs.deployments import Deployments
from chorus.agents.configs.deployments_repository import OverridesRevision, OverridesStatus
from chorus.agents.configs.repository import StoredConfig
from chorus.agents.errors import Conflict, Forbidden, NotFound
from chorus.agents.tenancy.environments import Environment
from chorus.agents.tenancy.keys import Principal
from chorus.agents.tenancy.permissions import Role


async def decide_overrides(
    deployments: Deployments,
    principal: Principal,
    ident: str,
    environment: Environment,
    revision: int,
    *,
    decision: Decision,
    comment: str | None,
) -> tuple[StoredConfig, OverridesRevision, list[Role]]:
    """Sign a pending revision; the revision after it, and the roles still missing."""
    require_approver(principal)
    if environment == "production" and principal.environment != "production":
        raise Forbidden("a staging key cannot approve production's overrides; use a production key")
    config = await deployments.service.repo.find(principal.tenant_id, ident)
    async with deployments.repo.locked(principal.tenant_id, config.config_id, environment) as env:
        found = await env.overrides_for_update(revision)
        if found is None:
            raise NotFound(f"revision {revision} of the {environment} overrides of '{config.key}' does not exist")
        if found.status != "pending_approval":
            raise Conflict(f"revision {revision} of the {environment} overrides is {found.status.replace('_', ' ')}")
        risk = risk_of(found.risk_level)
        needed = APPROVERS[risk]
        signed = [a for a in found.approvals if a["decision"] == "approve"]
        if any(a["key_id"] == principal.key_id for a in found.approvals):
            raise Conflict("this key has already signed this revision")
        if principal.role not in needed:
            raise Forbidden(
                f"{risk} risk overrides are approved by {' and '.join(needed)}; your key has '{principal.role}'"
            )
        if decision == "approve" and principal.role in {a["role"] for a in signed}:
            missing = [r for r in needed if r not in {a["role"] for a in signed}]
            raise Conflict(f"an {principal.role} has approved already; it still needs {' and '.join(missing)}")
        signature = {
            "decision": decision,
            "key_id": principal.key_id,
            "role": principal.role,
            "comment": comment,
            "at": datetime.now(UTC).isoformat(),
        }
        approvals = [*found.approvals, signature]
        missing = [r for r in needed if r not in {a["role"] for a in approvals if a["decision"] == "approve"}]
        status: OverridesStatus
        if decision == "reject":
            status = "rejected"
        elif missing:
            status = "pending_approval"
        elif found.based_on != env.state.overrides_revision:
            raise Conflict(
                f"the {environment} overrides changed since revision {revision} was made (it was made on revision "
                f"{found.based_on}, {env.state.overrides_revision} is in force): reject it and send it again"
            )
        else:
            status = "approved"
        await env.decide_overrides(revision, status, approvals)
        if status == "approved":
            await deployments.announce(env)
        after = await env.overrides_for_update(revision)
        assert after is not None
    return config, after, missing
