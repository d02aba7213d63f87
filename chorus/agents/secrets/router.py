"""The vault over HTTP: /api/v1/secrets. Every route needs the organization_admin role; values go in, never out.

A secret is named by its name and, for one scoped to an environment, `?environment=staging|production`
(the body's `environment` on create); without it, a route acts on the secret serving every environment.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from chorus.agents.api_deps import PrincipalDep
from chorus.agents.errors import Forbidden
from chorus.agents.secrets.repository import Actor
from chorus.agents.secrets.schemas import (
    AuditEntry,
    SecretAudit,
    SecretCreate,
    SecretDeleted,
    SecretDetail,
    SecretList,
    SecretRotate,
    SecretSummary,
)
from chorus.agents.secrets.service import SecretVault
from chorus.agents.tenancy.keys import Principal

router = APIRouter(prefix="/api/v1/secrets", tags=["secrets"])


async def _admin(principal: PrincipalDep) -> Principal:
    principal.require("organization_admin")
    return principal


def _vault(request: Request) -> SecretVault:
    vault: SecretVault = request.app.state.secrets
    return vault


AdminDep = Annotated[Principal, Depends(_admin)]
VaultDep = Annotated[SecretVault, Depends(_vault)]
# Checked by the vault (a clear 422 naming the allowed values), not by a Literal, so the API, the CLI and
# the service say the same thing.
EnvironmentQuery = Annotated[
    str | None,
    Query(
        description="The secret scoped to this environment ('staging' or 'production'); left out: the secret "
        "serving every environment"
    ),
]


def _may_write(principal: Principal, environment: str | None) -> None:
    """A staging key changes staging's secrets only: an unscoped secret serves production too."""
    if principal.environment == "staging" and environment != "staging":
        raise Forbidden(
            "a staging key changes only secrets scoped to staging (environment 'staging'); an unscoped or "
            "production secret needs a production key"
        )


def _actor(principal: Principal) -> Actor:
    return Actor(f"key:{principal.key_id}")


@router.post("", status_code=201, summary="Store a secret (encrypted; 409 if the name exists)")
async def create_secret(body: SecretCreate, principal: AdminDep, vault: VaultDep) -> SecretDetail:
    _may_write(principal, body.environment)
    described = await vault.create(
        principal.tenant_id,
        name=body.name,
        value=body.value,
        description=body.description,
        environment=body.environment,
        actor=_actor(principal),
    )
    return SecretDetail.of(described)


@router.get("", summary="List the tenant's secrets (masked)")
async def list_secrets(principal: AdminDep, vault: VaultDep) -> SecretList:
    records = await vault.list_secrets(principal.tenant_id, _actor(principal))
    items = [
        SecretSummary(
            name=r.name,
            environment=r.environment,
            description=r.description,
            version=r.latest_version,
            created_at=r.created_at,
            updated_at=r.updated_at,
            last_used=r.last_used,
            usage_count=r.usage_count,
        )
        for r in records
    ]
    return SecretList(secrets=items, total=len(items))


@router.get("/{secret_name}", summary="A secret's metadata and versions (masked; audited as a read)")
async def get_secret(
    secret_name: str, principal: AdminDep, vault: VaultDep, environment: EnvironmentQuery = None
) -> SecretDetail:
    described = await vault.describe(principal.tenant_id, secret_name, _actor(principal), environment=environment)
    return SecretDetail.of(described)


@router.post("/{secret_name}/rotate", summary="Rotate: store a new value as the next version (old versions are kept)")
async def rotate_secret(
    secret_name: str, body: SecretRotate, principal: AdminDep, vault: VaultDep, environment: EnvironmentQuery = None
) -> SecretDetail:
    _may_write(principal, environment)
    described = await vault.rotate(
        principal.tenant_id,
        secret_name,
        value=body.value,
        reason=body.rotation_reason,
        environment=environment,
        actor=_actor(principal),
    )
    return SecretDetail.of(described)


@router.delete(
    "/{secret_name}",
    summary="Delete a secret (of one scope) and all its versions; 409 naming the configs that use it when an "
    "environment would be left without the name, unless ?force=true",
)
async def delete_secret(
    secret_name: str,
    principal: AdminDep,
    vault: VaultDep,
    environment: EnvironmentQuery = None,
    force: Annotated[bool, Query(description="Delete even if bot configs reference it (they are listed)")] = False,
) -> SecretDeleted:
    _may_write(principal, environment)
    deleted = await vault.delete(
        principal.tenant_id, secret_name, force=force, environment=environment, actor=_actor(principal)
    )
    return SecretDeleted.of(deleted)


@router.get("/{secret_name}/audit", summary="Who created, read, rotated, deleted and used a secret, newest first")
async def secret_audit(
    secret_name: str,
    principal: AdminDep,
    vault: VaultDep,
    environment: EnvironmentQuery = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> SecretAudit:
    events = await vault.audit(principal.tenant_id, secret_name, limit=limit, environment=environment)
    return SecretAudit(name=secret_name, environment=environment, events=[AuditEntry.of(e) for e in events])
