"""Every benchmark runs end to end at its tiny sizes (`python -m bench.run_all --tiny`), so bench/ cannot rot
unnoticed. The figures are not checked (they are not tests); a benchmark that errors fails here.

They run in a database of their own on the session's Postgres: the benchmark servers are real `chorus serve`
processes, which must not meet the test server's runs.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType

import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from bench import run_all
from chorus.agents.storage.database import Database

BENCH = Path(run_all.__file__).resolve().parent
NOT_BENCHMARKS = {"__init__", "harness", "server_process", "run_all", "voice_calls"}


@pytest.fixture(scope="module")
async def bench_database(db: Database, database_url: str) -> AsyncIterator[str]:
    name = f"bench_smoke_{uuid.uuid4().hex[:8]}"
    async with db.connection() as conn:
        await conn.execute(f'CREATE DATABASE "{name}"')
    yield make_conninfo(**{**conninfo_to_dict(database_url), "dbname": name})
    async with db.connection() as conn:
        await conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def test_every_benchmark_is_in_the_smoke_run() -> None:
    modules = {p.stem for p in BENCH.glob("*.py")} - NOT_BENCHMARKS
    assert modules == {run_all.name(m) for m in run_all.MODULES}, "add the new benchmark to bench/run_all.py MODULES"


@pytest.mark.parametrize("module", run_all.MODULES, ids=run_all.name)
async def test_benchmark_runs_at_tiny_size(
    module: ModuleType, bench_database: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("BENCH_DATABASE_URL", bench_database)
    result = await run_all.run(module, tiny=True)
    ratios = {k: v for k, v in result.items() if k.startswith("ratio")}
    assert ratios, f"{run_all.name(module)} returned no ratio: {result}"
    assert all(math.isfinite(v) and v > 0 for v in ratios.values()), ratios
    printed = capsys.readouterr().out
    assert "x" in printed and printed.strip(), f"{run_all.name(module)} printed no figure"
