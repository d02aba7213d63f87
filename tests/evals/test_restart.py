"""An execution survives the death of its server process: two real `chorus serve` processes share the
database; the one running the execution is killed (kill -9) mid-way and the other resumes it, without
redoing the trials already stored, to the end (never left "running")."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from chorus.agents.settings import Settings
from chorus.agents.storage.database import Database, open_database
from tests.conftest import ServerProcess, Tenant, make_tenant, slow_bot, start_server_process
from tests.evals.conftest import ORDER_CASE, make_suite, wait_done

TRIALS = 6


@pytest.fixture
async def own_db(db: Database, database_url: str, settings: Settings) -> AsyncIterator[Database]:
    """A database of this test's own on the session's Postgres: the test server's worker (in this process,
    on the session's database) must not be the one that claims the execution."""
    name = f"evals_restart_{uuid.uuid4().hex[:8]}"
    async with db.connection() as conn:
        await conn.execute(f'CREATE DATABASE "{name}"')
    url = make_conninfo(**{**conninfo_to_dict(database_url), "dbname": name})
    database = await open_database(dataclasses.replace(settings, database_url=url))
    yield database
    await database.close()
    async with db.connection() as conn:
        await conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest.fixture
def two_servers(own_db: Database, tmp_path: Path) -> Iterator[list[ServerProcess]]:
    servers = [start_server_process(own_db.url, tmp_path / name) for name in ("a", "b")]
    try:
        yield servers
    finally:
        for server in servers:
            if server.process.poll() is None:
                server.process.send_signal(signal.SIGTERM)
                server.process.wait(timeout=30)


async def _holder(db: Database, job_id: str) -> str | None:
    async with db.connection() as conn:
        cur = await conn.execute("SELECT worker FROM queue_jobs WHERE job_id = %s AND status = 'running'", (job_id,))
        row = await cur.fetchone()
    return row["worker"] if row else None


async def test_a_killed_process_execution_is_resumed_by_the_other(
    own_db: Database, acme_config: dict[str, Any], two_servers: list[ServerProcess]
) -> None:
    db = own_db
    tenant = await make_tenant(db)
    a, b = (httpx.AsyncClient(base_url=s.url, headers={"x-api-key": tenant.key}, timeout=30) for s in two_servers)
    async with a, b:
        created = await a.post("/api/v1/configs", json=slow_bot(acme_config, delay_ms=25))
        assert created.status_code == 201, created.text
        suite_id = await make_suite(a, [{**ORDER_CASE, "repeat": TRIALS}])
        body = {"config_id": created.json()["assistant_id"], "max_concurrent": 1, "batch_size": 1}
        started = (await a.post(f"/api/v1/evaluation/suites/{suite_id}/execute", json=body)).json()
        async with db.connection() as conn:
            cur = await conn.execute("SELECT job_id::text FROM eval_suite_executions WHERE id = %s", (started["id"],))
            job_id = (await cur.fetchone() or {})["job_id"]

        # Wait until some trials are stored, then kill the process that runs it.
        for _ in range(600):
            status = (await a.get(f"/api/v1/evaluation/executions/{started['id']}/status")).json()
            if status["execution_percentage"] >= 100 // TRIALS * 2:
                break
            await asyncio.sleep(0.05)
        assert status["status"] == "running" and status["execution_percentage"] < 100, status
        holder = await _holder(db, job_id)
        assert holder is not None
        pid = int(holder.split(":")[1])
        assert pid in (two_servers[0].process.pid, two_servers[1].process.pid)
        survivor = b if pid == two_servers[0].process.pid else a
        os.kill(pid, signal.SIGKILL)
        done_before = status["execution_percentage"] * TRIALS // 100

        finished = await wait_done(survivor, started["id"], seconds=120)
        assert finished["status"] == "completed" and finished["passed"] is True, finished
        assert finished["execution_percentage"] == 100
        summary = (await survivor.get(f"/api/v1/evaluation/executions/{started['id']}/summary")).json()
        assert [r["trial"] for r in summary["results"]] == list(range(1, TRIALS + 1))
        assert summary["summary"]["cases"][0]["passed"] == TRIALS
        async with db.connection() as conn:
            cur = await conn.execute(
                "SELECT count(*) AS n FROM threads WHERE (metadata->'eval'->>'execution_id')::bigint = %s",
                (started["id"],),
            )
            threads = (await cur.fetchone() or {})["n"]
        # Every trial once, plus at most the one in flight when the process died (max_concurrent 1): the
        # trials stored before the kill were not run again.
        assert TRIALS <= threads <= TRIALS + 1, (threads, done_before)
        assert await _holder(db, job_id) is None


async def test_an_execution_given_up_by_the_queue_is_marked_failed(
    http: httpx.AsyncClient, db: Database, tenant: Tenant, assistant_id: str
) -> None:
    """Its process died on the last attempt (a running job whose worker is gone and whose lease ran out):
    the reaper of a live process gives it up and the execution ends `failed`, saying so, not `running`."""
    suite_id = await make_suite(http, [ORDER_CASE])
    job_id = str(uuid.uuid4())
    async with db.connection() as conn, conn.transaction():
        cur = await conn.execute(
            "INSERT INTO eval_suite_executions (tenant_id, eval_suite_id, status, job_id, config_id, config_version,"
            " batch_size, max_concurrent, total_trials) VALUES (%s, %s, 'running', %s, %s, 1, 1, 1, 1) RETURNING id",
            (tenant.tenant_id, suite_id, job_id, assistant_id),
        )
        execution_id = (await cur.fetchone() or {})["id"]
        await conn.execute(
            "INSERT INTO queue_jobs (job_id, tenant_id, kind, status, worker, lease_until, attempts, max_attempts)"
            " VALUES (%s, %s, 'eval_execution', 'running', 'gone-host:1:dead', now() - interval '1 second', 3, 3)",
            (job_id, tenant.tenant_id),
        )
    done = await wait_done(http, execution_id, seconds=30)
    assert done["status"] == "failed" and "stopped 3 time(s)" in done["error"], done
    assert done["finished_at"] is not None


async def test_a_database_fault_mid_execution_is_resumed_not_failed(
    own_db: Database, acme_config: dict[str, Any], two_servers: list[ServerProcess]
) -> None:
    """Every connection of the server processes is cut mid-execution (what a Postgres restart or failover
    does): the execution goes back to the queue and ends completed, each trial stored once, none of them
    charged to the bot."""
    db = own_db
    tenant = await make_tenant(db)
    async with httpx.AsyncClient(base_url=two_servers[0].url, headers={"x-api-key": tenant.key}, timeout=30) as a:
        created = await a.post("/api/v1/configs", json=slow_bot(acme_config, delay_ms=25))
        assert created.status_code == 201, created.text
        suite_id = await make_suite(a, [{**ORDER_CASE, "repeat": TRIALS}])
        body = {"config_id": created.json()["assistant_id"], "max_concurrent": 1, "batch_size": 1}
        started = (await a.post(f"/api/v1/evaluation/suites/{suite_id}/execute", json=body)).json()
        for _ in range(600):
            status = (await a.get(f"/api/v1/evaluation/executions/{started['id']}/status")).json()
            if status["execution_percentage"] >= 100 // TRIALS * 2:
                break
            await asyncio.sleep(0.05)
        assert status["status"] == "running" and status["execution_percentage"] < 100, status
        async with db.connection() as conn:
            cur = await conn.execute(
                "SELECT count(pg_terminate_backend(pid)) AS cut FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            assert (await cur.fetchone() or {})["cut"] > 0

        finished: dict[str, Any] = {}
        for _ in range(3):  # a request that met a cut connection answers 503; the next one gets a fresh one
            try:
                finished = await wait_done(a, started["id"], seconds=120)
                break
            except (KeyError, AssertionError):
                await asyncio.sleep(0.5)
        assert finished.get("status") == "completed", finished
        summary = (await a.get(f"/api/v1/evaluation/executions/{started['id']}/summary")).json()
        assert sorted(r["trial"] for r in summary["results"]) == list(range(1, TRIALS + 1))
        errors = [r["result"].get("error") for r in summary["results"] if r["result"].get("error")]
        assert not errors, errors
        assert summary["passed"] is True
