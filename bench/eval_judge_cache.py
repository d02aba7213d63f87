"""An eval execution with LLM-judged metrics on a cold judge cache vs the same execution run again (warm): the
judge model calls of each (issue 11: zero on the rerun) and the wall-time ratio.

One `chorus serve` process with the example support bot on the offline model; the judge is the scripted
OpenAI-compatible judge of tests/fakes.py (`judge_api`), served in this process with a fixed latency per call
(JUDGE_LATENCY_S, standing in for a real judge model's), reached through the real langchain-openai client. A
suite of N cases, each with answer_relevancy and conversation_completeness as evaluator types and a
hallucination assertion over a context of its own, is executed twice against the same version, timed from the
execute request to `completed`.

    uv run python -m bench.eval_judge_cache [--cases 20] [--tiny]
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import uvicorn

from bench.harness import parse_sizes
from bench.server_process import chorus_server, free_port
from tests.fakes import judge_api  # the scripted judge: one stand-in for the tests and this benchmark

SIZES = {"cases": 20}
TINY = {"cases": 2}
JUDGE_LATENCY_S = 0.2


@asynccontextmanager
async def _judge() -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    app = judge_api(delay_s=JUDGE_LATENCY_S)
    # log_config=None: uvicorn must not rebind logging to the streams of whoever runs this (pytest's capsys)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}/v1", app.state.calls
    finally:
        server.should_exit = True
        await task


async def _execute(client: httpx.AsyncClient, suite_id: int, assistant_id: str) -> float:
    started = time.perf_counter()
    body = {"config_id": assistant_id, "max_concurrent": 8, "batch_size": 100}
    started_reply = await client.post(f"/api/v1/evaluation/suites/{suite_id}/execute", json=body)
    started_reply.raise_for_status()
    execution = started_reply.json()
    while True:
        reply = await client.get(f"/api/v1/evaluation/executions/{execution['id']}/status")
        if reply.status_code in (429, 503):  # a busy server under the load of a shared machine: ask again
            await asyncio.sleep(0.2)
            continue
        reply.raise_for_status()
        status = reply.json()
        if status["status"] in ("completed", "failed"):
            break
        await asyncio.sleep(0.02)
    if status["status"] != "completed":
        raise RuntimeError(f"the execution did not complete: {status}")
    elapsed = time.perf_counter() - started
    errored = sum(c["errored"] for c in status["summary"]["cases"])
    if errored:  # a trial that errored was not judged: the two runs would not judge the same texts
        raise RuntimeError(f"{errored} trial(s) errored: {status['summary']['cases']}")
    metrics = status["summary"]["metrics"]
    unmeasured = {name: m["unmeasured"] for name, m in metrics.items() if m["unmeasured"]}
    if unmeasured:  # a judge error is not cached: the rerun would ask again, and the figure would lie
        summary = (await client.get(f"/api/v1/evaluation/executions/{execution['id']}/summary")).json()
        reasons = {
            e["reasoning"] for r in summary["results"] for e in r["result"]["evaluations"] if e["passed"] is None
        }
        raise RuntimeError(f"judged metrics left unmeasured {unmeasured}: {sorted(reasons)[:3]}")
    return elapsed


async def main(*, cases: int = SIZES["cases"]) -> dict[str, float]:
    async with (
        _judge() as (judge_url, calls),
        chorus_server() as server,
        httpx.AsyncClient(base_url=server.url, headers={"x-api-key": server.key}, timeout=60) as client,
    ):
        suite = {
            "name": "bench-judged",
            "evaluator_config": {
                "judge": {"provider": "openai_compatible", "model": "scripted-judge", "base_url": judge_url}
            },
            "cases": [
                {
                    "name": f"order {i}",
                    "user_input": f"Where is my order ORD-{1001 + i % 3}?",
                    "evaluator_types": ["answer_relevancy", "conversation_completeness"],
                    "conversation_context": {"context": [f"Order case {i}: orders ship within two days."]},
                    "assertions": [{"type": "hallucination"}],
                }
                for i in range(cases)
            ],
        }
        imported = await client.post("/api/v1/evaluation/suites/import", json=suite)
        imported.raise_for_status()
        suite_id = imported.json()["id"]
        cold = await _execute(client, suite_id, server.assistant_id)
        cold_calls = len(calls)
        warm = await _execute(client, suite_id, server.assistant_id)
        warm_calls = len(calls) - cold_calls
    result = {
        "cold_s": cold,
        "warm_s": warm,
        "cold_judge_calls": float(cold_calls),
        "warm_judge_calls": float(warm_calls),
        "ratio_speedup": cold / warm,
    }
    print(
        f"eval execution of {cases} judged cases ({JUDGE_LATENCY_S * 1000:.0f} ms/judge call): cold cache "
        f"{cold_calls} judge calls in {cold:.2f} s, rerun {warm_calls} judge calls in {warm:.2f} s: "
        f"{result['ratio_speedup']:.2f}x faster (target: 0 calls on the rerun)",
        flush=True,
    )
    return result


if __name__ == "__main__":
    asyncio.run(main(**parse_sizes(__doc__, SIZES, TINY)))
