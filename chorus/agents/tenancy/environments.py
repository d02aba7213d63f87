"""The two environments, staging and production. An API key belongs to one, and so does every conversation it
starts; a config serves each environment its own deployed version (chorus/agents/configs/environments.py)."""

from __future__ import annotations

from typing import Literal

from chorus.agents.errors import InvalidInput

Environment = Literal["staging", "production"]
ENVIRONMENTS: tuple[Environment, ...] = ("staging", "production")
DEFAULT_ENVIRONMENT: Environment = "production"


def parse_environment(value: str, *, where: str = "$.environment") -> Environment:
    for env in ENVIRONMENTS:
        if env == value:
            return env
    raise InvalidInput(
        f"'{str(value)[:32]}' is not an environment: use 'staging' or 'production'",
        errors=[{"path": where, "message": "expected 'staging' or 'production'"}],
    )
