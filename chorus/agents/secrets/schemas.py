"""The vault's HTTP shapes. Responses carry metadata only: a value is never returned, not even in part."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator

from chorus.agents.secrets.environments import environment_problem
from chorus.agents.secrets.repository import AuditEvent
from chorus.agents.secrets.service import (
    Deleted,
    Described,
    description_problem,
    name_problem,
    value_problem,
)

MASK = "*****"


def _ok(problem: str | None, value: str) -> str:
    if problem:
        raise ValueError(problem)
    return value


class SecretCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="1-64 characters: A-Z first, then A-Z, 0-9, _", examples=["SHOP_API_KEY"])
    value: str = Field(description="The secret; at most 8192 bytes, no control characters", examples=["sk-live-…"])
    environment: str | None = Field(
        default=None,
        description="'staging' or 'production' to serve tool calls in that environment only; left out, the "
        "secret serves every environment that has no secret of this name of its own",
        examples=["staging"],
    )
    description: str | None = Field(default=None, description="What it is for (at most 500 characters)")

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return _ok(name_problem(v), v)

    @field_validator("value")
    @classmethod
    def _value(cls, v: str) -> str:
        return _ok(value_problem(v), v)

    @field_validator("environment")
    @classmethod
    def _environment(cls, v: str | None) -> str | None:
        problem = environment_problem(v)
        if problem:
            raise ValueError(problem)
        return v

    @field_validator("description")
    @classmethod
    def _description(cls, v: str | None) -> str | None:
        problem = description_problem(v)
        if problem:
            raise ValueError(problem)
        return v


class SecretRotate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    value: str = Field(description="The new value; becomes the next version, used by every later tool call")
    rotation_reason: str | None = Field(default=None, examples=["scheduled_rotation"])

    @field_validator("value")
    @classmethod
    def _value(cls, v: str) -> str:
        return _ok(value_problem(v), v)

    @field_validator("rotation_reason")
    @classmethod
    def _reason(cls, v: str | None) -> str | None:
        problem = description_problem(v)
        if problem:
            raise ValueError(problem.replace("description", "rotation_reason"))
        return v


class SecretSummary(BaseModel):
    name: str
    environment: str | None = Field(
        description="'staging' or 'production' for a secret scoped to one environment; null: every environment"
    )
    description: str | None
    version: int = Field(description="The version tool calls use (the newest)")
    masked_value: str = Field(default=MASK, description="Always masked; values are never returned")
    status: str = "active"
    created_at: datetime
    updated_at: datetime
    last_used: datetime | None
    usage_count: int


class RotationEntry(BaseModel):
    version: int
    rotated_at: datetime
    reason: str | None
    created_by: str


class SecretDetail(SecretSummary):
    created_by: str
    decryptable: bool = Field(description="False when the newest version was sealed with another vault key")
    rotation_history: list[RotationEntry]

    @classmethod
    def of(cls, d: Described) -> SecretDetail:
        r = d.record
        return cls(
            name=r.name,
            environment=r.environment,
            description=r.description,
            version=r.latest_version,
            created_at=r.created_at,
            updated_at=r.updated_at,
            last_used=r.last_used,
            usage_count=r.usage_count,
            created_by=r.created_by,
            decryptable=d.decryptable,
            rotation_history=[
                RotationEntry(version=v.version, rotated_at=v.created_at, reason=v.reason, created_by=v.created_by)
                for v in d.versions
            ],
        )


class SecretList(BaseModel):
    secrets: list[SecretSummary]
    total: int


class DependentConfig(BaseModel):
    config_id: str
    config_name: str
    versions: list[int] = Field(description="The config versions that reference the secret")
    action_required: str = "update_secret_reference"


class SecretDeleted(BaseModel):
    name: str
    environment: str | None = Field(description="The deleted secret's scope (null: the unscoped one)")
    status: str = "deleted"
    versions_deleted: int
    environments_left_without: list[str] = Field(
        description="Environments where tool calls no longer find a secret of this name"
    )
    dependent_configs: list[DependentConfig] = Field(
        description="Configs referencing the name, listed when some environment is left without it"
    )

    @classmethod
    def of(cls, d: Deleted) -> SecretDeleted:
        return cls(
            name=d.name,
            environment=d.environment,
            versions_deleted=d.versions_deleted,
            environments_left_without=d.environments_left_without,
            dependent_configs=[
                DependentConfig(config_id=x.config_id, config_name=x.config_name, versions=x.versions)
                for x in d.dependents
            ],
        )


class AuditEntry(BaseModel):
    action: str = Field(description="create, list, read, rotate, delete, use or use_failed")
    version: int | None
    actor: str = Field(description="'key:<key_id>', 'cli:<user>', 'run:<run_id>' or 'thread:<thread_id>'")
    thread_id: str | None
    run_id: str | None
    tool_name: str | None
    tool_call_id: str | None
    call_environment: str | None = Field(description="For use and use_failed: the environment the tool call ran in")
    detail: str | None
    at: datetime

    @classmethod
    def of(cls, e: AuditEvent) -> AuditEntry:
        return cls(
            action=e.action,
            version=e.version,
            actor=e.actor,
            thread_id=e.thread_id,
            run_id=e.run_id,
            tool_name=e.tool_name,
            tool_call_id=e.tool_call_id,
            call_environment=e.call_environment,
            detail=e.detail,
            at=e.at,
        )


class SecretAudit(BaseModel):
    name: str
    environment: str | None = Field(description="Whose trail: the secret scoped to it (null: the unscoped one)")
    events: list[AuditEntry]
