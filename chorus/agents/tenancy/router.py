"""API keys over HTTP (organization_admin only): create (the key in clear, once), list, revoke."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field

from chorus.agents.api_deps import AdminDep, DbDep, KeyResolverDep
from chorus.agents.errors import Forbidden
from chorus.agents.tenancy.environments import Environment
from chorus.agents.tenancy.keys import issue_api_key, list_api_keys, revoke_api_key
from chorus.agents.tenancy.permissions import RoleName

router = APIRouter(prefix="/api/v1/keys", tags=["keys"])


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: RoleName = Field(description="one of the roles in docs/api.md#roles; 'admin' means organization_admin")
    name: str | None = Field(default=None, max_length=200, description="a label, e.g. who or what uses the key")
    environment: Environment = Field(
        default="production", description="the environment whose deployed versions the key's conversations get"
    )


@router.post("", status_code=201, summary="Create an API key; the answer holds the key in clear, the only time")
async def create_key(body: KeyCreate, principal: AdminDep, db: DbDep) -> dict[str, Any]:
    if principal.environment == "staging" and body.environment != "staging":
        raise Forbidden("a staging key creates staging keys only; a production key needs a production admin key")
    new = await issue_api_key(
        db,
        tenant_id=principal.tenant_id,
        role=body.role,
        name=body.name,
        created_by=principal.key_id,
        environment=body.environment,
    )
    return {**new.info.to_dict(), "key": new.key}


@router.get("", summary="The tenant's API keys (prefix, name, role, created, last used, revoked)")
async def list_keys(principal: AdminDep, db: DbDep) -> dict[str, Any]:
    return {"keys": [k.to_dict() for k in await list_api_keys(db, principal.tenant_id)]}


@router.delete("/{key_id}", status_code=204, summary="Revoke an API key (not the tenant's last organization_admin key)")
async def revoke_key(key_id: str, principal: AdminDep, db: DbDep, resolver: KeyResolverDep) -> Response:
    # A staging key revokes staging keys only.
    only: Environment | None = "staging" if principal.environment == "staging" else None
    revoked = await revoke_api_key(db, tenant_id=principal.tenant_id, key_id=key_id, only_environment=only)
    resolver.forget(revoked.key_id)
    return Response(status_code=204)
