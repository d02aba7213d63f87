"""Runs an execution as a job of the run engine's queue (kind `eval_execution`), in whichever server process
claims it. Each trial's result is stored as it ends, so an execution whose process died is resumed by another
process without redoing what is done; after the queue's last attempt it is marked failed, never left running.
Trials run `max_concurrent` at a time, `batch_size` cases' trials per batch."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import psycopg
from psycopg_pool import PoolTimeout
from pydantic import TypeAdapter

from chorus.agents.errors import ChorusError, DatabaseUnavailable, ServerBusy
from chorus.agents.queue import Job, JobContext, JobQueue, Lease, StopReason
from chorus.agents.queue.repository import take_given_up
from chorus.agents.storage.database import Database
from chorus.agents.tools.registry import SecretResolver
from chorus.evals.judge import Judge
from chorus.evals.judge_cache import JudgeCache
from chorus.evals.metrics_deterministic import Measured
from chorus.evals.metrics_judged import ModelMetrics
from chorus.evals.observation import Observation
from chorus.evals.repository import EvalRepository
from chorus.evals.schemas import AnyAssertion, EvaluatorConfig, SimulatedUser, render
from chorus.evals.scoring import combine, evaluate, judged_evaluations, model_requests, summarize
from chorus.evals.simulation import (
    Simulation,
    SimulationFailed,
    UserSimulator,
    outcome_evaluations,
    outcome_requests,
    simulate,
)
from chorus.evals.target import ConfigTarget, TrialFailed, UnsavedTarget
from chorus.runs.engine import RunEngine
from chorus.runs.executor import RETRY_AFTER_DB_FAULT_S

log = logging.getLogger(__name__)
Target = ConfigTarget | UnsavedTarget
DATABASE_FAULTS = (psycopg.OperationalError, PoolTimeout, DatabaseUnavailable, ServerBusy)
_ASSERTIONS: TypeAdapter[list[AnyAssertion]] = TypeAdapter(list[AnyAssertion])


def judge_trial(
    case: dict[str, Any],
    obs: Observation,
    *,
    default_threshold: float | None,
    simulation: Simulation | None = None,
    measured: dict[str, Measured] | None = None,
) -> dict[str, Any]:
    """A trial's result: every metric's evaluation, the case's weighted score and its pass. `measured`: the
    model metrics (judged, embedding, retrieval) measured beforehand by `measure_model_metrics`."""
    assertions = _ASSERTIONS.validate_python(case["assertions"])
    evaluations = [evaluate(a, obs, measured) for a in assertions] + judged_evaluations(
        list(case["evaluator_types"]), measured, case.get("expected_values")
    )
    if case.get("simulated_user"):
        evaluations += outcome_evaluations(case["simulated_user"], obs, simulation, measured)
    threshold = case["threshold"] if case["threshold"] is not None else default_threshold
    score, passed = combine([(e.score, e.passed, e.weight) for e in evaluations], threshold)
    failing = [f"{e.metric}: {e.reasoning}" for e in evaluations if e.passed is False]
    unmeasured = [f"{e.metric}: {e.reasoning}" for e in evaluations if e.passed is None]
    if passed is None:
        reasoning = "unmeasured: " + "; ".join(unmeasured)
    elif passed:
        reasoning = "every check passed" if threshold is None else f"score {score:.2f} ≥ threshold {threshold}"
    else:
        reasoning = "; ".join(failing) or f"score {score:.2f} < threshold {threshold}"
    return {
        "score": score,
        "passed": passed,
        "reasoning": reasoning,
        "system_response": obs.output,
        "responses": list(obs.answers),
        "evaluations": [e.to_dict() for e in evaluations],
        "tool_calls": [c.to_dict() for c in obs.tool_calls],
        "escalated": obs.escalated,
        "latency_ms": None if obs.latency_ms is None else round(obs.latency_ms, 1),
        "tokens": obs.tokens,
        **({"simulation": simulation.to_dict()} if simulation is not None else {}),
    }


async def measure_model_metrics(metrics: ModelMetrics, case: dict[str, Any], obs: Observation) -> dict[str, Measured]:
    """The case's judged, embedding and retrieval metrics measured on the trial (a judge's failure is that
    metric's error; the trial and the execution go on)."""
    assertions = _ASSERTIONS.validate_python(case["assertions"])
    requests = model_requests(assertions, list(case["evaluator_types"]), case.get("expected_values"))
    if case.get("simulated_user"):
        requests += outcome_requests(case["simulated_user"])
    return await metrics.measure(case, obs, requests) if requests else {}


def model_metrics_of(
    settings: EvaluatorConfig, *, tenant_id: str, db: Database, secrets: SecretResolver | None
) -> ModelMetrics:
    """An execution's judge (none configured: the judged metrics are skipped) with its Postgres cache, its key
    from the tenant's vault when the suite names one."""
    judge = (
        Judge(settings.judge, tenant_id=tenant_id, cache=JudgeCache(db), secrets=secrets) if settings.judge else None
    )
    return ModelMetrics(judge=judge, embedding_model=settings.embedding_model)


class EvalExecutor:
    """The queue's handler for jobs of kind `eval_execution`."""

    def __init__(self, *, repo: EvalRepository, engine: RunEngine, queue: JobQueue) -> None:
        self.repo = repo
        self.engine = engine
        self.queue = queue
        self._simulator: UserSimulator | None = None

    @property
    def simulator(self) -> UserSimulator:
        if self._simulator is None:
            self._simulator = UserSimulator(self.engine)
        return self._simulator

    async def run(self, job: Job, ctx: JobContext) -> None:
        row = await self.repo.execution_of_job(job.job_id)
        if row is None or row["status"] in ("completed", "failed"):  # deleted, or ended before a crash
            await self._end_job(job, ctx)
            return
        try:
            await self._execute(row)
        except asyncio.CancelledError:
            await self._stopped(row, job, ctx)
            return
        except DATABASE_FAULTS as exc:
            # The database failed us, not the suite: back to the queue, resumed a moment later (the attempt
            # counts), from the trials already stored.
            log.warning("the database failed an eval execution (%s); the queue resumes it", type(exc).__name__)
            with contextlib.suppress(Exception):
                await self.queue.put_back(job.job_id, ctx.lease, after_s=RETRY_AFTER_DB_FAULT_S)
            ctx.finished = True
            return
        except Exception as exc:
            detail = exc.detail if isinstance(exc, ChorusError) else f"{type(exc).__name__}: {exc}"
            log.exception("eval execution failed", extra={"execution_id": row["id"]})
            await self.repo.finish(row["id"], status="failed", summary=None, passed=None, error=detail)
        await self._end_job(job, ctx)

    async def _end_job(self, job: Job, ctx: JobContext) -> None:
        await self.queue.finish(job.job_id, ctx.lease)
        ctx.finished = True

    async def _stopped(self, row: dict[str, Any], job: Job, ctx: JobContext) -> None:
        reason = ctx.stop_reason or StopReason.HAND_BACK
        ctx.finished = True
        if reason == StopReason.HAND_BACK:  # this process drains: another one resumes it
            try:
                await self.queue.hand_back(job.job_id, ctx.lease)
            except Exception:
                log.warning("could not hand an eval execution back; its lease lapses and it is resumed then")
        elif reason in (StopReason.INTERRUPT, StopReason.ROLLBACK):
            await self.repo.finish(row["id"], status="failed", summary=None, passed=None, error="cancelled")
            await self.queue.finish(job.job_id, ctx.lease)

    async def given_up(self, job: Job, lease: Lease) -> None:
        message = (
            f"the server process running this execution stopped {job.attempts} time(s); the results stored so "
            "far are kept; execute the suite again"
        )
        async with self.repo.db.connection() as conn, conn.transaction():
            if await take_given_up(conn, job.job_id, lease):
                await conn.execute(
                    "UPDATE eval_suite_executions SET status = 'failed', error = %s, updated_at = now(),"
                    " finished_at = now() WHERE job_id = %s AND status IN ('pending', 'running')",
                    (message, job.job_id),
                )

    async def _execute(self, row: dict[str, Any]) -> None:
        tenant_id, execution_id = row["tenant_id"], row["id"]
        await self.repo.mark_running(execution_id)
        suite = await self.repo.suite(tenant_id, row["eval_suite_id"])
        settings = EvaluatorConfig.model_validate(suite["evaluator_config"] or {})
        cases = await self.repo.cases(tenant_id, row["eval_suite_id"])
        done = {(r["eval_id"], r["trial"]) for r in await self.repo.results(tenant_id, execution_id)}
        target: Target
        if row["config_body"] is not None:
            target = UnsavedTarget(self.engine, body=row["config_body"], key=f"eval-execution-{execution_id}")
        else:
            target = ConfigTarget(self.engine, config_id=row["config_id"], version=row["config_version"])
        todo = [(c, t) for c in cases for t in range(1, c["repeat"] + 1) if (c["id"], t) not in done]
        gate = asyncio.Semaphore(row["max_concurrent"])
        metrics = model_metrics_of(
            settings, tenant_id=tenant_id, db=self.repo.db, secrets=self.engine.cache.deps.secrets
        )

        async def one(case: dict[str, Any], trial: int) -> None:
            async with gate:
                result, status = await self._trial(tenant_id, execution_id, case, trial, target, settings, metrics)
            await self.repo.record_trial(
                tenant_id, execution_id, eval_id=case["id"], trial=trial, status=status, result=result
            )

        batch = row["batch_size"]
        for start in range(0, len(todo), batch):
            await asyncio.gather(*(one(c, t) for c, t in todo[start : start + batch]))
        results = await self.repo.results(tenant_id, execution_id)
        summary = summarize(
            [{"id": c["id"], "name": c["name"]} for c in cases], results, min_pass_rate=settings.min_pass_rate
        )
        await self.repo.finish(execution_id, status="completed", summary=summary, passed=summary["passed"], error=None)

    async def _trial(
        self,
        tenant_id: str,
        execution_id: int,
        case: dict[str, Any],
        trial: int,
        target: Target,
        settings: EvaluatorConfig,
        metrics: ModelMetrics,
    ) -> tuple[dict[str, Any], str]:
        meta = {"execution_id": execution_id, "eval_id": case["id"], "trial": trial}
        simulation: Simulation | None = None
        try:
            async with asyncio.timeout(settings.timeout_seconds):
                if case.get("simulated_user"):
                    obs, simulation = await self._simulate(tenant_id, case, target, meta)
                else:
                    turns = [render(t, case["vars"]) for t in (case["user_input"], *case["turns"])]
                    obs = await target.run(tenant_id, turns=turns, tool_mocks=case["tool_mocks"], metadata=meta)
        except DATABASE_FAULTS:
            raise  # not the bot's fault: the execution goes back to the queue
        except TimeoutError:
            return _errored(f"the case took longer than timeout_seconds ({settings.timeout_seconds:g} s)"), "error"
        except SimulationFailed as exc:  # the bot or the simulator failed mid-conversation: the transcript so far
            return {**_errored(str(exc)), "simulation": exc.simulation.to_dict()}, "error"
        except (TrialFailed, ChorusError) as exc:
            detail = exc.detail if isinstance(exc, ChorusError) else str(exc)
            return _errored(f"the bot's run failed: {detail}"), "error"
        except Exception as exc:  # the case errors with its reason; the execution goes on
            log.exception("an eval trial failed", extra={"execution_id": execution_id, "eval_id": case["id"]})
            return _errored(f"the trial failed: {type(exc).__name__}: {exc}"), "error"
        measured = await measure_model_metrics(metrics, case, obs)
        result = judge_trial(
            case, obs, default_threshold=settings.default_threshold, simulation=simulation, measured=measured
        )
        return result, "completed"

    async def _simulate(
        self, tenant_id: str, case: dict[str, Any], target: Target, meta: dict[str, Any]
    ) -> tuple[Observation, Simulation]:
        """A simulated user's conversation with the bot (chorus/evals/simulation.py)."""
        spec = SimulatedUser.model_validate(case["simulated_user"])
        bot = await target.open(tenant_id, tool_mocks=case["tool_mocks"], metadata=meta)
        return await simulate(self.simulator, bot, tenant_id, spec=spec, variables=case["vars"], metadata=meta)


def _errored(reason: str) -> dict[str, Any]:
    return {
        "score": 0.0,
        "passed": False,
        "error": reason,
        "reasoning": reason,
        "system_response": None,
        "evaluations": [],
        "tool_calls": [],
    }
