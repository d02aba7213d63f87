"""The seed's evaluation API under /api/v1/evaluation: suites, their cases (evals), executions in the
background with their status and summary. Reads need a viewer key; creating and executing a developer's."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from chorus.agents.api_deps import DeveloperDep, ViewerDep
from chorus.evals.compare import DEFAULT_TOLERANCE, compare
from chorus.evals.schemas import CaseCreate, ExecuteRequest, SuiteCreate
from chorus.evals.service import EvalService, execution_status
from chorus.evals.suite_files import SuiteFile
from chorus.evals.turn_evaluation import TurnEvaluationRequest, evaluate_turn

router = APIRouter(prefix="/api/v1/evaluation", tags=["evaluation"])
SuiteId = Annotated[str, Path(max_length=32, description="The suite's id (a number)")]
ExecutionId = Annotated[str, Path(max_length=32, description="The execution's id (a number)")]


def _service(request: Request) -> EvalService:
    service: EvalService = request.app.state.evals
    return service


ServiceDep = Annotated[EvalService, Depends(_service)]


@router.post("/suites", status_code=201, summary="Create an evaluation suite")
async def create_suite(body: SuiteCreate, principal: DeveloperDep, service: ServiceDep) -> dict[str, Any]:
    return await service.create_suite(principal.tenant_id, body)


@router.post(
    "/suites/import",
    status_code=201,
    summary="Create or replace a suite from a suite file (JSON): its settings and cases, by its name",
    responses={200: {"description": "a suite of that name existed: its settings and cases were replaced"}},
)
async def import_suite(
    body: SuiteFile, principal: DeveloperDep, service: ServiceDep, response: Response
) -> dict[str, Any]:
    suite, cases = body.definition()
    stored, created = await service.repo.import_suite(principal.tenant_id, suite, cases)
    if not created:
        response.status_code = 200
    return {**stored, "created": created, "case_count": len(cases)}


@router.get("/suites", summary="List the tenant's evaluation suites")
async def list_suites(
    principal: ViewerDep,
    service: ServiceDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> dict[str, Any]:
    return {"suites": await service.repo.suites(principal.tenant_id, limit=limit, offset=offset)}


@router.get("/suites/{suite_id}", summary="A suite with its cases and its latest executions")
async def get_suite(suite_id: SuiteId, principal: ViewerDep, service: ServiceDep) -> dict[str, Any]:
    return await service.suite(principal.tenant_id, suite_id)


@router.post("/suites/{suite_id}/evals", status_code=201, summary="Add a test case to a suite")
async def add_case(suite_id: SuiteId, body: CaseCreate, principal: DeveloperDep, service: ServiceDep) -> dict[str, Any]:
    return await service.add_case(principal.tenant_id, suite_id, body)


@router.post(
    "/suites/{suite_id}/execute",
    status_code=202,
    summary="Execute a suite against a config version, in the background; poll its status",
)
async def execute(
    suite_id: SuiteId, body: ExecuteRequest, principal: DeveloperDep, service: ServiceDep
) -> dict[str, Any]:
    return execution_status(await service.execute(principal.tenant_id, suite_id, body))


@router.get("/executions/{execution_id}/status", summary="An execution's status and progress (%)")
async def status(execution_id: ExecutionId, principal: ViewerDep, service: ServiceDep) -> dict[str, Any]:
    execution = await service.repo.execution(principal.tenant_id, execution_id)
    return {**execution_status(execution), "summary": execution["summary"]}


@router.get("/executions/{execution_id}/summary", summary="An execution's summary and each trial's result")
async def summary(execution_id: ExecutionId, principal: ViewerDep, service: ServiceDep) -> dict[str, Any]:
    execution, results = await service.results(principal.tenant_id, execution_id)
    return {
        **execution_status(execution),
        "summary": execution["summary"],
        "results": [
            {
                "id": r["id"],
                "eval_id": r["eval_id"],
                "trial": r["trial"],
                "evaluator_type": r["evaluator_type"],
                "status": r["status"],
                "result": r["result"],
                "created_at": r["created_at"],
            }
            for r in results
        ],
    }


@router.get(
    "/executions/{execution_id}/compare",
    summary="Compare an execution with an earlier one of the same suite: per-case regressions and improvements",
)
async def compare_executions(
    execution_id: ExecutionId,
    principal: ViewerDep,
    service: ServiceDep,
    base: Annotated[str, Query(max_length=32, description="The execution to compare against (the baseline)")],
    tolerance: Annotated[
        float, Query(ge=0, le=1, description="How far a case's mean score may fall before it counts as a regression")
    ] = DEFAULT_TOLERANCE,
) -> dict[str, Any]:
    head = await service.repo.execution(principal.tenant_id, execution_id)
    baseline = await service.repo.execution(principal.tenant_id, base)
    return compare(baseline, head, tolerance=tolerance)


@router.post(
    "/turn-conversation",
    summary="Judge one conversation turn now: a stored conversation's (thread_id, turn) or one given outright",
)
async def turn_conversation(body: TurnEvaluationRequest, principal: DeveloperDep, request: Request) -> dict[str, Any]:
    engine = request.app.state.run_engine
    return await evaluate_turn(
        body,
        tenant_id=principal.tenant_id,
        threads=engine.threads,
        db=engine.db,
        secrets=engine.cache.deps.secrets,
    )
