"""FastAPI dependencies shared by every router: the database, the tool registry and the caller.

Every route that is not public takes exactly one of the level aliases (docs/api.md publishes the matrix,
tests/test_roles.py checks it): `ViewerDep` (any key of the tenant: reads), `DeveloperDep` (writes),
`AdminDep` (organization_admin: the tenant's keys and secrets). `PrincipalDep` is the same as `ViewerDep`.
Which roles reach which level, and which config permissions each has, is chorus/agents/tenancy/permissions.py;
`config_permission(...)` makes the dependency of a route that needs one of the seed's config_permissions.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request

from chorus.agents.configs.service import ConfigService
from chorus.agents.observability.logs import tenant_id_var
from chorus.agents.storage.database import Database
from chorus.agents.tenancy.keys import KeyResolver, Principal
from chorus.agents.tenancy.permissions import ConfigPermission
from chorus.agents.tenancy.publishable_keys import refuse_widget_credential
from chorus.agents.tenancy.rate_limits import RateLimiter, tenant_limit
from chorus.agents.tools.registry import ToolRegistry


def _db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


def _registry(request: Request) -> ToolRegistry:
    registry: ToolRegistry = request.app.state.registry
    return registry


def _configs(request: Request) -> ConfigService:
    service: ConfigService = request.app.state.config_service
    return service


async def _principal(request: Request) -> Principal:
    key = request.headers.get("x-api-key")
    auth = request.headers.get("authorization", "")
    if not key and auth.lower().startswith("bearer "):
        key = auth[7:].strip()
    refuse_widget_credential(key, publishable_header=request.headers.get("x-publishable-key"))
    resolver: KeyResolver = request.app.state.key_resolver
    principal = await resolver.resolve(key)
    tenant_id_var.set(principal.tenant_id)
    limiter: RateLimiter = request.app.state.rate_limiter
    per_minute: int = request.app.state.settings.rate_limit_per_minute
    await limiter.hit(tenant_limit(principal.tenant_id, principal.tenant_name, per_minute))
    return principal


async def _developer(principal: Annotated[Principal, Depends(_principal)]) -> Principal:
    principal.require("developer")
    return principal


async def _admin(principal: Annotated[Principal, Depends(_principal)]) -> Principal:
    principal.require("organization_admin")
    return principal


def config_permission(permission: ConfigPermission) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency refusing (403) keys whose role lacks `permission`:
    `principal: Annotated[Principal, Depends(config_permission("rollback_versions"))]`."""

    async def _require(principal: Annotated[Principal, Depends(_principal)]) -> Principal:
        principal.require_permission(permission)
        return principal

    return _require


def _key_resolver(request: Request) -> KeyResolver:
    resolver: KeyResolver = request.app.state.key_resolver
    return resolver


DbDep = Annotated[Database, Depends(_db)]
RegistryDep = Annotated[ToolRegistry, Depends(_registry)]
ConfigServiceDep = Annotated[ConfigService, Depends(_configs)]
PrincipalDep = Annotated[Principal, Depends(_principal)]
ViewerDep = PrincipalDep
DeveloperDep = Annotated[Principal, Depends(_developer)]
AdminDep = Annotated[Principal, Depends(_admin)]
KeyResolverDep = Annotated[KeyResolver, Depends(_key_resolver)]
