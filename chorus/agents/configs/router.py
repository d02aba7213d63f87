"""The seeds' config upload API: POST /api/v1/configs, GET /api/v1/configs/{id}, validation."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body

from chorus.agents.api_deps import ConfigServiceDep, DeveloperDep, PrincipalDep
from chorus.agents.configs.repository import StoredConfig

router = APIRouter(prefix="/api/v1/configs", tags=["configs"])


def config_view(stored: StoredConfig, warnings: list[dict[str, str]] | None = None) -> dict[str, Any]:
    return {
        "config_id": stored.config_id,
        "config_name": stored.name,
        "product_type": stored.product_type,
        "version": stored.version,
        "latest_version": stored.latest_version,
        "status": "active",
        "validation_status": "passed",
        "warnings": warnings or [],
        "parsed_config": stored.config,
        "created_at": stored.created_at,
        "updated_at": stored.updated_at,
    }


@router.post("", status_code=201, summary="Upload a bot config (validated; becomes assistant version 1)")
async def create_config(
    principal: DeveloperDep,
    service: ConfigServiceDep,
    body: Annotated[dict[str, Any], Body(description="The bot config")],
) -> dict[str, Any]:
    stored, report = await service.create(principal.tenant_id, body)
    return config_view(stored, [w.to_dict() for w in report.warnings])


@router.post("/validate", summary="Validate a bot config without storing it")
async def validate(
    principal: PrincipalDep, service: ConfigServiceDep, body: Annotated[Any, Body(description="The bot config")]
) -> dict[str, Any]:
    return (await service.validate(principal.tenant_id, body)).to_dict()


@router.get("/{config_id}", summary="Get a bot config (latest version, or ?version=N)")
async def get_config(
    config_id: str, principal: PrincipalDep, service: ConfigServiceDep, version: int | None = None
) -> dict[str, Any]:
    return config_view(await service.repo.get(principal.tenant_id, config_id, version))
