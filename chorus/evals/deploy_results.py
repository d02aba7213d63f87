"""The deploy gate's `SuiteResults` from the executions table: a required suite (by id or name) passed on a
version when its latest finished execution on that version completed and met the suite's pass criterion."""

from __future__ import annotations

from chorus.evals.repository import EvalRepository


class ExecutionSuiteResults:
    def __init__(self, repo: EvalRepository) -> None:
        self.repo = repo

    async def passed(self, tenant_id: str, config_id: str, version: int, suite: str) -> bool | None:
        found = await self.repo.suite_named(tenant_id, suite)
        if found is None:
            return None
        return await self.repo.latest_verdict(tenant_id, config_id=config_id, version=version, suite_id=found["id"])
