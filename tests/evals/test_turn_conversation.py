"""POST /api/v1/evaluation/turn-conversation: one turn judged at once, either given outright or read from a
stored conversation of the tenant (any user turn of it), with a case's checks."""

from __future__ import annotations

from typing import Any

import httpx
from langgraph_sdk.client import LangGraphClient

from chorus.agents.storage.database import Database
from tests.conftest import RunningServer, make_tenant

PATH = "/api/v1/evaluation/turn-conversation"


async def test_a_given_turn_is_judged_by_its_checks(http: httpx.AsyncClient) -> None:
    turn = {
        "user_input": "Where is my order ORD-1001?",
        "system_response": "Your order ORD-1001 has shipped and arrives Friday.",
        "tool_calls": [{"name": "fetch_order_status", "arguments": {"order_id": "ORD-1001"}}],
    }
    passed = await http.post(
        PATH,
        json={
            **turn,
            "assertions": [
                {"type": "icontains", "value": "SHIPPED"},
                {"type": "tool_called", "value": {"name": "fetch_order_status"}},
                {"type": "not-escalated"},
            ],
        },
    )
    assert passed.status_code == 200, passed.text
    body = passed.json()
    assert body["passed"] is True and body["score"] == 1.0 and body["user_input"] == turn["user_input"]
    assert [e["status"] for e in body["evaluations"]] == ["passed", "passed", "passed"]

    failed = await http.post(PATH, json={**turn, "assertions": [{"type": "contains", "value": "refund"}]})
    assert failed.json()["passed"] is False and "refund" in failed.json()["reasoning"]

    weighed = await http.post(
        PATH,
        json={
            **turn,
            "threshold": 0.7,
            "assertions": [
                {"type": "contains", "value": "Friday", "weight": 3},
                {"type": "contains", "value": "Monday", "weight": 1},
            ],
        },
    )
    assert weighed.json()["passed"] is True and weighed.json()["score"] == 0.75


async def test_unmeasurable_checks_are_unmeasured_never_passed(http: httpx.AsyncClient) -> None:
    turn = {"user_input": "hi", "system_response": "Hello!"}
    timed = await http.post(PATH, json={**turn, "assertions": [{"type": "latency", "value": 5000}]})
    assert timed.status_code == 200 and timed.json()["passed"] is None, timed.text
    assert timed.json()["evaluations"][0]["status"] == "unmeasured" and timed.json()["latency_ms"] is None
    judged = await http.post(PATH, json={**turn, "evaluator_types": ["answer_relevancy"]})
    assert judged.json()["passed"] is None
    assert judged.json()["evaluations"][0]["reasoning"].startswith("skipped")


async def test_a_stored_conversation_is_judged_turn_by_turn(
    http: httpx.AsyncClient, sdk: LangGraphClient, assistant_id: str, server: RunningServer, db: Database
) -> None:
    thread = await sdk.threads.create()
    for text in ("hello", "Where is my order ORD-1001?"):
        message: dict[str, Any] = {"role": "user", "content": text}
        await sdk.runs.wait(thread["thread_id"], assistant_id, input={"messages": [message]})
    order_check = {
        "type": "tool_called",
        "value": {"name": "fetch_order_status", "arguments": {"order_id": "ORD-1001"}},
    }
    last = await http.post(PATH, json={"thread_id": thread["thread_id"], "assertions": [order_check]})
    assert last.status_code == 200, last.text
    assert last.json()["passed"] is True and last.json()["user_input"] == "Where is my order ORD-1001?"
    assert "shipped" in last.json()["system_response"].lower()
    first = await http.post(PATH, json={"thread_id": thread["thread_id"], "turn": 0, "assertions": [order_check]})
    assert first.json()["passed"] is False and first.json()["user_input"] == "hello"
    assert first.json()["tool_calls"] == []

    beyond = await http.post(PATH, json={"thread_id": thread["thread_id"], "turn": 2, "assertions": [order_check]})
    assert beyond.status_code == 422 and "2 user turn(s)" in beyond.json()["detail"]

    other = await make_tenant(db)
    async with httpx.AsyncClient(base_url=server.url, headers={"x-api-key": other.key}) as stranger:
        hidden = await stranger.post(PATH, json={"thread_id": thread["thread_id"], "assertions": [order_check]})
        assert hidden.status_code == 404 and "ORD-1001" not in hidden.text


async def test_bad_requests_say_what_to_fix(http: httpx.AsyncClient, client_of: Any) -> None:
    check = [{"type": "contains", "value": "x"}]
    cases: list[tuple[dict[str, Any], str]] = [
        ({"assertions": check}, "either thread_id"),
        ({"thread_id": "00000000-0000-0000-0000-000000000001", "system_response": "x", "assertions": check}, "either"),
        ({"system_response": "x", "assertions": check}, "user_input is needed"),
        ({"user_input": "a", "system_response": "x"}, "at least one assertion"),
        ({"user_input": "a", "system_response": "x", "assertions": [{"type": "nope"}]}, "unknown assertion type"),
        ({"user_input": "a", "system_response": "x", "assertions": check, "repeat": 3}, "Extra inputs"),
        ({"thread_id": "00000000-0000-0000-0000-000000000001", "turn": 5000, "assertions": check}, "turn"),
    ]
    for body, why in cases:
        answer = await http.post(PATH, json=body)
        assert answer.status_code == 422 and why in answer.text, (body, answer.text)
    missing = await http.post(PATH, json={"thread_id": "00000000-0000-0000-0000-000000000001", "assertions": check})
    assert missing.status_code == 404
    viewer = await client_of("viewer")
    refused = await viewer.post(PATH, json={"user_input": "a", "system_response": "x", "assertions": check})
    assert refused.status_code == 403


async def test_a_turn_is_judged_by_the_judge_its_request_names(http: httpx.AsyncClient) -> None:
    """`evaluator_config.judge`, as a suite's: the judged metrics are measured (DeepEval's formula over the
    judge's verdicts), cached per tenant (the same request again makes no judge call), and a judge on a
    cloud-metadata address is refused."""
    from tests.fakes import judge_api, serve

    app = judge_api()
    async with serve(app) as url:
        judge = {"provider": "openai_compatible", "model": "scripted-judge", "base_url": f"{url}/v1"}
        body = {
            "user_input": "Where is my order?",
            "system_response": "Your order shipped. WRONG I like turtles. UNSURE Have a nice day.",
            "evaluator_types": ["answer_relevancy"],
            "expected_values": {"answer_relevancy": {"min_score": 0.5}},
            "evaluator_config": {"judge": judge},
        }
        first = await http.post(PATH, json=body)
        assert first.status_code == 200, first.text
        evaluation = first.json()["evaluations"][0]
        assert evaluation["metric"] == "answer_relevancy" and abs(evaluation["score"] - 2 / 3) < 1e-9, evaluation
        assert first.json()["passed"] is True
        calls = len(app.state.calls)
        assert calls > 0
        again = await http.post(PATH, json=body)
        assert again.json()["evaluations"][0]["score"] == evaluation["score"]
        assert len(app.state.calls) == calls  # from the judge cache
    metadata = {**body, "evaluator_config": {"judge": {**judge, "base_url": "http://169.254.169.254/v1"}}}
    refused = await http.post(PATH, json=metadata)
    assert refused.status_code == 422 and "link-local" in refused.text
