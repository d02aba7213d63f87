"""The seeds' config API under /api/v1/configs: upload (by the file's own id), list, get, validate, apply (many
files, GitOps), versions, diff, rollback.
`{config_id}` is the config's id (its file's `config_metadata.config_id`) or its assistant id."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Path, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from chorus.agents.api_deps import ConfigServiceDep, DeveloperDep, ViewerDep, config_permission
from chorus.agents.configs.apply import ApplyFile, ConfigApply
from chorus.agents.configs.approvals import version_status
from chorus.agents.configs.approvals_repository import ApprovalRepository, Signature
from chorus.agents.configs.checks import check_config, validate_next_version
from chorus.agents.configs.history import Author, VersionRecord, parse_version
from chorus.agents.configs.pages import page_info
from chorus.agents.configs.repository import StoredConfig
from chorus.agents.configs.versions import ConfigVersions
from chorus.agents.errors import InvalidInput
from chorus.agents.tenancy.keys import Principal

router = APIRouter(prefix="/api/v1/configs", tags=["configs"])

# The seed's config_permissions, each a role dependency: where roles are remapped when they grow.
ViewConfigDep = ViewerDep
EditConfigDep = DeveloperDep
RollbackVersionsDep = Annotated[Principal, Depends(config_permission("rollback_versions"))]


def _versions(service: ConfigServiceDep) -> ConfigVersions:
    return ConfigVersions(service)


VersionsDep = Annotated[ConfigVersions, Depends(_versions)]
ConfigIdPath = Annotated[
    str, Path(description="The config's id (config_metadata.config_id) or its assistant id", max_length=128)
]


class RollbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    target_version: int | str = Field(description="The version to restore: 3, or the seeds' 'v3'")
    reason: str = Field(min_length=1, max_length=1000, description="Why; kept in the new version's commit message")


class AppliedFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str = Field(
        min_length=1, max_length=512, description="The file's path relative to the directory applied: its identity"
    )
    config: Any = Field(description="The bot config the file holds")


class ApplyRequest(BaseModel):
    """Many config files applied together (`chorus config apply`): planned first, stored only if none has a
    problem."""

    model_config = ConfigDict(extra="forbid")
    files: list[AppliedFile] = Field(min_length=1, max_length=1000)
    commit_message: str | None = Field(default=None, max_length=1000, description="Why; kept on each new version")
    dry_run: bool = Field(default=False, description="Only plan: store nothing")
    force: bool = Field(
        default=False, description="Apply over drift (changes made on the server since the last apply) and id changes"
    )


def config_view(stored: StoredConfig, warnings: list[dict[str, str]] | None = None) -> dict[str, Any]:
    return {
        "config_id": stored.key,
        "assistant_id": stored.config_id,
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


def version_view(record: VersionRecord, current: int, signatures: list[Signature] | None = None) -> dict[str, Any]:
    classification = record.change_classification or {}
    return {
        "version": record.version,
        "status": version_status(record, current),
        "commit_message": record.commit_message,
        "author": record.author.to_dict() if record.author else None,
        "source": record.source,
        "applied_at": record.created_at,
        "current": record.version == current,
        "rollback_available": record.version != current and record.status == "approved",
        "rolled_back_to": record.rolled_back_to,
        "risk_level": record.risk_level,
        "changes": classification.get("changes"),
        "approval_required_from": classification.get("approval_required_from"),
        "based_on": record.based_on,
        "approvals": [s.to_dict() for s in signatures or []],
        "source_path": record.source_path,
    }


@router.post(
    "",
    status_code=201,
    summary="Upload a bot config: created under its config_metadata.config_id, or a new version of it (200)",
    responses={200: {"description": "a config of that id existed: a new version, or none if the content is the same"}},
)
async def create_config(
    principal: EditConfigDep,
    service: ConfigServiceDep,
    response: Response,
    body: Annotated[dict[str, Any], Body(description="The bot config")],
    commit_message: Annotated[str | None, Query(max_length=1000, description="Why this version")] = None,
    source: Annotated[Literal["upload", "apply"], Query(description="`apply`: from files kept in git")] = "upload",
) -> dict[str, Any]:
    done = await service.upload(
        principal.tenant_id,
        body,
        author=Author.of(principal),
        source=source,
        commit_message=commit_message,
        reviewed=True,
    )
    if not done.created:
        response.status_code = 200
    pending = done.stored.version != done.stored.latest_version
    return {
        **config_view(done.stored, [w.to_dict() for w in done.report.warnings]),
        "created": done.created,
        "changed": done.changed,
        "status": "pending_approval" if pending else "current",
    }


@router.get("", summary="The tenant's configs at their current versions, oldest first (`chorus config pull`)")
async def list_configs(
    principal: ViewConfigDep,
    service: ConfigServiceDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> dict[str, Any]:
    found = await service.repo.search(
        principal.tenant_id,
        metadata=None,
        graph_id=None,
        name=None,
        limit=limit,
        offset=offset,
        sort_by="created_at",
        sort_order="asc",
    )
    total = await service.repo.count(principal.tenant_id, metadata=None, graph_id=None, name=None)
    return {
        "configs": [config_view(c) for c in found],
        "total": total,
        "pagination": page_info(limit=limit, offset=offset, returned=len(found), total=total),
    }


@router.post(
    "/apply",
    summary="Apply many config files (GitOps): a plan, then every created or changed one stored, or none",
)
async def apply_configs(principal: EditConfigDep, service: ConfigServiceDep, body: ApplyRequest) -> dict[str, Any]:
    done = await ConfigApply(service).apply(
        principal.tenant_id,
        [ApplyFile(f.path, f.config) for f in body.files],
        author=Author.of(principal),
        commit_message=body.commit_message,
        force=body.force,
        dry_run=body.dry_run,
    )
    return done.to_dict()


@router.post(
    "/validate",
    summary="Validate a bot config without storing it: the named checks, and whether it is ready to deploy",
)
async def validate(
    principal: ViewConfigDep, service: ConfigServiceDep, body: Annotated[Any, Body(description="The bot config")]
) -> dict[str, Any]:
    done = await check_config(service.repo.db, service.registry, principal.tenant_id, body)
    return done.to_dict()


@router.post(
    "/{config_id}/validate",
    summary="Validate a stored config (its current version, or ?version=N), or a body as its next version",
)
async def validate_stored(
    config_id: ConfigIdPath,
    principal: ViewConfigDep,
    versions: VersionsDep,
    version: Annotated[str | None, Query(description="A stored version: 3 or v3 (default: the current one)")] = None,
    body: Annotated[
        Any,
        Body(description="Optional: a whole config to check as the config's next version, before storing it"),
    ] = None,
) -> dict[str, Any]:
    service = versions.service
    stored = await service.repo.find(principal.tenant_id, config_id)
    if body is not None:
        if version is not None:
            raise InvalidInput(
                "?version picks a stored version to validate; a body is validated as the next version: send one "
                "or the other",
                errors=[{"path": "$.version", "message": "not allowed with a body"}],
            )
        return (await validate_next_version(service, principal.tenant_id, stored, body)).to_dict()
    raw, number = stored.config, stored.version
    if version is not None:
        _, record = await versions.get(principal.tenant_id, config_id, parse_version(version, where="$.version"))
        raw, number = record.config, record.version
    done = await check_config(
        service.repo.db, service.registry, principal.tenant_id, raw, config_id=stored.key, version=number, stored=True
    )
    return done.to_dict()


@router.get("/{config_id}", summary="Get a bot config (its current version, or ?version=N)")
async def get_config(
    config_id: ConfigIdPath,
    principal: ViewConfigDep,
    versions: VersionsDep,
    version: Annotated[str | None, Query(description="A version number: 3 or v3")] = None,
) -> dict[str, Any]:
    stored = await versions.service.repo.find(principal.tenant_id, config_id)
    if version is None:
        return config_view(stored)
    _, record = await versions.get(principal.tenant_id, config_id, parse_version(version, where="$.version"))
    return {**config_view(stored), "version": record.version, "parsed_config": record.config}


@router.get("/{config_id}/versions", summary="A config's versions, newest first: who, when, how and why")
async def list_versions(
    config_id: ConfigIdPath,
    principal: ViewConfigDep,
    versions: VersionsDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> dict[str, Any]:
    page = await versions.page(principal.tenant_id, config_id, limit=limit, offset=offset)
    signed = await ApprovalRepository(versions.service.repo.db).signatures(
        principal.tenant_id, page.config.config_id, [v.version for v in page.versions]
    )
    return {
        "config_id": page.config.key,
        "assistant_id": page.config.config_id,
        "product_type": page.config.product_type,
        "current_version": page.config.version,
        "versions": [version_view(v, page.config.version, signed.get(v.version)) for v in page.versions],
        "total_versions": page.total,
        "pagination": page_info(limit=limit, offset=offset, returned=len(page.versions), total=page.total),
    }


@router.get("/{config_id}/versions/{version}", summary="One version of a config, with its content")
async def get_version(
    config_id: ConfigIdPath,
    version: Annotated[str, Path(description="A version number: 3 or v3", max_length=32)],
    principal: ViewConfigDep,
    versions: VersionsDep,
) -> dict[str, Any]:
    stored, record = await versions.get(principal.tenant_id, config_id, parse_version(version, where="$.version"))
    signed = await ApprovalRepository(versions.service.repo.db).signatures(
        principal.tenant_id, stored.config_id, [record.version]
    )
    return {
        "config_id": stored.key,
        "assistant_id": stored.config_id,
        **version_view(record, stored.version, signed[record.version]),
        "parsed_config": record.config,
    }


@router.get(
    "/{config_id}/diff",
    summary="What changed between two versions: an RFC 6902 JSON Patch and a map of dotted paths to old and new",
)
async def diff_versions(
    config_id: ConfigIdPath,
    principal: ViewConfigDep,
    versions: VersionsDep,
    start: Annotated[
        str | None, Query(alias="from", description="The older version (default: the one before `to`)")
    ] = None,
    end: Annotated[str | None, Query(alias="to", description="The newer version (default: the current one)")] = None,
) -> dict[str, Any]:
    done = await versions.diff(
        principal.tenant_id,
        config_id,
        start=parse_version(start, where="$.from") if start is not None else None,
        end=parse_version(end, where="$.to") if end is not None else None,
    )
    return {
        "config_id": done.config.key,
        "from_version": done.from_version,
        "to_version": done.to_version,
        "changed": done.diff.changed,
        "patch": done.diff.patch,
        "diff": done.diff.changes,
    }


@router.post("/{config_id}/rollback", summary="Roll back: a new version equal to an earlier one (history stays)")
async def rollback(
    config_id: ConfigIdPath, body: RollbackRequest, principal: RollbackVersionsDep, versions: VersionsDep
) -> dict[str, Any]:
    done = await versions.rollback(
        principal.tenant_id,
        config_id,
        target=parse_version(body.target_version, where="$.target_version"),
        reason=body.reason,
        author=Author.of(principal),
    )
    return {
        "config_id": done.config.key,
        "assistant_id": done.config.config_id,
        "rolled_back_from": done.rolled_back_from,
        "rolled_back_to": done.rolled_back_to,
        "new_current_version": done.config.version,
        "commit_message": done.commit_message,
        "applied_at": done.config.updated_at,
    }
