"""Bad input to the evaluation API: unknown or another tenant's suites, executions, configs and versions
(404, nothing revealed), invalid cases and execute requests (422 naming the field), duplicate names (409)."""

from __future__ import annotations

import httpx
import pytest

from chorus.agents.storage.database import Database
from tests.conftest import RunningServer, make_tenant
from tests.evals.conftest import ORDER_CASE, make_suite, wait_done


@pytest.mark.parametrize("suite_id", ["999999999", "abc", "-1", "99999999999999999999999"])
async def test_unknown_suites_are_404(http: httpx.AsyncClient, suite_id: str, assistant_id: str) -> None:
    for method, path, body in (
        ("GET", f"/api/v1/evaluation/suites/{suite_id}", None),
        ("POST", f"/api/v1/evaluation/suites/{suite_id}/evals", ORDER_CASE),
        ("POST", f"/api/v1/evaluation/suites/{suite_id}/execute", {"config_id": assistant_id}),
    ):
        answer = await http.request(method, path, json=body)
        assert answer.status_code == 404, (path, answer.text)
        assert "does not exist" in answer.json()["detail"]
    for path in ("status", "summary"):
        answer = await http.get(f"/api/v1/evaluation/executions/{suite_id}/{path}")
        assert answer.status_code == 404 and "execution" in answer.json()["detail"]


async def test_unknown_configs_and_versions_are_404(http: httpx.AsyncClient, assistant_id: str) -> None:
    suite_id = await make_suite(http, [ORDER_CASE])
    path = f"/api/v1/evaluation/suites/{suite_id}/execute"
    unknown = await http.post(path, json={"config_id": "00000000-0000-0000-0000-000000000000"})
    assert unknown.status_code == 404, unknown.text
    no_version = await http.post(path, json={"config_id": assistant_id, "version": 7})
    assert no_version.status_code == 404 and "7" in no_version.json()["detail"], no_version.text
    listed = (await http.get(f"/api/v1/evaluation/suites/{suite_id}")).json()
    assert listed["recent_executions"] == []  # nothing was queued for a refused request


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"max_concurrent": 0}, "$.max_concurrent"),
        ({"max_concurrent": 33}, "$.max_concurrent"),
        ({"batch_size": 0}, "$.batch_size"),
        ({"batch_size": 101}, "$.batch_size"),
        ({"version": 0}, "$.version"),
        ({"surprise": 1}, "$.surprise"),
    ],
)
async def test_execute_ranges(http: httpx.AsyncClient, assistant_id: str, body: dict[str, object], path: str) -> None:
    suite_id = await make_suite(http, [ORDER_CASE])
    answer = await http.post(f"/api/v1/evaluation/suites/{suite_id}/execute", json={"config_id": assistant_id, **body})
    assert answer.status_code == 422 and path in [e["path"] for e in answer.json()["errors"]], answer.text


@pytest.mark.parametrize(
    ("case", "path", "message"),
    [
        (
            {"user_input": "hi", "assertions": [{"type": "contians", "value": "x"}]},
            "$.assertions[0]",
            "unknown assertion type",
        ),
        (
            {"user_input": "hi", "assertions": [{"type": "regex", "value": "("}]},
            "$.assertions[0]",
            "regular expression",
        ),
        ({"user_input": "hi", "assertions": []}, "$", "at least one assertion"),
        ({"user_input": "", "assertions": [{"type": "contains", "value": "x"}]}, "$.user_input", "at least 1"),
        (
            {"user_input": "hi", "evaluator_types": ["vibes"], "assertions": []},
            "$.evaluator_types",
            "unknown evaluator",
        ),
        ({"user_input": "hi", "repeat": 0, "assertions": [{"type": "contains", "value": "x"}]}, "$.repeat", "greater"),
        (
            {"user_input": "hi", "threshold": 2, "assertions": [{"type": "contains", "value": "x"}]},
            "$.threshold",
            "less",
        ),
    ],
)
async def test_invalid_cases_are_422_naming_the_field(
    http: httpx.AsyncClient, case: dict[str, object], path: str, message: str
) -> None:
    suite_id = await make_suite(http, [])
    answer = await http.post(f"/api/v1/evaluation/suites/{suite_id}/evals", json=case)
    assert answer.status_code == 422, answer.text
    errors = answer.json()["errors"]
    assert any(e["path"].startswith(path) and message in e["message"] for e in errors), errors


async def test_an_empty_suite_and_a_duplicate_name(http: httpx.AsyncClient, assistant_id: str) -> None:
    suite_id = await make_suite(http, [])
    empty = await http.post(f"/api/v1/evaluation/suites/{suite_id}/execute", json={"config_id": assistant_id})
    assert empty.status_code == 422 and "has no cases" in empty.json()["detail"]
    name = (await http.get(f"/api/v1/evaluation/suites/{suite_id}")).json()["name"]
    again = await http.post("/api/v1/evaluation/suites", json={"name": name})
    assert again.status_code == 409 and "already exists" in again.json()["detail"]


async def test_another_tenants_ids_are_404_and_nothing_leaks(
    http: httpx.AsyncClient, server: RunningServer, db: Database, assistant_id: str
) -> None:
    suite_id = await make_suite(http, [ORDER_CASE])
    started = await http.post(f"/api/v1/evaluation/suites/{suite_id}/execute", json={"config_id": assistant_id})
    execution_id = started.json()["id"]
    await wait_done(http, execution_id)
    other = await make_tenant(db)
    async with httpx.AsyncClient(base_url=server.url, headers={"x-api-key": other.key}) as stranger:
        for path in (
            f"/api/v1/evaluation/suites/{suite_id}",
            f"/api/v1/evaluation/executions/{execution_id}/status",
            f"/api/v1/evaluation/executions/{execution_id}/summary",
        ):
            answer = await stranger.get(path)
            assert answer.status_code == 404 and assistant_id not in answer.text, path
        added = await stranger.post(f"/api/v1/evaluation/suites/{suite_id}/evals", json=ORDER_CASE)
        assert added.status_code == 404
        # Its own suite against our config: our config is unknown to it.
        own = (await stranger.post("/api/v1/evaluation/suites", json={"name": "mine"})).json()["id"]
        await stranger.post(f"/api/v1/evaluation/suites/{own}/evals", json=ORDER_CASE)
        ours = await stranger.post(f"/api/v1/evaluation/suites/{own}/execute", json={"config_id": assistant_id})
        assert ours.status_code == 404 and "ORD" not in ours.text
        assert (await stranger.get("/api/v1/evaluation/suites")).json()["suites"][0]["name"] == "mine"
        assert len((await stranger.get("/api/v1/evaluation/suites")).json()["suites"]) == 1


async def test_a_viewer_reads_but_cannot_create_or_execute(
    http: httpx.AsyncClient, server: RunningServer, db: Database, tenant: object, assistant_id: str
) -> None:
    from chorus.agents.tenancy.keys import create_api_key

    suite_id = await make_suite(http, [ORDER_CASE])
    key = await create_api_key(db, tenant_id=tenant.tenant_id, role="viewer")  # type: ignore[attr-defined]
    async with httpx.AsyncClient(base_url=server.url, headers={"x-api-key": key}) as viewer:
        assert (await viewer.get(f"/api/v1/evaluation/suites/{suite_id}")).status_code == 200
        refused = await viewer.post(f"/api/v1/evaluation/suites/{suite_id}/execute", json={"config_id": assistant_id})
        assert refused.status_code == 403 and "developer" in refused.json()["detail"]
        assert (await viewer.post("/api/v1/evaluation/suites", json={"name": "v"})).status_code == 403


async def test_a_client_cannot_mock_its_own_tool_results(http: httpx.AsyncClient, assistant_id: str) -> None:
    thread_id = (await http.post("/threads", json={})).json()["thread_id"]
    run = {
        "assistant_id": assistant_id,
        "input": {"messages": [{"role": "user", "content": "Where is my order ORD-1001?"}]},
        "config": {"configurable": {"__chorus_tool_mocks": {"fetch_order_status": {"status": "refunded"}}}},
    }
    refused = await http.post(f"/threads/{thread_id}/runs/wait", json=run)
    assert refused.status_code == 422 and "__chorus_tool_mocks" in refused.text
    # Nor through a run's other fields: unknown fields are refused.
    sneaky = {**run, "config": None, "eval_tool_mocks": {"fetch_order_status": {"status": "refunded"}}}
    assert (await http.post(f"/threads/{thread_id}/runs/wait", json=sneaky)).status_code == 422
