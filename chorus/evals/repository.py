"""The SQL of the eval harness: suites, cases, executions (each with its queue job) and trial results.
Every statement is scoped by tenant: another tenant's id is a NotFound, like one that does not exist."""

from __future__ import annotations

import uuid
from typing import Any

from psycopg import AsyncConnection
from psycopg.errors import UniqueViolation
from psycopg.rows import DictRow
from psycopg.types.json import Jsonb

from chorus.agents.errors import AlreadyExists, NotFound
from chorus.agents.queue.repository import WAKE_SQL, NewJob, enqueue_sql
from chorus.agents.storage.database import Database
from chorus.evals.schemas import CaseCreate, SuiteCreate

EVAL_KIND = "eval_execution"
MAX_ID = 2**62
_SUITE = "id, name, description, evaluator_config, created_at, updated_at"
_CASE = (
    "id, eval_suite_id, name, evaluator_types, expected_values, user_input, turns, conversation_context,"
    " source_conversation_id, vars, assertions, threshold, repeat, tool_mocks, simulated_user, created_at, updated_at"
)
_EXECUTION = (
    "id, eval_suite_id, name, status, execution_percentage, summary, conversation_spec_id, flow_name, job_id::text,"
    " config_id::text, config_version, batch_size, max_concurrent, passed, error, total_trials, created_at,"
    " updated_at, finished_at"
)


def parse_id(value: str | int, what: str) -> int:
    """A suite's, case's or execution's id (a positive integer, as the seed's SERIAL ids)."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise NotFound(f"{what} '{str(value)[:64]}' does not exist (its id is a number)") from None
    if not 0 < number < MAX_ID:
        raise NotFound(f"{what} '{number}' does not exist")
    return number


class EvalRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- suites ------------------------------------------------------------------------------------

    async def create_suite(self, tenant_id: str, suite: SuiteCreate) -> dict[str, Any]:
        try:
            async with self.db.connection() as conn:
                cur = await conn.execute(
                    "INSERT INTO eval_suites (tenant_id, name, description, evaluator_config) VALUES (%s, %s, %s, %s)"
                    f" RETURNING {_SUITE}",
                    (tenant_id, suite.name, suite.description, Jsonb(suite.evaluator_config.model_dump())),
                )
                row = await cur.fetchone()
        except UniqueViolation:
            raise AlreadyExists(
                f"a suite named '{suite.name}' already exists; pick another name, or add cases to it"
            ) from None
        assert row is not None
        return row

    async def suite(self, tenant_id: str, suite_id: int | str) -> dict[str, Any]:
        number = parse_id(suite_id, "suite")
        async with self.db.connection() as conn:
            cur = await conn.execute(
                f"SELECT {_SUITE} FROM eval_suites WHERE tenant_id = %s AND id = %s", (tenant_id, number)
            )
            row = await cur.fetchone()
        if row is None:
            raise NotFound(f"suite '{number}' does not exist; list suites with GET /api/v1/evaluation/suites")
        return row

    async def suite_named(self, tenant_id: str, ref: str) -> dict[str, Any] | None:
        """A suite by id or by name (the deploy gate's `required_eval_suites` may hold either)."""
        async with self.db.connection() as conn:
            number = int(ref) if ref.isdigit() and int(ref) < MAX_ID else -1
            cur = await conn.execute(
                f"SELECT {_SUITE} FROM eval_suites WHERE tenant_id = %s AND (id = %s OR name = %s)"
                " ORDER BY (id = %s) DESC LIMIT 1",
                (tenant_id, number, ref, number),
            )
            return await cur.fetchone()

    async def suites(self, tenant_id: str, *, limit: int, offset: int) -> list[dict[str, Any]]:
        async with self.db.connection() as conn:
            cur = await conn.execute(
                f"SELECT {_SUITE}, (SELECT count(*) FROM evals e WHERE e.eval_suite_id = s.id"
                " AND e.retired_at IS NULL) AS case_count"
                " FROM eval_suites s WHERE tenant_id = %s ORDER BY id LIMIT %s OFFSET %s",
                (tenant_id, limit, offset),
            )
            return await cur.fetchall()

    # -- cases -------------------------------------------------------------------------------------

    async def add_case(self, tenant_id: str, suite_id: int, case: CaseCreate) -> dict[str, Any]:
        async with self.db.connection() as conn:
            row = await _insert_case(conn, tenant_id, suite_id, case)
            if row is not None:
                await conn.execute("UPDATE eval_suites SET updated_at = now() WHERE id = %s", (suite_id,))
        if row is None:
            raise NotFound(f"suite '{suite_id}' does not exist; list suites with GET /api/v1/evaluation/suites")
        return row

    async def import_suite(
        self, tenant_id: str, suite: SuiteCreate, cases: list[CaseCreate]
    ) -> tuple[dict[str, Any], bool]:
        """Create the suite of that name, or update it: its settings replaced, its cases replaced by these
        (the old ones retired, kept for the results that point at them). The suite, and whether it is new."""
        async with self.db.connection() as conn, conn.transaction():
            cur = await conn.execute(
                "INSERT INTO eval_suites (tenant_id, name, description, evaluator_config) VALUES (%s, %s, %s, %s)"
                " ON CONFLICT (tenant_id, name) DO UPDATE SET description = EXCLUDED.description,"
                " evaluator_config = EXCLUDED.evaluator_config, updated_at = now()"
                f" RETURNING {_SUITE}, (xmax = 0) AS created",
                (tenant_id, suite.name, suite.description, Jsonb(suite.evaluator_config.model_dump())),
            )
            row = await cur.fetchone()
            assert row is not None
            await conn.execute(
                "UPDATE evals SET retired_at = now() WHERE tenant_id = %s AND eval_suite_id = %s"
                " AND retired_at IS NULL",
                (tenant_id, row["id"]),
            )
            for case in cases:
                await _insert_case(conn, tenant_id, row["id"], case)
        created = bool(row.pop("created"))
        return row, created

    async def cases(self, tenant_id: str, suite_id: int) -> list[dict[str, Any]]:
        async with self.db.connection() as conn:
            cur = await conn.execute(
                f"SELECT {_CASE} FROM evals WHERE tenant_id = %s AND eval_suite_id = %s AND retired_at IS NULL"
                " ORDER BY id",
                (tenant_id, suite_id),
            )
            return await cur.fetchall()

    # -- executions --------------------------------------------------------------------------------

    async def create_execution(
        self,
        tenant_id: str,
        *,
        suite_id: int,
        config_id: str | None,
        version: int | None,
        config_body: dict[str, Any] | None,
        batch_size: int,
        max_concurrent: int,
        total_trials: int,
        name: str | None,
        conversation_spec_id: str | None,
        flow_name: str | None,
    ) -> dict[str, Any]:
        """The execution (pending) and its queue job, in one transaction: a crash cannot leave one without
        the other."""
        job_id = str(uuid.uuid4())
        sql, params = enqueue_sql(NewJob(kind=EVAL_KIND, tenant_id=tenant_id, job_id=job_id), claim=None)
        async with self.db.connection() as conn, conn.transaction():
            cur = await conn.execute(
                "INSERT INTO eval_suite_executions (tenant_id, eval_suite_id, name, conversation_spec_id, flow_name,"
                " job_id, config_id, config_version, config_body, batch_size, max_concurrent, total_trials)"
                f" VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING {_EXECUTION}",
                (
                    tenant_id,
                    suite_id,
                    name,
                    conversation_spec_id,
                    flow_name,
                    job_id,
                    config_id,
                    version,
                    Jsonb(config_body) if config_body is not None else None,
                    batch_size,
                    max_concurrent,
                    total_trials,
                ),
            )
            row = await cur.fetchone()
            await conn.execute(f"WITH job AS ({sql}) SELECT {WAKE_SQL} FROM job", params)
        assert row is not None
        return row

    async def execution(self, tenant_id: str, execution_id: int | str) -> dict[str, Any]:
        number = parse_id(execution_id, "execution")
        async with self.db.connection() as conn:
            cur = await conn.execute(
                f"SELECT {_EXECUTION} FROM eval_suite_executions WHERE tenant_id = %s AND id = %s", (tenant_id, number)
            )
            row = await cur.fetchone()
        if row is None:
            raise NotFound(f"execution '{number}' does not exist")
        return row

    async def execution_of_job(self, job_id: str) -> dict[str, Any] | None:
        async with self.db.connection() as conn:
            cur = await conn.execute(
                f"SELECT tenant_id::text, config_body, {_EXECUTION} FROM eval_suite_executions WHERE job_id = %s",
                (job_id,),
            )
            return await cur.fetchone()

    async def executions(self, tenant_id: str, suite_id: int, *, limit: int) -> list[dict[str, Any]]:
        async with self.db.connection() as conn:
            cur = await conn.execute(
                f"SELECT {_EXECUTION} FROM eval_suite_executions WHERE tenant_id = %s AND eval_suite_id = %s"
                " ORDER BY id DESC LIMIT %s",
                (tenant_id, suite_id, limit),
            )
            return await cur.fetchall()

    async def mark_running(self, execution_id: int) -> None:
        async with self.db.connection() as conn:
            await conn.execute(
                "UPDATE eval_suite_executions SET status = 'running', updated_at = now() WHERE id = %s"
                " AND status IN ('pending', 'running')",
                (execution_id,),
            )

    async def results(self, tenant_id: str, execution_id: int) -> list[dict[str, Any]]:
        async with self.db.connection() as conn:
            cur = await conn.execute(
                "SELECT id, eval_id, trial, evaluator_type, status, result, created_at FROM eval_executions"
                " WHERE tenant_id = %s AND eval_suite_execution_id = %s ORDER BY eval_id, trial",
                (tenant_id, execution_id),
            )
            return await cur.fetchall()

    async def record_trial(
        self, tenant_id: str, execution_id: int, *, eval_id: int, trial: int, status: str, result: dict[str, Any]
    ) -> int:
        """Store one trial's result (once: a resumed execution may finish a trial a dead process had done
        too) and the execution's progress; the percentage done."""
        async with self.db.connection() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO eval_executions (tenant_id, eval_suite_execution_id, eval_id, trial, evaluator_type,"
                " status, result) VALUES (%s, %s, %s, %s, 'assertions', %s, %s)"
                " ON CONFLICT (eval_suite_execution_id, eval_id, trial) DO NOTHING",
                (tenant_id, execution_id, eval_id, trial, status, Jsonb(result)),
            )
            cur = await conn.execute(
                "UPDATE eval_suite_executions x SET execution_percentage = LEAST(99, (100 * (SELECT count(*)"
                " FROM eval_executions r WHERE r.eval_suite_execution_id = x.id)) / GREATEST(x.total_trials, 1)),"
                " updated_at = now() WHERE id = %s RETURNING execution_percentage",
                (execution_id,),
            )
            row = await cur.fetchone()
        return int(row["execution_percentage"]) if row else 0

    async def finish(
        self, execution_id: int, *, status: str, summary: dict[str, Any] | None, passed: bool | None, error: str | None
    ) -> None:
        async with self.db.connection() as conn:
            await conn.execute(
                "UPDATE eval_suite_executions SET status = %s, summary = %s, passed = %s, error = %s,"
                " execution_percentage = CASE WHEN %s = 'completed' THEN 100 ELSE execution_percentage END,"
                " updated_at = now(), finished_at = now() WHERE id = %s",
                (status, Jsonb(summary) if summary is not None else None, passed, error, status, execution_id),
            )

    async def latest_verdict(self, tenant_id: str, *, config_id: str, version: int, suite_id: int) -> bool | None:
        """The verdict of the latest finished execution of a suite on a config version; None if none."""
        async with self.db.connection() as conn:
            cur = await conn.execute(
                "SELECT status, passed FROM eval_suite_executions WHERE tenant_id = %s AND config_id = %s"
                " AND config_version = %s AND eval_suite_id = %s AND status IN ('completed', 'failed')"
                " ORDER BY id DESC LIMIT 1",
                (tenant_id, config_id, version, suite_id),
            )
            row = await cur.fetchone()
        if row is None:
            return None
        return bool(row["passed"]) if row["status"] == "completed" else False


async def _insert_case(
    conn: AsyncConnection[DictRow], tenant_id: str, suite_id: int, case: CaseCreate
) -> dict[str, Any] | None:
    """Insert a case into the tenant's suite; None if the tenant has no such suite."""
    data = case.model_dump(mode="json", by_alias=True)
    cur = await conn.execute(
        "INSERT INTO evals (tenant_id, eval_suite_id, name, evaluator_types, expected_values, user_input,"
        " turns, conversation_context, source_conversation_id, vars, assertions, threshold, repeat,"
        " tool_mocks, simulated_user) SELECT %s, s.id, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s"
        " FROM eval_suites s"
        f" WHERE s.tenant_id = %s AND s.id = %s RETURNING {_CASE}",
        (
            tenant_id,
            case.name,
            case.evaluator_types,
            Jsonb(data["expected_values"]) if case.expected_values is not None else None,
            case.user_input,
            Jsonb(data["turns"]),
            Jsonb(data["conversation_context"]) if case.conversation_context is not None else None,
            case.source_conversation_id,
            Jsonb(data["vars"]),
            Jsonb(data["assertions"]),
            case.threshold,
            case.repeat,
            Jsonb(data["tool_mocks"]),
            Jsonb(data["simulated_user"]) if case.simulated_user is not None else None,
            tenant_id,
            suite_id,
        ),
    )
    return await cur.fetchone()
