"""The deploy gate filled by eval executions, and trials pinned to the version under test whatever is
deployed meanwhile; repeated trials and unmeasured metrics over the API."""

from __future__ import annotations

import httpx

from chorus.agents.storage.database import Database
from tests.evals.conftest import ORDER_CASE, make_suite, wait_done

FAILING_CASE = {
    "name": "impossible",
    "user_input": "Where is my order ORD-1001?",
    "assertions": [{"type": "contains", "value": "lost at sea"}],
}


async def _execute(http: httpx.AsyncClient, suite_id: int, config_id: str, version: int) -> dict[str, object]:
    started = await http.post(
        f"/api/v1/evaluation/suites/{suite_id}/execute", json={"config_id": config_id, "version": version}
    )
    assert started.status_code == 202, started.text
    return await wait_done(http, started.json()["id"])


async def test_production_requires_the_suite_to_pass_on_that_version(
    http: httpx.AsyncClient, assistant_id: str
) -> None:
    gate_suite = await make_suite(http, [ORDER_CASE])
    name = (await http.get(f"/api/v1/evaluation/suites/{gate_suite}")).json()["name"]
    strict = await make_suite(http, [FAILING_CASE])
    patched = await http.patch(
        f"/api/v1/configs/{assistant_id}/environments/production",
        json={"required_eval_suites": [name, str(strict)]},  # by name and by id
    )
    assert patched.status_code == 200, patched.text
    deploy = {"environment": "production", "version": 1, "deployment_strategy": "immediate"}
    blocked = await http.post(f"/api/v1/configs/{assistant_id}/deploy", json=deploy)
    assert blocked.status_code == 409 and blocked.json()["error"] == "deployment_blocked", blocked.text
    assert f"eval suite '{name}' has not been executed on version 1" in blocked.text

    assert (await _execute(http, gate_suite, assistant_id, 1))["passed"] is True
    failed = await _execute(http, strict, assistant_id, 1)
    assert failed["status"] == "completed" and failed["passed"] is False
    still = await http.post(f"/api/v1/configs/{assistant_id}/deploy", json=deploy)
    assert still.status_code == 409 and f"eval suite '{strict}' failed on version 1" in still.text
    assert name not in still.text  # that one passed

    await http.patch(f"/api/v1/configs/{assistant_id}/environments/production", json={"required_eval_suites": [name]})
    deployed = await http.post(f"/api/v1/configs/{assistant_id}/deploy", json=deploy)
    assert deployed.status_code == 202 and deployed.json()["status"] == "deployed", deployed.text


async def test_trials_stay_on_the_version_under_test(http: httpx.AsyncClient, db: Database, assistant_id: str) -> None:
    changed = await http.patch(f"/api/v1/configs/{assistant_id}", json={"system_prompt": {"tone": "pirate"}})
    assert changed.status_code == 200 and changed.json()["version"] == 2, changed.text
    deployed = await http.post(
        f"/api/v1/configs/{assistant_id}/deploy",
        json={"environment": "production", "version": 2, "deployment_strategy": "immediate"},
    )
    assert deployed.status_code == 202 and deployed.json()["status"] == "deployed", deployed.text
    suite_id = await make_suite(http, [{**ORDER_CASE, "repeat": 3}])
    done = await _execute(http, suite_id, assistant_id, 1)
    async with db.connection() as conn:
        cur = await conn.execute(
            "SELECT config_version FROM threads WHERE (metadata->'eval'->>'execution_id')::bigint = %s", (done["id"],)
        )
        versions = [r["config_version"] for r in await cur.fetchall()]
    assert versions == [1, 1, 1]
    summary = (await http.get(f"/api/v1/evaluation/executions/{done['id']}/summary")).json()
    case = summary["summary"]["cases"][0]
    assert (case["trials"], case["passed"], case["flaky"], case["pass_rate"]) == (3, 3, False, 1.0)
    assert case["pass_rate_interval"][0] > 0.4 and case["pass_rate_interval"][1] == 1.0
    assert [r["trial"] for r in summary["results"]] == [1, 2, 3]


async def test_unmeasured_metrics_never_pass_a_suite(http: httpx.AsyncClient, assistant_id: str) -> None:
    judged = {**ORDER_CASE, "evaluator_types": ["faithfulness", "answer_relevancy"]}
    suite_id = await make_suite(http, [judged], min_pass_rate=0.0)
    done = await _execute(http, suite_id, assistant_id, 1)
    summary = (await http.get(f"/api/v1/evaluation/executions/{done['id']}/summary")).json()
    result = summary["results"][0]["result"]
    assert result["passed"] is None and result["reasoning"].startswith("unmeasured: ")
    skipped = [e for e in result["evaluations"] if e["metric"] in ("faithfulness", "answer_relevancy")]
    assert [e["reasoning"] for e in skipped] == ["skipped: no judge model"] * 2
    metrics = summary["summary"]["metrics"]
    assert metrics["faithfulness"]["mean"] is None and metrics["icontains"]["mean"] == 1.0
    assert summary["summary"]["pass_rate"] == 0.0  # an unmeasured trial is not a pass
    assert "NaN" not in httpx.Response(200, json=summary).text
