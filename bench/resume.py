"""Resume cost: a client whose stream dropped rejoins with `Last-Event-ID`; the time from sending the
rejoin to receiving the first event it missed. Two `chorus serve` processes on one database: the rejoin
goes to the process running the run (its own log) and to the other one (the running process replays
what was missed through Postgres first). Each run streams a slow answer (the model at 30 ms per token),
the client reads a few events, drops, waits a moment and rejoins while the run goes on.

Baseline: `GET /threads/{id}` on the same server, same run (an authenticated read: the floor any request
pays). Target: p50 <= 10 ms.

    .venv/bin/python -m bench.resume [--rejoins 30] [--tiny]
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from bench.harness import ACME, median, parse_sizes, pct
from bench.server_process import chorus_servers, create_assistant

SIZES = {"rejoins": 30}
TINY = {"rejoins": 2}
TARGET_MS = 10.0
BODY = {"input": {"messages": [{"role": "user", "content": "hello"}]}, "stream_mode": ["messages-tuple"]}


def _slow_bot() -> dict[str, Any]:
    return {**ACME, "llm_config": {"provider": "offline", "model": "slow", "offline_token_delay_ms": 30}}


async def _drop_after(client: httpx.AsyncClient, thread_id: str, assistant_id: str, events: int) -> tuple[str, str]:
    """Start a resumable stream, read `events` events, drop it: the run's path and the last event id."""
    body = {**BODY, "assistant_id": assistant_id, "stream_resumable": True}
    last = ""
    async with client.stream("POST", f"/threads/{thread_id}/runs/stream", json=body) as resp:
        path = resp.headers["content-location"]
        seen = 0
        async for line in resp.aiter_lines():
            if line.startswith("id: "):
                last, seen = line[4:], seen + 1
                if seen == events:
                    break
    return path, last


async def _first_missed(client: httpx.AsyncClient, path: str, last: str) -> float:
    started = time.perf_counter()
    async with client.stream("GET", f"{path}/stream", headers={"Last-Event-ID": last}) as resp:
        async for line in resp.aiter_lines():
            if line.startswith("id: "):
                return time.perf_counter() - started
    raise AssertionError("the rejoin received no missed event")


async def main(*, rejoins: int = SIZES["rejoins"]) -> dict[str, float]:
    async with chorus_servers(2) as cluster:
        assistant_id = await create_assistant(cluster.urls[0], cluster.key, _slow_bot())
        clients = [
            httpx.AsyncClient(base_url=url, headers={"x-api-key": cluster.key}, timeout=60) for url in cluster.urls
        ]
        try:
            same: list[float] = []
            other: list[float] = []
            floor: list[float] = []
            for i in range(rejoins + 2):  # the first two warm up both processes
                thread_id = (await clients[0].post("/threads", json={})).json()["thread_id"]
                path, last = await _drop_after(clients[0], thread_id, assistant_id, 3)
                await asyncio.sleep(0.1)  # events go on while the client is away
                target = clients[i % 2]
                took = await _first_missed(target, path, last)
                started = time.perf_counter()
                await target.get(f"/threads/{thread_id}")
                read = time.perf_counter() - started
                await clients[0].get(f"{path}/join")
                if i >= 2:
                    (same if i % 2 == 0 else other).append(took)
                    floor.append(read)
        finally:
            for c in clients:
                await c.aclose()
    result = {
        "p50_same_process_ms": median(same) * 1000,
        "p50_other_process_ms": median(other) * 1000,
        "p95_other_process_ms": pct(other, 0.95) * 1000,
        "get_thread_ms": median(floor) * 1000,
    }
    result["ratio_same"] = result["p50_same_process_ms"] / result["get_thread_ms"]
    result["ratio_other"] = result["p50_other_process_ms"] / result["get_thread_ms"]
    print(
        f"resume with Last-Event-ID, time to the first missed event ({rejoins} rejoins): same process p50 "
        f"{result['p50_same_process_ms']:.1f} ms ({result['ratio_same']:.2f}x GET /threads/{{id}} "
        f"{result['get_thread_ms']:.1f} ms; target {TARGET_MS:g} ms -> "
        f"{result['p50_same_process_ms'] / TARGET_MS:.2f}x); other process p50 "
        f"{result['p50_other_process_ms']:.1f} ms, "
        f"p95 {result['p95_other_process_ms']:.1f} ms ({result['ratio_other']:.2f}x; target -> "
        f"{result['p50_other_process_ms'] / TARGET_MS:.2f}x)",
        flush=True,
    )
    return result


if __name__ == "__main__":
    asyncio.run(main(**parse_sizes(__doc__, SIZES, TINY)))
