"""SQL for environments (config_environments), their override revisions and the deployment history.

Every change of what an environment serves happens in one transaction holding the environment's row lock
(`locked`), so two deploys, a promotion and the rollout monitor's automatic rollback cannot interleave."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal

from psycopg import AsyncConnection
from psycopg.rows import DictRow
from psycopg.types.json import Jsonb

from chorus.agents.configs.environments import EnvironmentState
from chorus.agents.configs.history import Author
from chorus.agents.errors import NotFound
from chorus.agents.storage.database import Database
from chorus.agents.tenancy.environments import Environment, parse_environment

ROLLOUT_PAGE = 500  # rollouts read at a time by the rollout monitor
DeploymentStatus = Literal["rolling_out", "completed", "rolled_back", "superseded"]
Strategy = Literal["blue_green", "immediate"]


@dataclass(frozen=True)
class Deployment:
    deployment_id: str
    tenant_id: str
    config_id: str
    environment: Environment
    version: int
    previous_version: int | None
    strategy: Strategy
    rollout_percent: int
    auto_rollback: bool
    rollback_on_error_rate: float | None
    rollback_on_escalation_rate: float | None
    window_seconds: int
    min_turns: int
    status: DeploymentStatus
    status_reason: str | None
    author: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "deployment_id": self.deployment_id,
            "environment": self.environment,
            "strategy": self.strategy,
            "status": self.status,
            "status_reason": self.status_reason,
            "version": self.version,
            "previous_version": self.previous_version,
            "rollout_percent": self.rollout_percent,
            "auto_rollback": self.auto_rollback,
            "rollback_on_error_rate": self.rollback_on_error_rate,
            "rollback_on_escalation_rate": self.rollback_on_escalation_rate,
            "window_seconds": self.window_seconds,
            "min_turns": self.min_turns,
            "deployed_by": self.author,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "finished_at": self.finished_at,
        }


OverridesStatus = Literal["approved", "pending_approval", "rejected"]


@dataclass(frozen=True)
class OverridesRevision:
    revision: int
    overrides: dict[str, Any]
    commit_message: str | None
    author: dict[str, Any] | None
    created_at: datetime
    status: OverridesStatus = "approved"
    risk_level: str | None = None
    classification: dict[str, Any] | None = None
    based_on: int = 0  # the revision in force when it was made
    approvals: tuple[dict[str, Any], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        classification = self.classification or {}
        return {
            "revision": self.revision,
            "status": self.status,
            "overrides": self.overrides,
            "commit_message": self.commit_message,
            "author": self.author,
            "created_at": self.created_at,
            "risk_level": self.risk_level,
            "changes": classification.get("changes"),
            "approval_required_from": classification.get("approval_required_from"),
            "based_on": self.based_on,
            "approvals": list(self.approvals),
        }


def _overrides(row: dict[str, Any]) -> OverridesRevision:
    return OverridesRevision(
        revision=row["revision"],
        overrides=row["overrides"],
        commit_message=row["commit_message"],
        author=row["author"],
        created_at=row["created_at"],
        status=row["status"],
        risk_level=row["risk_level"],
        classification=row["classification"],
        based_on=row["based_on"],
        approvals=tuple(row["approvals"] or ()),
    )


def _state(row: dict[str, Any]) -> EnvironmentState:
    return EnvironmentState(
        config_id=str(row["config_id"]),
        environment=parse_environment(row["environment"]),
        stable_version=row["stable_version"],
        candidate_version=row["candidate_version"],
        candidate_percent=row["candidate_percent"],
        deployment_id=str(row["deployment_id"]) if row["deployment_id"] else None,
        overrides_revision=row["overrides_revision"],
        required_eval_suites=tuple(row["required_eval_suites"] or ()),
        updated_at=row["updated_at"],
    )


def _deployment(row: dict[str, Any]) -> Deployment:
    return Deployment(
        deployment_id=str(row["deployment_id"]),
        tenant_id=str(row["tenant_id"]),
        config_id=str(row["config_id"]),
        environment=parse_environment(row["environment"]),
        version=row["version"],
        previous_version=row["previous_version"],
        strategy=row["strategy"],
        rollout_percent=row["rollout_percent"],
        auto_rollback=row["auto_rollback"],
        rollback_on_error_rate=row["rollback_on_error_rate"],
        rollback_on_escalation_rate=row["rollback_on_escalation_rate"],
        window_seconds=row["window_seconds"],
        min_turns=row["min_turns"],
        status=row["status"],
        status_reason=row["status_reason"],
        author=row["author"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        finished_at=row["finished_at"],
    )


def author_json(author: Author | None) -> Jsonb | None:
    return Jsonb(author.to_dict()) if author else None


class LockedEnvironment:
    """An environment's row locked by `conn`'s transaction; `state` as it is now (a default one if it has no
    row yet: the row is then created, locked, by `locked`)."""

    def __init__(self, conn: AsyncConnection[DictRow], tenant_id: str, state: EnvironmentState) -> None:
        self.conn = conn
        self.tenant_id = tenant_id
        self.state = state

    async def save(self, state: EnvironmentState) -> None:
        await self.conn.execute(
            "UPDATE config_environments SET stable_version = %s, candidate_version = %s, candidate_percent = %s,"
            " deployment_id = %s, overrides_revision = %s, required_eval_suites = %s, updated_at = now()"
            " WHERE config_id = %s AND environment = %s",
            (
                state.stable_version,
                state.candidate_version,
                state.candidate_percent,
                state.deployment_id,
                state.overrides_revision,
                Jsonb(list(state.required_eval_suites)),
                state.config_id,
                state.environment,
            ),
        )
        self.state = state

    async def add_deployment(self, **fields: Any) -> Deployment:
        deployment_id = str(uuid.uuid4())
        cur = await self.conn.execute(
            "INSERT INTO config_deployments (deployment_id, tenant_id, config_id, environment, version,"
            " previous_version, strategy, rollout_percent, auto_rollback, rollback_on_error_rate,"
            " rollback_on_escalation_rate, window_seconds, min_turns, status, status_reason, author, finished_at)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s,"
            " CASE WHEN %s = 'rolling_out' THEN NULL ELSE now() END) RETURNING *",
            (
                deployment_id,
                self.tenant_id,
                self.state.config_id,
                self.state.environment,
                fields["version"],
                fields["previous_version"],
                fields["strategy"],
                fields["rollout_percent"],
                fields["auto_rollback"],
                fields["rollback_on_error_rate"],
                fields["rollback_on_escalation_rate"],
                fields["window_seconds"],
                fields["min_turns"],
                fields["status"],
                fields.get("status_reason"),
                author_json(fields.get("author")),
                fields["status"],
            ),
        )
        row = await cur.fetchone()
        assert row is not None
        return _deployment(row)

    async def end_deployment(
        self, deployment_id: str, status: DeploymentStatus, reason: str | None, *, percent: int | None = None
    ) -> Deployment:
        cur = await self.conn.execute(
            "UPDATE config_deployments SET status = %s, status_reason = coalesce(%s, status_reason),"
            " rollout_percent = coalesce(%s, rollout_percent), updated_at = now(),"
            " finished_at = CASE WHEN %s = 'rolling_out' THEN NULL ELSE now() END"
            " WHERE deployment_id = %s RETURNING *",
            (status, reason, percent, status, deployment_id),
        )
        row = await cur.fetchone()
        assert row is not None
        return _deployment(row)

    async def add_overrides(
        self,
        overrides: dict[str, Any],
        *,
        commit_message: str | None,
        author: Author | None,
        risk_level: str | None = None,
        classification: dict[str, Any] | None = None,
        pending: bool = False,
    ) -> OverridesRevision:
        """A new revision: in force at once, or (`pending`) waiting for its approvals."""
        cur = await self.conn.execute(
            "INSERT INTO config_environment_overrides (config_id, environment, revision, tenant_id, overrides,"
            " commit_message, author, status, risk_level, classification, based_on) SELECT %s, %s,"
            " coalesce(max(revision), 0) + 1, %s, %s, %s, %s, %s, %s, %s, %s FROM config_environment_overrides"
            " WHERE config_id = %s AND environment = %s RETURNING *",
            (
                self.state.config_id,
                self.state.environment,
                self.tenant_id,
                Jsonb(overrides),
                commit_message,
                author_json(author),
                "pending_approval" if pending else "approved",
                risk_level,
                Jsonb(classification) if classification is not None else None,
                self.state.overrides_revision,
                self.state.config_id,
                self.state.environment,
            ),
        )
        row = await cur.fetchone()
        assert row is not None
        if not pending:
            await self.save(replace(self.state, overrides_revision=row["revision"]))
        return _overrides(row)

    async def overrides_for_update(self, revision: int) -> OverridesRevision | None:
        cur = await self.conn.execute(
            "SELECT * FROM config_environment_overrides WHERE config_id = %s AND environment = %s AND revision = %s",
            (self.state.config_id, self.state.environment, revision),
        )
        row = await cur.fetchone()
        return _overrides(row) if row else None

    async def decide_overrides(self, revision: int, status: OverridesStatus, approvals: list[dict[str, Any]]) -> None:
        await self.conn.execute(
            "UPDATE config_environment_overrides SET status = %s, approvals = %s"
            " WHERE config_id = %s AND environment = %s AND revision = %s",
            (status, Jsonb(approvals), self.state.config_id, self.state.environment, revision),
        )
        if status == "approved":
            await self.save(replace(self.state, overrides_revision=revision))


class DeploymentRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def states(self, tenant_id: str, config_id: str) -> dict[Environment, EnvironmentState]:
        async with self.db.connection() as conn:
            cur = await conn.execute(
                "SELECT * FROM config_environments WHERE tenant_id = %s AND config_id = %s", (tenant_id, config_id)
            )
            rows = await cur.fetchall()
        return {s.environment: s for s in map(_state, rows)}

    async def state(self, tenant_id: str, config_id: str, environment: Environment) -> EnvironmentState | None:
        async with self.db.connection() as conn:
            cur = await conn.execute(
                "SELECT * FROM config_environments WHERE tenant_id = %s AND config_id = %s AND environment = %s",
                (tenant_id, config_id, environment),
            )
            row = await cur.fetchone()
        return _state(row) if row else None

    @asynccontextmanager
    async def locked(
        self, tenant_id: str, config_id: str, environment: Environment
    ) -> AsyncIterator[LockedEnvironment]:
        """The environment's row, created if missing, locked until the block's transaction commits."""
        async with self.db.connection() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO config_environments (config_id, environment, tenant_id) VALUES (%s, %s, %s)"
                " ON CONFLICT DO NOTHING",
                (config_id, environment, tenant_id),
            )
            cur = await conn.execute(
                "SELECT * FROM config_environments WHERE config_id = %s AND environment = %s FOR UPDATE",
                (config_id, environment),
            )
            row = await cur.fetchone()
            assert row is not None
            yield LockedEnvironment(conn, tenant_id, _state(row))

    async def overrides(
        self, tenant_id: str, config_id: str, environment: Environment, revision: int
    ) -> OverridesRevision | None:
        if revision == 0:
            return None
        async with self.db.connection() as conn:
            cur = await conn.execute(
                "SELECT * FROM config_environment_overrides WHERE tenant_id = %s AND config_id = %s"
                " AND environment = %s AND revision = %s",
                (tenant_id, config_id, environment, revision),
            )
            row = await cur.fetchone()
        if row is None:
            raise NotFound(f"revision {revision} of the {environment} overrides does not exist")
        return _overrides(row)

    async def pending_overrides(
        self, tenant_id: str, config_id: str, environment: Environment
    ) -> list[OverridesRevision]:
        async with self.db.connection() as conn:
            cur = await conn.execute(
                "SELECT * FROM config_environment_overrides WHERE tenant_id = %s AND config_id = %s"
                " AND environment = %s AND status = 'pending_approval' ORDER BY revision",
                (tenant_id, config_id, environment),
            )
            return [_overrides(r) for r in await cur.fetchall()]

    async def deployments(
        self, tenant_id: str, config_id: str, *, environment: Environment | None, limit: int, offset: int
    ) -> tuple[list[Deployment], int]:
        where = "tenant_id = %s AND config_id = %s" + (" AND environment = %s" if environment else "")
        params: list[Any] = [tenant_id, config_id, *([environment] if environment else [])]
        async with self.db.connection() as conn:
            cur = await conn.execute(
                f"SELECT *, count(*) OVER () AS total FROM config_deployments WHERE {where}"
                " ORDER BY created_at DESC, deployment_id LIMIT %s OFFSET %s",
                [*params, limit, offset],
            )
            rows = await cur.fetchall()
            if not rows and offset:
                cur = await conn.execute(f"SELECT count(*) AS total FROM config_deployments WHERE {where}", params)
                counted = await cur.fetchone()
                return [], int(counted["total"]) if counted else 0
        return [_deployment(r) for r in rows], int(rows[0]["total"]) if rows else 0

    async def deployment(self, tenant_id: str, config_id: str, deployment_id: str) -> Deployment:
        async with self.db.connection() as conn:
            cur = await conn.execute(
                "SELECT * FROM config_deployments WHERE tenant_id = %s AND config_id = %s AND deployment_id = %s",
                (tenant_id, config_id, deployment_id),
            )
            row = await cur.fetchone()
        if row is None:
            raise NotFound(f"deployment '{deployment_id}' of this config does not exist")
        return _deployment(row)

    async def rolling_out(self, *, page: int = ROLLOUT_PAGE) -> AsyncIterator[Deployment]:
        """Every rollout in progress with automatic rollback on (all tenants: the rollout monitor's work),
        oldest first, read `page` at a time so that however many there are, every one is judged each pass."""
        after: tuple[datetime, str] | None = None
        while True:
            async with self.db.connection() as conn:
                cur = await conn.execute(
                    "SELECT * FROM config_deployments WHERE status = 'rolling_out' AND auto_rollback"
                    " AND (%s::timestamptz IS NULL OR (created_at, deployment_id::text) > (%s, %s))"
                    " ORDER BY created_at, deployment_id::text LIMIT %s",
                    (after and after[0], after and after[0], after and after[1], page),
                )
                rows = await cur.fetchall()
            for row in rows:
                yield _deployment(row)
            if len(rows) < page:
                return
            after = (rows[-1]["created_at"], str(rows[-1]["deployment_id"]))


async def freeze_production(conn: AsyncConnection[DictRow], tenant_id: str, config_id: str, served: int) -> None:
    """Before a staging key's change becomes the current version: production, if it follows the current
    version (never deployed to), is frozen at the version it serves now (`served`), so the change reaches
    staging only. In the caller's transaction, which holds the config's row lock."""
    await conn.execute(
        "INSERT INTO config_environments (config_id, environment, tenant_id, stable_version)"
        " VALUES (%s, 'production', %s, %s) ON CONFLICT (config_id, environment) DO UPDATE"
        " SET stable_version = coalesce(config_environments.stable_version, EXCLUDED.stable_version)",
        (config_id, tenant_id, served),
    )


def notify_payload(tenant_id: str, config_id: str, environment: Environment, deployment_id: str | None) -> str:
    return json.dumps(
        {"tenant_id": tenant_id, "config_id": config_id, "environment": environment, "deployment_id": deployment_id}
    )
