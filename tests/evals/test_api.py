"""The evaluation API end to end: a suite of cases executed in the background against a config version
through the run engine, its progress, its summary and each trial's result."""

from __future__ import annotations

from typing import Any

import httpx

from tests.evals.conftest import ORDER_CASE, make_suite, wait_done


async def test_a_suite_runs_against_a_config_version(http: httpx.AsyncClient, assistant_id: str) -> None:
    suite_id = await make_suite(http, [ORDER_CASE])
    started = await http.post(
        f"/api/v1/evaluation/suites/{suite_id}/execute", json={"config_id": assistant_id, "version": 1}
    )
    assert started.status_code == 202, started.text
    assert started.json()["status"] == "pending" and started.json()["execution_percentage"] == 0
    done = await wait_done(http, started.json()["id"])
    summary = (await http.get(f"/api/v1/evaluation/executions/{done['id']}/summary")).json()
    print(summary)
    assert done["status"] == "completed" and done["execution_percentage"] == 100, done
    result: dict[str, Any] = summary["results"][0]["result"]
    assert result["passed"] is True, result
