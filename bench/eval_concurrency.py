"""An eval suite's wall time with trials run one at a time vs `max_concurrent` 8 (issue 11: target at least 5x).

One `chorus serve` process; the example support bot on the offline model with a pause between streamed
tokens (`offline_token_delay_ms`, standing in for a model's latency, so trials wait on the model as they
would in production). A suite of N single-turn cases (a tool call and its answer each) is imported and
executed twice against the same version, `max_concurrent` 1 then 8 (`batch_size` 100), timed from the
execute request to the execution's `completed` status (polled every 20 ms).

    uv run python -m bench.eval_concurrency [--cases 100] [--tiny]
"""

from __future__ import annotations

import asyncio
import copy
import time

import httpx

from bench.harness import ACME, parse_sizes
from bench.server_process import chorus_server

SIZES = {"cases": 100}
TINY = {"cases": 4}
TOKEN_DELAY_MS = 10
TARGET = 5.0


async def _execute(client: httpx.AsyncClient, suite_id: int, assistant_id: str, max_concurrent: int) -> float:
    started = time.perf_counter()
    body = {"config_id": assistant_id, "max_concurrent": max_concurrent, "batch_size": 100}
    execution = (await client.post(f"/api/v1/evaluation/suites/{suite_id}/execute", json=body)).json()
    while True:
        status = (await client.get(f"/api/v1/evaluation/executions/{execution['id']}/status")).json()
        if status["status"] in ("completed", "failed"):
            break
        await asyncio.sleep(0.02)
    if status["status"] != "completed" or not status["passed"]:
        raise RuntimeError(f"the execution did not pass: {status}")
    return time.perf_counter() - started


async def main(*, cases: int = SIZES["cases"]) -> dict[str, float]:
    config = copy.deepcopy(ACME)
    config["llm_config"] = {"provider": "offline", "model": "chorus-offline", "offline_token_delay_ms": TOKEN_DELAY_MS}
    async with (
        chorus_server(config) as server,
        httpx.AsyncClient(base_url=server.url, headers={"x-api-key": server.key}, timeout=60) as client,
    ):
        suite = {
            "name": "bench",
            "cases": [
                {
                    "name": f"order {i}",
                    "user_input": f"Where is my order ORD-{1001 + i % 3}?",
                    "assertions": [{"type": "tool_called", "value": "fetch_order_status"}],
                }
                for i in range(cases)
            ],
        }
        imported = await client.post("/api/v1/evaluation/suites/import", json=suite)
        imported.raise_for_status()
        suite_id = imported.json()["id"]
        sequential = await _execute(client, suite_id, server.assistant_id, 1)
        concurrent = await _execute(client, suite_id, server.assistant_id, 8)
    result = {
        "sequential_s": sequential,
        "concurrent_s": concurrent,
        "trials_per_s_concurrent": cases / concurrent,
        "ratio_speedup": sequential / concurrent,
    }
    print(
        f"eval suite of {cases} cases ({TOKEN_DELAY_MS} ms/token offline model): max_concurrent 1 took "
        f"{sequential:.1f} s, max_concurrent 8 took {concurrent:.1f} s ({result['trials_per_s_concurrent']:.1f} "
        f"trials/s): {result['ratio_speedup']:.2f}x faster (target {TARGET:g}x)",
        flush=True,
    )
    return result


if __name__ == "__main__":
    asyncio.run(main(**parse_sizes(__doc__, SIZES, TINY)))
