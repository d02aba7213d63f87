"""The gate every deploy passes: "production requires eval suite S to pass on this version".

An environment lists the eval suites a version must pass before it is deployed there (`required_eval_suites`,
set with PATCH /api/v1/configs/{id}/environments/{env}). The gate asks where suite results are recorded
whether each passed on that version; until a result is recorded, the deploy is blocked and says which suite
to run. The eval harness (issue 11) records the results; `SuiteResults` is the seam it fills."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from chorus.agents.tenancy.environments import Environment


class SuiteResults(Protocol):
    async def passed(self, tenant_id: str, config_id: str, version: int, suite: str) -> bool | None:
        """True/False: the suite's latest execution on this version passed/failed; None: never executed."""
        ...


class NoSuiteResults:
    """No eval results are recorded anywhere yet: every required suite counts as not executed."""

    async def passed(self, tenant_id: str, config_id: str, version: int, suite: str) -> bool | None:
        return None


@dataclass(frozen=True)
class DeployGate:
    results: SuiteResults

    async def blockers(
        self, tenant_id: str, config_id: str, version: int, environment: Environment, suites: tuple[str, ...]
    ) -> list[str]:
        """Why version `version` may not be deployed to `environment` (none: it may)."""
        blocked: list[str] = []
        for suite in suites:
            verdict = await self.results.passed(tenant_id, config_id, version, suite)
            if verdict is None:
                blocked.append(f"eval suite '{suite}' has not been executed on version {version}")
            elif not verdict:
                blocked.append(f"eval suite '{suite}' failed on version {version}")
        return blocked
