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


async def test_scripted_turns_run_in_one_thread_with_mocked_tools(
    http: httpx.AsyncClient, acme_config: dict[str, Any]
) -> None:
    acme_config.pop("knowledge", None)  # no knowledge search: the offline model goes to the bot's own tools
    created = await http.post("/api/v1/configs", json=acme_config)
    assert created.status_code == 201, created.text
    case = {
        "name": "refund over two turns",
        "user_input": "I want a refund for order {{order}}",
        "turns": ["40"],  # the amount the bot asks for
        "vars": {"order": "ORD-1001"},
        "tool_mocks": {"initiate_refund": {"refund_id": "RF-MOCKED", "status": "approved"}},
        "assertions": [
            {"type": "tool_called", "value": {"name": "initiate_refund", "arguments": {"order_id": "ORD-1001"}}},
            {"type": "tool_sequence", "value": ["initiate_refund"]},
            {"type": "contains", "value": "RF-MOCKED"},
        ],
    }
    suite_id = await make_suite(http, [case])
    body = {"config_id": created.json()["assistant_id"]}
    started = await http.post(f"/api/v1/evaluation/suites/{suite_id}/execute", json=body)
    done = await wait_done(http, started.json()["id"])
    result = (await http.get(f"/api/v1/evaluation/executions/{done['id']}/summary")).json()["results"][0]["result"]
    assert result["passed"] is True, result
    first, second = result["responses"]
    assert "refund amount" in first and "RF-MOCKED" in second
    assert result["tool_calls"] == [
        {
            "name": "initiate_refund",
            "arguments": {
                "order_id": "ORD-1001",
                "refund_amount": 40.0,
                "reason": "I want a refund for order ORD-1001",
            },
        }
    ]
    assert result["tokens"] > 0 and result["latency_ms"] > 0


async def test_an_unsaved_config_is_validated_then_evaluated(
    http: httpx.AsyncClient, acme_config: dict[str, Any]
) -> None:
    suite_id = await make_suite(
        http, [ORDER_CASE, {**ORDER_CASE, "name": "mocked", "tool_mocks": {"fetch_order_status": {"status": "lost"}}}]
    )
    path = f"/api/v1/evaluation/suites/{suite_id}/execute"
    broken = {**acme_config, "llm_config": {"provider": "nope"}}
    refused = await http.post(path, json={"config": broken})
    assert refused.status_code == 422 and any(
        e["path"].startswith("$.config.llm_config") for e in refused.json()["errors"]
    ), refused.text
    both = await http.post(path, json={"config": acme_config, "config_id": "acme_support_bot"})
    assert both.status_code == 422 and "either config_id" in both.text
    started = await http.post(path, json={"config": acme_config})
    assert started.status_code == 202, started.text
    assert (started.json()["config_id"], started.json()["version"], started.json()["target"]) == (
        None,
        None,
        "unsaved config",
    )
    done = await wait_done(http, started.json()["id"])
    results = (await http.get(f"/api/v1/evaluation/executions/{done['id']}/summary")).json()["results"]
    real, mocked = (r["result"] for r in results)
    assert real["passed"] is True and real["tokens"] > 0, real
    assert mocked["passed"] is False and "status: lost" in mocked["system_response"], mocked
    # Nothing was uploaded: the tenant still has no config.
    assert (await http.post("/assistants/search", json={})).json() == []


async def test_a_voicebot_runs_through_its_graph_in_text_mode(
    http: httpx.AsyncClient, voice_config: dict[str, Any]
) -> None:
    created = await http.post("/api/v1/configs", json=voice_config)
    assert created.status_code == 201, created.text
    case = {"user_input": "hello", "assertions": [{"type": "not-escalated"}, {"type": "regex", "value": "\\w+"}]}
    suite_id = await make_suite(http, [case])
    started = await http.post(
        f"/api/v1/evaluation/suites/{suite_id}/execute", json={"config_id": created.json()["config_id"]}
    )
    done = await wait_done(http, started.json()["id"])
    result = (await http.get(f"/api/v1/evaluation/executions/{done['id']}/summary")).json()["results"][0]["result"]
    assert result["passed"] is True and result["system_response"], result
