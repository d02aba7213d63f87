"""The eval harness's rules: suites and cases stored as given (validated by their schemas), executions checked
against the target config version before anything is queued."""

from __future__ import annotations

from typing import Any

from chorus.agents.configs.service import ConfigService
from chorus.agents.errors import InvalidInput
from chorus.evals.repository import EvalRepository, parse_id
from chorus.evals.schemas import CaseCreate, ExecuteRequest, SuiteCreate


class EvalService:
    def __init__(self, repo: EvalRepository, config_service: ConfigService) -> None:
        self.repo = repo
        self.config_service = config_service
        self.configs = config_service.repo

    async def create_suite(self, tenant_id: str, suite: SuiteCreate) -> dict[str, Any]:
        return await self.repo.create_suite(tenant_id, suite)

    async def add_case(self, tenant_id: str, suite_id: str | int, case: CaseCreate) -> dict[str, Any]:
        return await self.repo.add_case(tenant_id, parse_id(suite_id, "suite"), case)

    async def suite(self, tenant_id: str, suite_id: str | int) -> dict[str, Any]:
        suite = await self.repo.suite(tenant_id, suite_id)
        cases = await self.repo.cases(tenant_id, suite["id"])
        executions = await self.repo.executions(tenant_id, suite["id"], limit=10)
        return {**suite, "evals": cases, "recent_executions": [execution_status(e) for e in executions]}

    async def execute(self, tenant_id: str, suite_id: str | int, req: ExecuteRequest) -> dict[str, Any]:
        suite = await self.repo.suite(tenant_id, suite_id)
        cases = await self.repo.cases(tenant_id, suite["id"])
        if not cases:
            raise InvalidInput(
                f"suite '{suite['name']}' has no cases; add some with "
                f"POST /api/v1/evaluation/suites/{suite['id']}/evals",
                errors=[{"path": "$", "message": "the suite has no cases"}],
            )
        config_id: str | None = None
        version: int | None = None
        if req.config is not None:
            await self._check_body(tenant_id, req.config)
        else:
            assert req.config_id is not None
            stored = await self.configs.find(tenant_id, req.config_id)  # 404: unknown, or another tenant's
            version = req.version or stored.version
            await self.configs.get(tenant_id, stored.config_id, version)  # 404 naming the versions there are
            config_id = stored.config_id
        return await self.repo.create_execution(
            tenant_id,
            suite_id=suite["id"],
            config_id=config_id,
            version=version,
            config_body=req.config,
            batch_size=req.batch_size,
            max_concurrent=req.max_concurrent,
            total_trials=sum(c["repeat"] for c in cases),
            name=req.name or suite["name"],
            conversation_spec_id=req.conversation_spec_id,
            flow_name=req.flow_name,
        )

    async def _check_body(self, tenant_id: str, body: dict[str, Any]) -> None:
        """An unsaved config is validated as an upload would be; its problems' paths are under `$.config`."""
        try:
            _, config = await self.config_service.checked(tenant_id, body)
        except InvalidInput as exc:
            errors = [{**e, "path": "$.config" + str(e.get("path", "$"))[1:]} for e in exc.extra.get("errors", [])]
            raise InvalidInput(exc.detail, errors=errors) from None
        if config.product_type != "chatbot":
            raise InvalidInput(
                f"an unsaved {config.product_type} cannot be evaluated yet; upload it and give its config_id",
                errors=[{"path": "$.config.config_metadata.product_type", "message": "expected chatbot"}],
            )

    async def results(self, tenant_id: str, execution_id: str | int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        execution = await self.repo.execution(tenant_id, execution_id)
        return execution, await self.repo.results(tenant_id, execution["id"])


def execution_status(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "eval_suite_id": row["eval_suite_id"],
        "name": row["name"],
        "status": row["status"],
        "execution_percentage": row["execution_percentage"],
        "config_id": row["config_id"],
        "version": row["config_version"],
        "target": f"config {row['config_id']} v{row['config_version']}" if row["config_id"] else "unsaved config",
        "batch_size": row["batch_size"],
        "max_concurrent": row["max_concurrent"],
        "total_trials": row["total_trials"],
        "passed": row["passed"],
        "error": row["error"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
        "finished_at": row["finished_at"],
    }
