"""Publishable keys over HTTP (organization_admin only): create (the key in clear, once), list, revoke."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from chorus.agents.api_deps import AdminDep, DbDep
from chorus.agents.tenancy.publishable_keys import (
    DEFAULT_KEY_PER_MINUTE,
    DEFAULT_VISITOR_PER_MINUTE,
    MAX_BOTS,
    MAX_ORIGINS,
    PublishableKeyResolver,
    create_publishable_key,
    list_publishable_keys,
    revoke_publishable_key,
)

router = APIRouter(prefix="/api/v1/publishable-keys", tags=["publishable keys"])


class PublishableKeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    assistant_ids: list[str] = Field(
        min_length=1, max_length=MAX_BOTS, description="the chatbots the widget may talk to (the first is its default)"
    )
    allowed_origins: list[str] = Field(
        default_factory=list,
        max_length=MAX_ORIGINS,
        description="web origins that embed the widget, as browsers send them: https://shop.example.com",
    )
    allow_no_origin: bool = Field(
        default=False, description="also accept requests without an Origin header (server-to-server, tests)"
    )
    key_requests_per_minute: int = Field(default=DEFAULT_KEY_PER_MINUTE, ge=1, le=1_000_000)
    visitor_requests_per_minute: int = Field(default=DEFAULT_VISITOR_PER_MINUTE, ge=1, le=1_000_000)
    name: str | None = Field(default=None, max_length=200, description="a label, e.g. the site that embeds it")


@router.post("", status_code=201, summary="Create a publishable key for the widget; the answer holds it, once")
async def create_key(body: PublishableKeyCreate, principal: AdminDep, db: DbDep) -> dict[str, Any]:
    new = await create_publishable_key(
        db,
        tenant_id=principal.tenant_id,
        assistant_ids=body.assistant_ids,
        allowed_origins=body.allowed_origins,
        allow_no_origin=body.allow_no_origin,
        key_per_minute=body.key_requests_per_minute,
        visitor_per_minute=body.visitor_requests_per_minute,
        name=body.name,
        created_by=principal.key_id,
    )
    return {**new.info.to_dict(), "key": new.key}


@router.get("", summary="The tenant's publishable keys (prefix, bots, origins, limits, revoked)")
async def list_keys(principal: AdminDep, db: DbDep) -> dict[str, Any]:
    return {"keys": [k.to_dict() for k in await list_publishable_keys(db, principal.tenant_id)]}


@router.delete("/{publishable_key_id}", status_code=204, summary="Revoke a publishable key and its visitor tokens")
async def revoke_key(publishable_key_id: str, principal: AdminDep, db: DbDep, request: Request) -> Response:
    revoked = await revoke_publishable_key(db, tenant_id=principal.tenant_id, key_id=publishable_key_id)
    resolver: PublishableKeyResolver = request.app.state.publishable_keys
    resolver.forget(revoked.key_id)
    return Response(status_code=204)
