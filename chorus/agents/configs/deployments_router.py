"""Environments and deploys under /api/v1/configs: deploy a version (at once or as a blue-green rollout),
promote or roll back a rollout, set an environment's overrides and required eval suites, read the deployment
history, per-version live metrics, and the tenant's config events (hot reload)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from chorus.agents.api_deps import ConfigServiceDep, ViewerDep
from chorus.agents.configs.config_events import ConfigEvents
from chorus.agents.configs.deploy_gate import DeployGate, NoSuiteResults
from chorus.agents.configs.deployments import Deployed, Deployments, DeployRequest
from chorus.agents.configs.diff import diff_configs
from chorus.agents.configs.environments import EnvironmentState, effective_config
from chorus.agents.configs.history import Author, parse_version
from chorus.agents.configs.override_approvals import decide_overrides
from chorus.agents.configs.pages import page_info
from chorus.agents.configs.repository import StoredConfig
from chorus.agents.configs.version_metrics import version_metrics
from chorus.agents.errors import Forbidden, InvalidInput, VersionNotFound
from chorus.agents.tenancy.environments import ENVIRONMENTS, Environment
from chorus.agents.tenancy.keys import Principal
from chorus.runs.streaming import SSE_HEADERS, sse

router = APIRouter(prefix="/api/v1/configs", tags=["deploys"])

ConfigIdPath = Annotated[
    str, Path(description="The config's id (config_metadata.config_id) or its assistant id", max_length=128)
]
EnvironmentPath = Annotated[Environment, Path(description="staging or production")]
DeploymentIdPath = Annotated[str, Path(description="The deployment's id", max_length=64)]


def _deployments(request: Request, service: ConfigServiceDep) -> Deployments:
    gate: DeployGate = getattr(request.app.state, "deploy_gate", None) or DeployGate(NoSuiteResults())
    return Deployments(service, gate)


DeploymentsDep = Annotated[Deployments, Depends(_deployments)]


def may_change(principal: Principal, environment: Environment) -> None:
    """Refuse (403) a key that may not change what `environment` serves: production needs the
    deploy_to_production permission and a production key; staging needs a role that writes (developer)."""
    if environment == "production":
        if principal.environment != "production":
            raise Forbidden(
                "a staging key cannot change production; use a production key with the deploy_to_production permission"
            )
        principal.require_permission("deploy_to_production")
    else:
        principal.require("developer")


class DeployBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    environment: Environment = Field(description="staging or production")
    version: int | str | None = Field(default=None, description="The version to deploy (default: the current one)")
    deployment_strategy: Literal["blue_green", "immediate"] = Field(
        default="blue_green",
        description="blue_green: `rollout_percent` % of new conversations get the version until it is promoted; "
        "immediate: every new conversation at once",
    )
    rollout_percent: int = Field(default=100, ge=1, le=100, description="Share of new conversations, 1-100")
    auto_rollback: bool = Field(default=True, description="Roll back by itself when a threshold is passed")
    rollback_on_error_rate: float | None = Field(
        default=0.05, ge=0, le=1, description="Error rate of the new version's turns above which it rolls back"
    )
    rollback_on_escalation_rate: float | None = Field(
        default=None, ge=0, le=1, description="Escalation rate of its conversations above which it rolls back"
    )
    window_seconds: int = Field(default=600, ge=10, le=7 * 86400, description="The window the rates are over")
    min_turns: int = Field(default=20, ge=1, le=1_000_000, description="Turns needed before a rate is judged")


class PromoteBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rollout_percent: int = Field(default=100, ge=1, le=100, description="The new share; 100 ends the rollout")


class RollbackBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=1000, description="Why; kept in the deployment's history")


class EnvironmentPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    overrides: dict[str, Any] | None = Field(
        default=None, description="A merge patch over the config served here (RFC 7396); {} removes every override"
    )
    required_eval_suites: list[Annotated[str, Field(min_length=1, max_length=200)]] | None = Field(
        default=None, max_length=20, description="Eval suites a version must pass before it is deployed here"
    )
    commit_message: str | None = Field(default=None, max_length=1000)


def _deployed_view(done: Deployed) -> dict[str, Any]:
    d, state = done.deployment, done.state
    return {
        "config_id": done.config.key,
        "assistant_id": done.config.config_id,
        "deployment_id": d.deployment_id,
        "status": {"rolling_out": "deploying", "completed": "deployed"}.get(d.status, d.status),
        "environment": d.environment,
        "strategy": d.strategy,
        "version": d.version,
        "rollout_status": {
            "blue_version": state.stable(done.config.version),
            "green_version": state.candidate_version,
            "traffic_split": {"blue": 100 - state.candidate_percent, "green": state.candidate_percent},
        },
        "monitoring_url": f"/api/v1/configs/{done.config.key}/deployments/{d.deployment_id}",
        "estimated_completion": None,  # a rollout ends when it is promoted or rolled back
        "deployment": d.to_dict(),
    }


async def _environment_view(
    deployments: Deployments, config: StoredConfig, environment: Environment, state: EnvironmentState | None
) -> dict[str, Any]:
    state = state or EnvironmentState(config.config_id, environment)
    found = await deployments.overrides(config.tenant_id, config.config_id, environment, state.overrides_revision)
    stable = state.stable(config.version)
    record = await deployments.versions.get(config.tenant_id, config.config_id, stable)
    served = record.config if record else config.config
    merged = diff_configs(served, effective_config(served, found.overrides if found else None))
    pending = await deployments.repo.pending_overrides(config.tenant_id, config.config_id, environment)
    return {
        **state.to_dict(config.version),
        "pending_overrides": [p.to_dict() for p in pending],
        "overrides": found.overrides if found else {},
        "overrides_commit_message": found.commit_message if found else None,
        "overrides_diff": merged.changes,
    }


@router.post("/{config_id}/deploy", status_code=202, summary="Deploy a version to staging or production")
async def deploy(
    config_id: ConfigIdPath, body: DeployBody, principal: ViewerDep, deployments: DeploymentsDep
) -> dict[str, Any]:
    may_change(principal, body.environment)
    request = DeployRequest(
        environment=body.environment,
        version=parse_version(body.version, where="$.version") if body.version is not None else None,
        strategy=body.deployment_strategy,
        rollout_percent=body.rollout_percent,
        auto_rollback=body.auto_rollback,
        rollback_on_error_rate=body.rollback_on_error_rate,
        rollback_on_escalation_rate=body.rollback_on_escalation_rate,
        window_seconds=body.window_seconds,
        min_turns=body.min_turns,
    )
    return _deployed_view(
        await deployments.deploy(principal.tenant_id, config_id, request, author=Author.of(principal))
    )


@router.get("/{config_id}/environments", summary="What staging and production serve, with their overrides")
async def environments(config_id: ConfigIdPath, principal: ViewerDep, deployments: DeploymentsDep) -> dict[str, Any]:
    config, states = await deployments.environments(principal.tenant_id, config_id)
    return {
        "config_id": config.key,
        "assistant_id": config.config_id,
        "current_version": config.version,
        "environments": {
            env: await _environment_view(deployments, config, env, states.get(env)) for env in ENVIRONMENTS
        },
    }


@router.patch(
    "/{config_id}/environments/{environment}",
    summary="Set an environment's overrides (a new revision, classified like a PATCH) or its required eval suites",
)
async def configure_environment(
    config_id: ConfigIdPath,
    environment: EnvironmentPath,
    body: EnvironmentPatch,
    principal: ViewerDep,
    deployments: DeploymentsDep,
) -> dict[str, Any]:
    may_change(principal, environment)
    if body.overrides is None and body.required_eval_suites is None:
        raise InvalidInput(
            "nothing to change: send `overrides` (a merge patch over the config) or `required_eval_suites`",
            errors=[{"path": "$", "message": "expected overrides or required_eval_suites"}],
        )
    config, state, made = await deployments.configure(
        principal.tenant_id,
        config_id,
        environment,
        overrides=body.overrides,
        required_eval_suites=body.required_eval_suites,
        commit_message=body.commit_message,
        principal=principal,
    )
    return {
        "config_id": config.key,
        "environment": environment,
        **(await _environment_view(deployments, config, environment, state)),
        "revision": made.to_dict() if made else None,
    }


class OverridesDecision(BaseModel):
    model_config = ConfigDict(extra="forbid")
    comment: str | None = Field(default=None, max_length=1000)


class OverridesRejection(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=1000)


RevisionPath = Annotated[int, Path(ge=1, le=1_000_000, description="The overrides revision")]


async def _decide(
    deployments: Deployments,
    principal: Principal,
    config_id: str,
    environment: Environment,
    revision: int,
    decision: Literal["approve", "reject"],
    comment: str | None,
) -> dict[str, Any]:
    config, after, missing = await decide_overrides(
        deployments, principal, config_id, environment, revision, decision=decision, comment=comment
    )
    return {"config_id": config.key, "environment": environment, **after.to_dict(), "approval_required_from": missing}


@router.post(
    "/{config_id}/environments/{environment}/overrides/{revision}/approve",
    summary="Approve an overrides revision waiting for approval; its last approval puts it in force",
)
async def approve_overrides(
    config_id: ConfigIdPath,
    environment: EnvironmentPath,
    revision: RevisionPath,
    body: OverridesDecision,
    principal: ViewerDep,
    deployments: DeploymentsDep,
) -> dict[str, Any]:
    return await _decide(deployments, principal, config_id, environment, revision, "approve", body.comment)


@router.post(
    "/{config_id}/environments/{environment}/overrides/{revision}/reject",
    summary="Reject an overrides revision waiting for approval, for good",
)
async def reject_overrides(
    config_id: ConfigIdPath,
    environment: EnvironmentPath,
    revision: RevisionPath,
    body: OverridesRejection,
    principal: ViewerDep,
    deployments: DeploymentsDep,
) -> dict[str, Any]:
    return await _decide(deployments, principal, config_id, environment, revision, "reject", body.reason)


@router.get("/{config_id}/deployments", summary="Deployment history, newest first")
async def list_deployments(
    config_id: ConfigIdPath,
    principal: ViewerDep,
    deployments: DeploymentsDep,
    environment: Annotated[Environment | None, Query(description="staging or production")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> dict[str, Any]:
    config = await deployments.service.repo.find(principal.tenant_id, config_id)
    rows, total = await deployments.repo.deployments(
        principal.tenant_id, config.config_id, environment=environment, limit=limit, offset=offset
    )
    return {
        "config_id": config.key,
        "deployments": [d.to_dict() for d in rows],
        "total": total,
        "pagination": page_info(limit=limit, offset=offset, returned=len(rows), total=total),
    }


@router.get(
    "/{config_id}/deployments/{deployment_id}",
    summary="One deployment, with live metrics of its version beside the version it replaced",
)
async def get_deployment(
    config_id: ConfigIdPath, deployment_id: DeploymentIdPath, principal: ViewerDep, deployments: DeploymentsDep
) -> dict[str, Any]:
    config, d = await deployments.deployment(principal.tenant_id, config_id, deployment_id)
    versions = [v for v in (d.previous_version, d.version) if v is not None]
    metrics = await version_metrics(
        deployments.service.repo.db,
        tenant_id=principal.tenant_id,
        config_id=config.config_id,
        versions=sorted(set(versions)),
        since=d.created_at,
        environment=d.environment,
    )
    return {
        "config_id": config.key,
        **d.to_dict(),
        "metrics": {
            "since": d.created_at,
            "until": d.finished_at,
            "versions": [metrics[v].to_dict() for v in sorted(metrics)],
        },
    }


@router.post("/{config_id}/deployments/{deployment_id}/promote", summary="Raise a rollout's share; 100 ends it")
async def promote(
    config_id: ConfigIdPath,
    deployment_id: DeploymentIdPath,
    body: PromoteBody,
    principal: ViewerDep,
    deployments: DeploymentsDep,
) -> dict[str, Any]:
    principal.require("developer")  # before the id is looked up: no role that can never promote learns of it
    _, d = await deployments.deployment(principal.tenant_id, config_id, deployment_id)
    may_change(principal, d.environment)
    done = await deployments.promote(
        principal.tenant_id, config_id, deployment_id, percent=body.rollout_percent, author=Author.of(principal)
    )
    return _deployed_view(done)


@router.post(
    "/{config_id}/deployments/{deployment_id}/rollback",
    summary="Roll back a rollout, or an environment's latest deployment",
)
async def rollback_deployment(
    config_id: ConfigIdPath,
    deployment_id: DeploymentIdPath,
    body: RollbackBody,
    principal: ViewerDep,
    deployments: DeploymentsDep,
) -> dict[str, Any]:
    principal.require_permission("rollback_versions")  # before the id is looked up
    _, d = await deployments.deployment(principal.tenant_id, config_id, deployment_id)
    if d.environment == "production" and principal.environment != "production":
        raise Forbidden("a staging key cannot change production; use a production key")
    done = await deployments.rollback(
        principal.tenant_id, config_id, deployment_id, reason=body.reason, author=Author.of(principal)
    )
    return _deployed_view(done)


@router.get("/{config_id}/metrics", summary="Live metrics per version, side by side")
async def metrics(
    config_id: ConfigIdPath,
    principal: ViewerDep,
    deployments: DeploymentsDep,
    versions: Annotated[
        str | None, Query(description="Comma-separated versions (default: the ones the environments serve)")
    ] = None,
    since_minutes: Annotated[int, Query(ge=1, le=60 * 24 * 90, description="The window, in minutes")] = 60,
    environment: Annotated[Environment | None, Query(description="staging or production (default: both)")] = None,
) -> dict[str, Any]:
    config, states = await deployments.environments(principal.tenant_id, config_id)
    if versions:
        chosen = sorted({parse_version(v, where="$.versions") for v in versions.split(",")[:20]})
        known = await deployments.versions.count(principal.tenant_id, config.config_id)
        if unknown := [v for v in chosen if v > known]:
            raise VersionNotFound(config.key, unknown[0], known)
    else:
        served = {config.version}
        for state in states.values():
            served |= {state.stable(config.version), *([state.candidate_version] if state.candidate_version else [])}
        chosen = sorted(served)
    since = datetime.now(UTC) - timedelta(minutes=since_minutes)
    found = await version_metrics(
        deployments.service.repo.db,
        tenant_id=principal.tenant_id,
        config_id=config.config_id,
        versions=chosen,
        since=since,
        environment=environment,
    )
    return {
        "config_id": config.key,
        "environment": environment,
        "since": since,
        "versions": [found[v].to_dict() for v in chosen],
    }


def _events(request: Request) -> ConfigEvents:
    events: ConfigEvents = request.app.state.config_events
    return events


@router.get(
    "/events",
    summary="The tenant's config events as server-sent events: deploys, promotions, rollbacks (hot reload)",
    response_class=StreamingResponse,
)
async def config_events(
    principal: ViewerDep,
    events: Annotated[ConfigEvents, Depends(_events)],
    max_seconds: Annotated[
        float, Query(ge=0.1, le=86_400, description="End the stream after this long (reconnect to go on)")
    ] = 3600,
) -> StreamingResponse:
    async def stream() -> Any:
        yield b": connected\n\n"
        deadline = time.monotonic() + max_seconds
        async for event in events.subscribe(principal.tenant_id, keepalive_s=min(15.0, max_seconds)):
            if event is not None:
                yield sse(None, event["event_type"], event)
            elif time.monotonic() < deadline:
                yield b": keepalive\n\n"
            if time.monotonic() >= deadline:
                return

    return StreamingResponse(stream(), media_type="text/event-stream", headers=SSE_HEADERS)
