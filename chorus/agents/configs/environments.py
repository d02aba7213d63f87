"""Environments: which version of a config a new conversation gets in staging or production.

An environment nobody has deployed to serves the config's current version (what an upload, PATCH, rollback or
approval made current). Once deployed to, it serves its stable version, except to the share of new
conversations a rollout in progress sends to its candidate, chosen by a stable hash of the thread id. A
conversation is pinned to what it got at its first run (admission.py), so a later deploy never changes it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from chorus.agents.configs.merge_patch import merge_patch
from chorus.agents.tenancy.environments import Environment


@dataclass(frozen=True)
class EnvironmentState:
    """An environment's row (config_environments); `stable_version` None: it follows the current version."""

    config_id: str
    environment: Environment
    stable_version: int | None = None
    candidate_version: int | None = None
    candidate_percent: int = 0
    deployment_id: str | None = None
    overrides_revision: int = 0
    required_eval_suites: tuple[str, ...] = ()
    updated_at: datetime | None = None

    def stable(self, current_version: int) -> int:
        return self.stable_version if self.stable_version is not None else current_version

    def to_dict(self, current_version: int) -> dict[str, Any]:
        stable = self.stable(current_version)
        return {
            "environment": self.environment,
            "follows_current_version": self.stable_version is None,
            "stable_version": stable,
            "candidate_version": self.candidate_version,
            "traffic_split": {"blue": 100 - self.candidate_percent, "green": self.candidate_percent},
            "deployment_id": self.deployment_id,
            "overrides_revision": self.overrides_revision,
            "required_eval_suites": list(self.required_eval_suites),
            "updated_at": self.updated_at,
        }


@dataclass(frozen=True)
class Serving:
    """What a new conversation gets: a version, in an environment, with that environment's overrides."""

    version: int
    environment: Environment
    overrides_revision: int

    @staticmethod
    def of(row: Mapping[str, Any]) -> Serving:
        """A thread's or run's pin, from its row."""
        return Serving(int(row["config_version"]), row["environment"], int(row["overrides_revision"]))


def bucket(thread_id: str) -> int:
    """0 to 99, the same for a thread id every time and in every process (the rollout's split)."""
    digest = hashlib.sha256(thread_id.encode()).digest()
    return int.from_bytes(digest[:8], "big") % 100


def serving(state: EnvironmentState | None, *, environment: Environment, current: int, thread_id: str) -> Serving:
    """The version a new conversation `thread_id` gets in `environment` (`current`: the config's current
    version, served where nothing was deployed)."""
    if state is None:
        return Serving(current, environment, 0)
    version = state.stable(current)
    if state.candidate_version is not None and bucket(thread_id) < state.candidate_percent:
        version = state.candidate_version
    return Serving(version, environment, state.overrides_revision)


def effective_config(config: dict[str, Any], overrides: dict[str, Any] | None) -> dict[str, Any]:
    """A version's config as an environment serves it: with the environment's overrides merged in."""
    if not overrides:
        return config
    merged: dict[str, Any] = merge_patch(config, overrides)
    return merged
