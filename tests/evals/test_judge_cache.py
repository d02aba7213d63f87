"""The judge cache in Postgres: a rerun asks the judge nothing, a changed input asks again, and another tenant
never reads a tenant's cached answers. End to end through executions, a judge that stays invalid errors its
metric while the execution completes."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from chorus.agents.settings import Settings
from chorus.agents.storage.database import Database, open_database
from chorus.evals.judge import Judge, JudgeConfig
from chorus.evals.judge_cache import JudgeCache
from chorus.evals.metrics_judged import DATABASE_FAULTS, ModelMetrics, request_key
from chorus.evals.observation import Observation
from tests.conftest import RunningServer, Tenant, make_tenant
from tests.evals.conftest import make_suite, wait_done
from tests.evals.test_simulated_users import REFUND, acme_without_knowledge
from tests.fakes import judge_api, serve

ANSWER = Observation(output="Your order shipped. WRONG I like turtles.", answers=("Your order shipped.",))
CASE: dict[str, Any] = {"user_input": "Where is my order?", "expected_values": None, "conversation_context": None}
REQUESTS: list[tuple[str, Any, float | None]] = [("answer_relevancy", None, None)]


def judge(url: str, tenant_id: str, db: Database, model: str = "scripted-judge") -> Judge:
    config = JudgeConfig(provider="openai_compatible", model=model, base_url=f"{url}/v1")
    return Judge(config, tenant_id=tenant_id, cache=JudgeCache(db))


async def test_a_cached_answer_is_reused_only_for_the_same_inputs_and_tenant(db: Database, tenant: Tenant) -> None:
    other = await make_tenant(db)
    app = judge_api()
    async with serve(app) as url:
        first = judge(url, tenant.tenant_id, db)
        cold = await ModelMetrics(judge=first).measure(CASE, ANSWER, REQUESTS)
        assert first.model_calls == 2  # statements, verdicts
        again = judge(url, tenant.tenant_id, db)
        warm = await ModelMetrics(judge=again).measure(CASE, ANSWER, REQUESTS)
        assert again.model_calls == 0 and again.cache_hits == 2
        assert warm == cold
        # another tenant: its own calls, never the first tenant's rows
        theirs = judge(url, other.tenant_id, db)
        await ModelMetrics(judge=theirs).measure(CASE, ANSWER, REQUESTS)
        assert theirs.model_calls == 2 and theirs.cache_hits == 0
        # another judged text, another judge model: asked again
        changed = judge(url, tenant.tenant_id, db)
        await ModelMetrics(judge=changed).measure(CASE, Observation(output="Your order shipped today."), REQUESTS)
        assert changed.model_calls == 2
        model = judge(url, tenant.tenant_id, db, model="another-judge")
        await ModelMetrics(judge=model).measure(CASE, ANSWER, REQUESTS)
        assert model.model_calls == 2
    assert len(app.state.calls) == 8
    async with db.connection() as conn:
        cur = await conn.execute("SELECT count(*) AS n FROM judge_cache WHERE tenant_id = %s", (other.tenant_id,))
        row = await cur.fetchone()
    assert row is not None and row["n"] == 2
    assert cold[request_key("answer_relevancy", None, None)].score == 0.5


JUDGED_CASE: dict[str, Any] = {
    "name": "judged order status",
    "user_input": "Where is my order ORD-1001?",
    "evaluator_types": ["answer_relevancy", "conversation_completeness"],
    "conversation_context": {"context": ["Orders ship within two days.", "WRONG Orders never ship."]},
    "assertions": [
        {"type": "hallucination", "threshold": 0.5},
        {"type": "not-escalated"},
    ],
    "repeat": 2,
}


async def _execute(http: httpx.AsyncClient, suite_id: int, assistant_id: str) -> dict[str, Any]:
    started = await http.post(f"/api/v1/evaluation/suites/{suite_id}/execute", json={"config_id": assistant_id})
    assert started.status_code == 202, started.text
    done = await wait_done(http, started.json()["id"])
    assert done["status"] == "completed", done
    summary: dict[str, Any] = (await http.get(f"/api/v1/evaluation/executions/{done['id']}/summary")).json()
    return summary


async def test_a_rerun_of_an_execution_makes_no_judge_call(
    http: httpx.AsyncClient, assistant_id: str, server: RunningServer, db: Database, acme_config: dict[str, Any]
) -> None:
    app = judge_api()
    async with serve(app) as url:
        judge_config = {"provider": "openai_compatible", "model": "scripted-judge", "base_url": f"{url}/v1"}
        suite_id = await make_suite(http, [JUDGED_CASE], judge=judge_config)
        first = await _execute(http, suite_id, assistant_id)
        cold_calls = len(app.state.calls)
        second = await _execute(http, suite_id, assistant_id)
        assert len(app.state.calls) == cold_calls  # the rerun asked the judge nothing
        # two trials of the same case judged the same texts: the second trial was served by the first's answers
        assert cold_calls == 1 + 2 + 2  # hallucination: verdicts; relevancy, completeness: statements + verdicts
        for summary in (first, second):
            result = summary["results"][0]["result"]
            by_metric = {e["metric"]: e for e in result["evaluations"]}
            assert by_metric["hallucination"]["score"] == 0.5 and by_metric["hallucination"]["passed"] is True
            assert by_metric["answer_relevancy"]["status"] in ("passed", "failed")
            assert by_metric["conversation_completeness"]["score"] == 1.0
        assert [r["result"]["evaluations"] for r in first["results"]] == [
            r["result"]["evaluations"] for r in second["results"]
        ]
        # the same suite in another tenant runs cold: it never reads the first tenant's answers
        other = await make_tenant(db)
        async with httpx.AsyncClient(base_url=server.url, headers={"x-api-key": other.key}, timeout=30) as theirs:
            created = await theirs.post("/api/v1/configs", json=acme_config)
            assert created.status_code == 201, created.text
            their_suite = await make_suite(theirs, [JUDGED_CASE], judge=judge_config)
            await _execute(theirs, their_suite, created.json()["assistant_id"])
        assert len(app.state.calls) == 2 * cold_calls


async def test_a_judge_that_stays_invalid_errors_its_metric_and_the_execution_completes(
    http: httpx.AsyncClient, assistant_id: str
) -> None:
    app = judge_api(invalid_first=1000)
    async with serve(app) as url:
        judge_config = {"provider": "openai_compatible", "model": "broken", "base_url": f"{url}/v1", "max_retries": 1}
        suite_id = await make_suite(
            http, [{**JUDGED_CASE, "repeat": 1, "evaluator_types": ["answer_relevancy"]}], judge=judge_config
        )
        summary = await _execute(http, suite_id, assistant_id)
    result = summary["results"][0]["result"]
    by_metric = {e["metric"]: e for e in result["evaluations"]}
    assert by_metric["answer_relevancy"]["status"] == "error"
    assert "no valid answer after 2 attempt(s)" in by_metric["answer_relevancy"]["reasoning"]
    assert by_metric["not-escalated"]["passed"] is True
    assert result["passed"] is None and summary["passed"] is False  # never a pass
    assert summary["summary"]["metrics"]["answer_relevancy"]["unmeasured"] == 1


async def test_a_suite_refuses_an_offline_or_unknown_judge(http: httpx.AsyncClient) -> None:
    offline = await http.post(
        "/api/v1/evaluation/suites",
        json={"name": "offline-judge", "evaluator_config": {"judge": {"provider": "offline", "model": "m"}}},
    )
    assert offline.status_code == 422 and "the offline model cannot judge" in offline.text
    typo = await http.post(
        "/api/v1/evaluation/suites",
        json={"name": "typo", "evaluator_config": {"judge": {"provider": "openai", "model": "m", "timeout": 3}}},
    )
    assert typo.status_code == 422 and "timeout" in typo.text


async def test_the_judge_key_comes_from_the_vault_and_no_server_key_goes_to_a_chosen_url(
    http: httpx.AsyncClient, assistant_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-server-only")  # the server's key: never sent to a suite's base_url
    app = judge_api()
    case = {**JUDGED_CASE, "repeat": 1, "evaluator_types": [], "assertions": [{"type": "hallucination"}]}
    async with serve(app) as url:
        created = await http.post("/api/v1/secrets", json={"name": "JUDGE_KEY", "value": "sk-tenant-judge"})
        assert created.status_code == 201, created.text
        for secret, context in ((None, "A."), ("JUDGE_KEY", "B."), ("NO_SUCH_KEY", "C.")):
            judge_config: dict[str, Any] = {"provider": "openai", "model": "gpt-4o-mini", "base_url": f"{url}/v1"}
            if secret:
                judge_config["api_key_secret"] = secret
            suite_id = await make_suite(
                http, [{**case, "conversation_context": {"context": [context]}}], judge=judge_config
            )
            summary = await _execute(http, suite_id, assistant_id)
            evaluation = summary["results"][0]["result"]["evaluations"][0]
            if secret == "NO_SUCH_KEY":
                assert evaluation["status"] == "error" and "no secret named 'NO_SUCH_KEY'" in evaluation["reasoning"]
            else:
                assert evaluation["status"] == "passed", evaluation
    assert app.state.keys == ["Bearer unused", "Bearer sk-tenant-judge"]


async def test_an_openai_compatible_judge_needs_its_url(http: httpx.AsyncClient) -> None:
    for judge, problem in (
        ({"provider": "openai_compatible", "model": "m"}, "needs base_url"),
        ({"provider": "openai", "model": "m", "base_url": "ftp://x"}, "scheme"),
        ({"provider": "openai", "model": "m", "api_key_env": "CHORUS_SECRET_KEY"}, "api_key_env"),
    ):
        created = await http.post(
            "/api/v1/evaluation/suites", json={"name": f"bad-{problem}", "evaluator_config": {"judge": judge}}
        )
        assert created.status_code == 422 and problem in created.text, created.text


async def test_a_database_fault_is_the_executions_not_the_metrics(settings: Settings, database_url: str) -> None:
    """The cache's database failing is raised (the runner puts the execution back on the queue to resume),
    never turned into a metric error that would stick in the results."""
    gone = await open_database(settings, url=database_url, migrate=False)
    await gone.close()
    app = judge_api()
    async with serve(app) as url:
        metrics = ModelMetrics(judge=judge(url, "00000000-0000-0000-0000-000000000000", gone))
        with pytest.raises(DATABASE_FAULTS):
            await metrics.measure(CASE, ANSWER, REQUESTS)
    assert app.state.calls == []


async def test_a_simulated_users_goal_is_judged_as_task_completion(
    http: httpx.AsyncClient, acme_config: dict[str, Any]
) -> None:
    """The expected outcome's description is the task of task_completion: the judge lists its criteria and
    judges each on the conversation the simulator had with the bot (criteria holding WRONG are judged unmet)."""
    assistant_id = await acme_without_knowledge(http, acme_config)
    app = judge_api()
    goal = {**REFUND["simulated_user"], "expected_outcome": "The refund is started. WRONG A voucher is sent."}
    async with serve(app) as url:
        judge_config = {"provider": "openai_compatible", "model": "scripted-judge", "base_url": f"{url}/v1"}
        suite_id = await make_suite(http, [{**REFUND, "simulated_user": goal}], judge=judge_config)
        summary = await _execute(http, suite_id, assistant_id)
    result = summary["results"][0]["result"]
    goal_completion = next(e for e in result["evaluations"] if e["metric"] == "goal_completion")
    assert goal_completion["score"] == 0.5 and goal_completion["passed"] is True, goal_completion
    assert "task completion 1/2 criteria met" in goal_completion["reasoning"]
    criteria_step = next(c for c in app.state.calls if "<task>" in c["messages"][-1]["content"])
    assert "The refund is started." in criteria_step["messages"][-1]["content"]
    verdicts = app.state.calls[-1]["messages"][-1]["content"]
    assert "User: I want a refund for order ORD-1001" in verdicts and "initiate_refund" in verdicts
