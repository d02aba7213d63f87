"""SSE first-token overhead: time from sending POST /threads/{id}/runs/stream to the first token event,
over the model's own first-token time (the zero-latency offline model, timed in the same run).

Targets: p50 <= 5 ms with 1 stream; p95 <= 50 ms with 200 concurrent streams.

Three scenarios: one stream at a time (zero-latency model); a burst of 200 streams started at the same
instant (zero-latency model: pure server work, the worst case); and 200 concurrent conversations of 3
turns each, started over 2 s, with a model that takes 40 ms per token (a paced model keeps about 200
streams open at once).
"""

from __future__ import annotations

import asyncio
import json
import time

import httpx
from langchain_core.messages import HumanMessage, SystemMessage

from bench.harness import ACME, median, pct
from bench.server_process import BenchServer, chorus_server
from chorus.agents.providers.offline import OfflineChatModel

BODY = {"input": {"messages": [{"role": "user", "content": "hello"}]}, "stream_mode": ["messages-tuple"]}


PACED_MS = 40


async def model_first_token(delay_s: float = 0.0) -> float:
    model = OfflineChatModel(token_delay_s=delay_s)
    times = []
    for _ in range(200):
        started = time.perf_counter()
        async for _chunk in model.astream([SystemMessage("Tone: friendly"), HumanMessage("hello")]):
            times.append(time.perf_counter() - started)
            break
    return median(times)


async def first_token(
    client: httpx.AsyncClient, server: BenchServer, thread_id: str | None = None, assistant_id: str | None = None
) -> float:
    try:
        return await _first_token(client, server, thread_id, assistant_id)
    except (httpx.ReadError, httpx.RemoteProtocolError):
        # A pooled keep-alive connection the server closed as it was reused: a client-side race, retry.
        return await _first_token(client, server, thread_id, assistant_id)


async def _first_token(
    client: httpx.AsyncClient, server: BenchServer, thread_id: str | None, assistant_id: str | None
) -> float:
    thread_id = thread_id or (await client.post("/threads", json={})).json()["thread_id"]
    body = {**BODY, "assistant_id": assistant_id or server.assistant_id}
    started = time.perf_counter()
    elapsed: float | None = None
    async with client.stream("POST", f"/threads/{thread_id}/runs/stream", json=body) as resp:
        event = ""
        async for line in resp.aiter_lines():  # read to the end: the run finishes normally
            if line.startswith("event: "):
                event = line[7:]
            elif (
                elapsed is None
                and line.startswith("data: ")
                and event == "messages"
                and json.loads(line[6:])[0].get("content")
            ):
                elapsed = time.perf_counter() - started
    if elapsed is None:
        raise AssertionError("no token streamed")
    return elapsed


async def main() -> dict[str, float]:
    baseline = await model_first_token()
    paced_baseline = await model_first_token(PACED_MS / 1000)
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
            paced_cfg = {
                **ACME,
                "llm_config": {"provider": "offline", "model": "paced", "offline_token_delay_ms": PACED_MS},
            }
            paced_cfg["config_metadata"] = {**ACME["config_metadata"], "name": "paced"}
            paced = (await client.post("/assistants", json={"graph_id": "chatbot", "context": paced_cfg})).json()

            async def conversation(start_after: float) -> list[float]:
                await asyncio.sleep(start_after)
                thread_id = (await client.post("/threads", json={})).json()["thread_id"]
                return [
                    await first_token(client, server, thread_id, paced["assistant_id"]) - paced_baseline
                    for _ in range(3)
                ]

            steady = [t for ts in await asyncio.gather(*(conversation(i * 0.01) for i in range(200))) for t in ts]
    crowd_overhead = [t - baseline for t in crowd]
    result = {
        "model_first_token_ms": baseline * 1000,
        "p50_single_ms": median(single) * 1000,
        "p95_single_ms": pct(single, 0.95) * 1000,
        "p50_follow_up_ms": median(follow_up) * 1000,
        "p50_200_ms": median(crowd_overhead) * 1000,
        "p95_200_ms": pct(crowd_overhead, 0.95) * 1000,
    }
    result["p50_paced_ms"] = median(steady) * 1000
    result["p95_paced_ms"] = pct(steady, 0.95) * 1000
    result["ratio_single"] = result["p50_single_ms"] / 5.0
    result["ratio_200"] = result["p95_200_ms"] / 50.0
    print(
        f"SSE first-token overhead (model's own first token {result['model_first_token_ms']:.3f} ms): "
        f"1 stream p50 {result['p50_single_ms']:.2f} ms on a new thread (target 5 ms -> "
        f"{result['ratio_single']:.2f}x), {result['p50_follow_up_ms']:.2f} ms on later turns; "
        f"burst of 200 streams p50 {result['p50_200_ms']:.0f} ms, p95 {result['p95_200_ms']:.0f} ms "
        f"(target 50 ms -> {result['ratio_200']:.2f}x); 200 concurrent conversations, paced model "
        f"({PACED_MS} ms/token): p50 {result['p50_paced_ms']:.1f} ms, p95 {result['p95_paced_ms']:.1f} ms "
        f"-> {result['p95_paced_ms'] / 50:.2f}x"
    )
    return result


if __name__ == "__main__":
    asyncio.run(main())
