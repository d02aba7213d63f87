"""The environments a secret can be scoped to. A secret scoped to none (`None`) serves every environment."""

from __future__ import annotations

from chorus.agents.tenancy.environments import DEFAULT_ENVIRONMENT, ENVIRONMENTS

__all__ = ["DEFAULT_ENVIRONMENT", "ENVIRONMENTS", "environment_problem", "scope_label"]


def environment_problem(environment: str | None) -> str | None:
    """What is wrong with an environment name given by a user (None: every environment, always fine)."""
    if environment is None or environment in ENVIRONMENTS:
        return None
    shown = environment if len(environment) <= 40 else environment[:40] + "…"
    return (
        f"unknown environment {shown!r}: a secret is scoped to 'staging' or 'production', "
        "or to every environment when the environment is left out"
    )


def scope_label(environment: str | None) -> str:
    """How messages name a secret's scope."""
    return f"the {environment} environment" if environment else "every environment"
