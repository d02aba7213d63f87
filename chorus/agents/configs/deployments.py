"""Deploying a config version to an environment: at once, or as a blue-green rollout that sends a share of new
conversations to the new version, is promoted to 100 %, or is rolled back (by hand, or by the rollout monitor
when the new version's error or escalation rate passes its threshold). Per-environment overrides are
immutable revisions. Every change is announced on CONFIG_CHANNEL when it commits (hot reload)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from chorus.agents.configs.approvals import assert_deployable
from chorus.agents.configs.change_risk import classify_changes
from chorus.agents.configs.changes import refuse_missing_permissions
from chorus.agents.configs.deploy_gate import DeployGate
from chorus.agents.configs.deployments_repository import (
    Deployment,
    DeploymentRepository,
    LockedEnvironment,
    OverridesRevision,
    Strategy,
    notify_payload,
)
from chorus.agents.configs.environments import EnvironmentState, Serving, effective_config, serving
from chorus.agents.configs.history import Author
from chorus.agents.configs.repository import StoredConfig, parse_uuid
from chorus.agents.configs.service import ConfigService
from chorus.agents.configs.versions_repository import VersionRepository
from chorus.agents.errors import Conflict, DeployBlocked, InvalidInput, VersionNotFound
from chorus.agents.secrets.references import referenced_names
from chorus.agents.tenancy.environments import Environment
from chorus.agents.tenancy.keys import Principal

# Every process listens: a deploy, promotion, rollback or overrides change of any config (hot reload).
CONFIG_CHANNEL = "chorus_config"


@dataclass(frozen=True)
class DeployRequest:
    environment: Environment
    version: int | None = None  # None: the config's current version
    strategy: Strategy = "blue_green"
    rollout_percent: int = 100
    auto_rollback: bool = True
    rollback_on_error_rate: float | None = 0.05
    rollback_on_escalation_rate: float | None = None
    window_seconds: int = 600
    min_turns: int = 20


@dataclass(frozen=True)
class Deployed:
    config: StoredConfig
    deployment: Deployment
    state: EnvironmentState


def _check_overrides(overrides: Any) -> dict[str, Any]:
    if not isinstance(overrides, dict):
        raise InvalidInput(
            "overrides must be a JSON object: a merge patch over the config (RFC 7396)",
            errors=[{"path": "$.overrides", "message": "expected an object"}],
        )
    fixed = [k for k in ("config_metadata",) if k in overrides]
    if fixed:
        raise InvalidInput(
            "overrides cannot change config_metadata (the config's id, version and product type are the same in "
            "every environment)",
            errors=[{"path": "$.overrides.config_metadata", "message": "not overridable"}],
        )
    return overrides


class Deployments:
    def __init__(self, service: ConfigService, gate: DeployGate) -> None:
        self.service = service
        self.gate = gate
        self.repo = DeploymentRepository(service.repo.db)
        self.versions = VersionRepository(service.repo.db)

    # -- reading ------------------------------------------------------------------------------------

    async def environments(
        self, tenant_id: str, ident: str
    ) -> tuple[StoredConfig, dict[Environment, EnvironmentState]]:
        config = await self.service.repo.find(tenant_id, ident)
        return config, await self.repo.states(tenant_id, config.config_id)

    async def serving(self, tenant_id: str, config: StoredConfig, environment: Environment, thread_id: str) -> Serving:
        """What a new conversation `thread_id` of `config` (at its current version) gets in `environment`."""
        state = await self.repo.state(tenant_id, config.config_id, environment)
        return serving(state, environment=environment, current=config.version, thread_id=thread_id)

    async def overrides(
        self, tenant_id: str, config_id: str, environment: Environment, revision: int
    ) -> OverridesRevision | None:
        return await self.repo.overrides(tenant_id, config_id, environment, revision)

    async def deployment(self, tenant_id: str, ident: str, deployment_id: str) -> tuple[StoredConfig, Deployment]:
        config = await self.service.repo.find(tenant_id, ident)
        return config, await self.repo.deployment(tenant_id, config.config_id, parse_uuid(deployment_id, "deployment"))

    # -- changing -----------------------------------------------------------------------------------

    async def _deployable(self, tenant_id: str, config: StoredConfig, version: int, state: EnvironmentState) -> None:
        """Refuse a version that may not serve `state`'s environment: unknown, unapproved, invalid there (with
        its overrides), or blocked by the gate."""
        record = await self.versions.get(tenant_id, config.config_id, version)
        if record is None:
            raise VersionNotFound(config.key, version, await self.versions.count(tenant_id, config.config_id))
        assert_deployable(record)
        found = await self.repo.overrides(tenant_id, config.config_id, state.environment, state.overrides_revision)
        served = effective_config(record.config, found.overrides if found else None)
        await self.service.checked(tenant_id, served)
        blocked = [
            f"secret {name} is not in the vault for {state.environment} (chorus secrets set {name} --environment "
            f"{state.environment}, or unscoped)"
            for name in sorted(
                referenced_names(served) - await self.service.secrets.names(tenant_id, state.environment)
            )
        ]
        blocked += await self.gate.blockers(
            tenant_id, config.config_id, version, state.environment, state.required_eval_suites
        )
        if blocked:
            raise DeployBlocked(
                f"version {version} cannot be deployed to {state.environment}: " + "; ".join(blocked),
                extra={"deployment_blocked_by": blocked},
            )

    async def deploy(self, tenant_id: str, ident: str, req: DeployRequest, *, author: Author) -> Deployed:
        config = await self.service.repo.find(tenant_id, ident)
        version = req.version if req.version is not None else config.version
        percent = 100 if req.strategy == "immediate" else req.rollout_percent
        async with self.repo.locked(tenant_id, config.config_id, req.environment) as env:
            state = env.state
            await self._deployable(tenant_id, config, version, state)
            blue = state.stable(config.version)
            if version == blue and percent < 100:
                raise InvalidInput(
                    f"version {version} already serves {req.environment}: a rollout needs another version",
                    errors=[{"path": "$.version", "message": "is the stable version"}],
                )
            if version == blue and state.stable_version is not None and state.candidate_version is None:
                raise Conflict(f"{req.environment} already serves version {version}; nothing to deploy")
            if state.candidate_version is not None and state.deployment_id:
                await env.end_deployment(state.deployment_id, "superseded", "a newer deployment replaced this rollout")
            done = percent == 100
            deployment = await env.add_deployment(
                version=version,
                previous_version=blue,
                strategy=req.strategy,
                rollout_percent=percent,
                auto_rollback=req.auto_rollback,
                rollback_on_error_rate=req.rollback_on_error_rate,
                rollback_on_escalation_rate=req.rollback_on_escalation_rate,
                window_seconds=req.window_seconds,
                min_turns=req.min_turns,
                status="completed" if done else "rolling_out",
                author=author,
            )
            new = replace(
                state,
                stable_version=version if done else blue,
                candidate_version=None if done else version,
                candidate_percent=0 if done else percent,
                deployment_id=deployment.deployment_id,
            )
            await env.save(new)
            await self._announce(env, deployment.deployment_id)
        return Deployed(config, deployment, new)

    async def _current_rollout(self, env: LockedEnvironment, deployment: Deployment) -> None:
        if deployment.status != "rolling_out" or env.state.deployment_id != deployment.deployment_id:
            raise Conflict(
                f"deployment '{deployment.deployment_id}' is {deployment.status.replace('_', ' ')}, not the rollout "
                f"in progress in {deployment.environment}; GET …/environments shows what each environment serves"
            )

    async def promote(
        self, tenant_id: str, ident: str, deployment_id: str, *, percent: int, author: Author
    ) -> Deployed:
        """Send `percent` % of new conversations to the rollout's version; 100 ends the rollout."""
        config, deployment = await self.deployment(tenant_id, ident, deployment_id)
        async with self.repo.locked(tenant_id, config.config_id, deployment.environment) as env:
            deployment = await self.repo_deployment(env, deployment)
            await self._current_rollout(env, deployment)
            if percent < 100:
                deployment = await env.end_deployment(
                    deployment.deployment_id, "rolling_out", f"traffic set to {percent} %", percent=percent
                )
                new = replace(env.state, candidate_percent=percent)
            else:
                deployment = await env.end_deployment(
                    deployment.deployment_id, "completed", "promoted to 100 %", percent=100
                )
                new = replace(env.state, stable_version=deployment.version, candidate_version=None, candidate_percent=0)
            await env.save(new)
            await self._announce(env, deployment.deployment_id)
        return Deployed(config, deployment, new)

    async def repo_deployment(self, env: LockedEnvironment, deployment: Deployment) -> Deployment:
        """The deployment as it is now that its environment is locked (a rollback may have ended it)."""
        return await self.repo.deployment(env.tenant_id, deployment.config_id, deployment.deployment_id)

    async def rollback(
        self, tenant_id: str, ident: str, deployment_id: str, *, reason: str, author: Author | None
    ) -> Deployed:
        """Undo a deployment: a rollout in progress stops sending conversations to its version; the
        environment's last completed deployment gives way to the version it replaced. Conversations already
        on the version keep it (they are pinned)."""
        config, deployment = await self.deployment(tenant_id, ident, deployment_id)
        return await self._rollback(config, deployment, reason=reason, author=author)

    async def _rollback(
        self, config: StoredConfig, deployment: Deployment, *, reason: str, author: Author | None
    ) -> Deployed:
        async with self.repo.locked(config.tenant_id, config.config_id, deployment.environment) as env:
            deployment = await self.repo_deployment(env, deployment)
            if env.state.deployment_id != deployment.deployment_id or deployment.status not in (
                "rolling_out",
                "completed",
            ):
                raise Conflict(
                    f"only the latest deployment of {deployment.environment} can be rolled back, and deployment "
                    f"'{deployment.deployment_id}' is not it ({deployment.status.replace('_', ' ')}); deploy the "
                    "version you want instead"
                )
            by = f" by {author.name or author.role or author.kind}" if author else ""
            if deployment.status == "rolling_out":
                new = replace(env.state, candidate_version=None, candidate_percent=0)
            elif deployment.previous_version is None:
                raise Conflict("this deployment replaced no earlier version; deploy the version you want instead")
            else:
                new = replace(env.state, stable_version=deployment.previous_version)
            deployment = await env.end_deployment(deployment.deployment_id, "rolled_back", f"rolled back{by}: {reason}")
            await env.save(new)
            await self._announce(env, deployment.deployment_id)
        return Deployed(config, deployment, new)

    async def auto_rollback(self, deployment: Deployment, reason: str) -> Deployed | None:
        """The rollout monitor's rollback; None if the rollout ended meanwhile (promoted, superseded). A
        deleted config's rollout is rolled back too: its pinned threads may still be talking."""
        config = await self.service.repo.get(deployment.tenant_id, deployment.config_id, deleted_too=True)
        try:
            return await self._rollback(config, deployment, reason=reason, author=None)
        except Conflict:
            return None

    async def configure(
        self,
        tenant_id: str,
        ident: str,
        environment: Environment,
        *,
        overrides: Any = None,
        required_eval_suites: list[str] | None = None,
        commit_message: str | None,
        principal: Principal,
    ) -> tuple[StoredConfig, EnvironmentState, OverridesRevision | None]:
        """Set an environment's overrides and/or the eval suites its deploys require. New overrides are a
        revision, checked against every version the environment serves and classified as the change they make
        to what it serves: in force at once when their risk needs nobody, else waiting for approval (as a
        PATCH would); the key's role must hold the permission of every change. Answers the new revision."""
        tenant_id = principal.tenant_id
        if required_eval_suites is not None:
            principal.require_permission("manage_permissions")  # the gate is policy: not for those it gates
        config = await self.service.repo.find(tenant_id, ident)
        made: OverridesRevision | None = None
        async with self.repo.locked(tenant_id, config.config_id, environment) as env:
            if overrides is not None:
                made = await self._new_overrides(env, config, _check_overrides(overrides), principal, commit_message)
            if required_eval_suites is not None:
                await env.save(replace(env.state, required_eval_suites=tuple(required_eval_suites)))
            await self._announce(env, env.state.deployment_id)
            state = env.state
        return config, state, made

    async def _new_overrides(
        self,
        env: LockedEnvironment,
        config: StoredConfig,
        overrides: dict[str, Any],
        principal: Principal,
        commit_message: str | None,
    ) -> OverridesRevision:
        tenant_id, environment = principal.tenant_id, env.state.environment
        served: dict[int, dict[str, Any]] = {}
        stable, candidate = env.state.stable(config.version), env.state.candidate_version
        for version in [stable] + ([candidate] if candidate is not None and candidate != stable else []):
            record = await self.versions.get(tenant_id, config.config_id, version)
            assert record is not None
            served[version] = record.config
            try:
                await self.service.checked(tenant_id, effective_config(record.config, overrides))
            except InvalidInput as exc:
                raise InvalidInput(
                    f"with these overrides, version {version} (served in {environment}) is invalid: " + exc.detail,
                    errors=exc.errors,
                ) from None
        # The change these overrides make to what the environment serves (its stable version), as a PATCH's.
        base = served[stable]
        now = await self.repo.overrides(tenant_id, config.config_id, environment, env.state.overrides_revision)
        classification = classify_changes(
            effective_config(base, now.overrides if now else None), effective_config(base, overrides)
        )
        refuse_missing_permissions(principal, classification.changes)
        return await env.add_overrides(
            overrides,
            commit_message=commit_message,
            author=Author.of(principal),
            risk_level=classification.risk_level,
            classification=classification.to_dict(),
            pending=classification.requires_approval,
        )

    async def announce(self, env: LockedEnvironment) -> None:
        await self._announce(env, env.state.deployment_id)

    async def _announce(self, env: LockedEnvironment, deployment_id: str | None) -> None:
        """Tell every process (sent when the transaction commits)."""
        payload = notify_payload(env.tenant_id, env.state.config_id, env.state.environment, deployment_id)
        await env.conn.execute("SELECT pg_notify(%s, %s)", (CONFIG_CHANNEL, payload))
