"""SSE first-token overhead: time from sending POST /threads/{id}/runs/stream to the first token event,
over the model's own first-token time (the zero-latency offline model, timed in the same run).

Targets: p50 <= 5 ms with 1 stream; p95 <= 50 ms with 200 concurrent streams.
"""

from __future__ import annotations

import asyncio
import json
import time

import httpx
from langchain_core.messages import HumanMessage, SystemMessage

from bench.harness import median, pct
from bench.server_process import BenchServer, chorus_server
from chorus.agents.providers.offline import OfflineChatModel

BODY = {"input": {"messages": [{"role": "user", "content": "hello"}]}, "stream_mode": ["messages-tuple"]}


async def model_first_token() -> float:
    model = OfflineChatModel()
    times = []
    for _ in range(200):
        started = time.perf_counter()
        async for _chunk in model.astream([SystemMessage("Tone: friendly"), HumanMessage("hello")]):
            times.append(time.perf_counter() - started)
            break
    return median(times)


async def first_token(client: httpx.AsyncClient, server: BenchServer, thread_id: str | None = None) -> float:
    thread_id = thread_id or (await client.post("/threads", json={})).json()["thread_id"]
    body = {**BODY, "assistant_id": server.assistant_id}
    started = time.perf_counter()
    elapsed: float | None = None
    async with client.stream("POST", f"/threads/{thread_id}/runs/stream", json=body) as resp:
        event = ""
        async for line in resp.aiter_lines():  # read to the end: the run finishes normally
            if line.startswith("event: "):
                event = line[7:]
            elif elapsed is None and line.startswith("data: ") and event == "messages":
                if json.loads(line[6:])[0].get("content"):
                    elapsed = time.perf_counter() - started
    if elapsed is None:
        raise AssertionError("no token streamed")
    return elapsed


async def main() -> dict[str, float]:
    baseline = await model_first_token()
    async with chorus_server() as server:
        limits = httpx.Limits(max_connections=300, max_keepalive_connections=300)
        async with httpx.AsyncClient(
            base_url=server.url, headers={"x-api-key": server.key}, limits=limits, timeout=120
        ) as client:
            for _ in range(20):  # warm-up: compile the graph, fill pools
                await first_token(client, server)
            single = [await first_token(client, server) - baseline for _ in range(100)]
            thread_id = (await client.post("/threads", json={})).json()["thread_id"]
            follow_up = [await first_token(client, server, thread_id) - baseline for _ in range(100)]
            crowd = await asyncio.gather(*(first_token(client, server) for _ in range(200)))
    crowd_overhead = [t - baseline for t in crowd]
    result = {
        "model_first_token_ms": baseline * 1000,
        "p50_single_ms": median(single) * 1000,
        "p95_single_ms": pct(single, 0.95) * 1000,
        "p50_follow_up_ms": median(follow_up) * 1000,
        "p50_200_ms": median(crowd_overhead) * 1000,
        "p95_200_ms": pct(crowd_overhead, 0.95) * 1000,
    }
    result["ratio_single"] = result["p50_single_ms"] / 5.0
    result["ratio_200"] = result["p95_200_ms"] / 50.0
    print(
        f"SSE first-token overhead (model's own first token {result['model_first_token_ms']:.3f} ms): "
        f"1 stream p50 {result['p50_single_ms']:.2f} ms on a new thread (target 5 ms -> "
        f"{result['ratio_single']:.2f}x), {result['p50_follow_up_ms']:.2f} ms on later turns; "
        f"200 concurrent streams p50 {result['p50_200_ms']:.0f} ms, p95 {result['p95_200_ms']:.0f} ms "
        f"(target 50 ms -> {result['ratio_200']:.2f}x)"
    )
    return result


if __name__ == "__main__":
    asyncio.run(main())
