"""GET /api/v1/configs/permissions: the caller's role and config_permissions (seed 001 §6, "Get Member
Configuration Permissions"), with the whole role table and who approves each risk level. Any key may ask."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from chorus.agents.api_deps import ViewerDep
from chorus.agents.configs.change_risk import APPROVERS, RISK_LEVELS, RiskLevel
from chorus.agents.tenancy.permissions import GRANTS, ROLE_ALIASES, ROLES, ApiLevel, Role

# server.py registers this router before the configs router, whose GET /api/v1/configs/{config_id} would
# otherwise take the path.
router = APIRouter(prefix="/api/v1/configs", tags=["configs"])


class RolePermissions(BaseModel):
    role: Role
    api_level: ApiLevel = Field(
        description="What the role may do on the rest of the API: viewer reads, developer also writes, "
        "organization_admin also manages keys and secrets"
    )
    config_permissions: dict[str, bool] = Field(description="The seed's eight config_permissions")
    summary: str


class Permissions(BaseModel):
    organization_id: str = Field(description="The caller's tenant")
    key_id: str
    role: Role
    api_level: ApiLevel
    config_permissions: dict[str, bool]
    roles: list[RolePermissions] = Field(description="Every role and what it may do")
    role_aliases: dict[str, Role] = Field(description="Other names a role may be given by")
    approval_required_from: dict[RiskLevel, list[Role]] = Field(
        description="Who approves a change of each risk level (docs/config-format.md#change-classification)"
    )


@router.get(
    "/permissions",
    response_model=Permissions,
    summary="Your role and its config_permissions, with every role's (seed 001 §6)",
)
async def get_permissions(principal: ViewerDep) -> Permissions:
    grant = GRANTS[principal.role]
    return Permissions(
        organization_id=principal.tenant_id,
        key_id=principal.key_id,
        role=grant.role,
        api_level=grant.api_level,
        config_permissions=grant.permissions_map(),
        roles=[RolePermissions(**GRANTS[role].to_dict()) for role in ROLES],
        role_aliases=dict(ROLE_ALIASES),
        approval_required_from={risk: list(APPROVERS[risk]) for risk in RISK_LEVELS},
    )
