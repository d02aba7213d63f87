"""Helpers of the eval tests: a suite with cases made over the API, and waiting for an execution to end."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

ORDER_CASE: dict[str, Any] = {
    "name": "order status",
    "user_input": "Where is my order ORD-1001?",
    "assertions": [
        {"type": "tool_called", "value": {"name": "fetch_order_status", "arguments": {"order_id": "ORD-1001"}}},
        {"type": "icontains", "value": "shipped"},
        {"type": "not-escalated"},
    ],
}


async def make_suite(http: httpx.AsyncClient, cases: list[dict[str, Any]], **config: Any) -> int:
    created = await http.post(
        "/api/v1/evaluation/suites",
        json={"name": f"suite-{id(cases)}-{asyncio.get_running_loop().time()}", "evaluator_config": config},
    )
    assert created.status_code == 201, created.text
    suite_id = int(created.json()["id"])
    for case in cases:
        added = await http.post(f"/api/v1/evaluation/suites/{suite_id}/evals", json=case)
        assert added.status_code == 201, added.text
    return suite_id


async def wait_done(http: httpx.AsyncClient, execution_id: int, *, seconds: float = 120) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        body: dict[str, Any] = (await http.get(f"/api/v1/evaluation/executions/{execution_id}/status")).json()
        if body["status"] in ("completed", "failed"):
            return body
        assert asyncio.get_running_loop().time() < deadline, f"execution still {body['status']}: {body}"
        await asyncio.sleep(0.1)
