"""SSE first-token overhead: time from sending POST /threads/{id}/runs/stream to the first token event,
over the model's own first-token time (the zero-latency offline model, timed in the same run).

Targets: p50 <= 5 ms with 1 stream; p95 <= 50 ms with 200 concurrent streams.

Three scenarios: one stream at a time (zero-latency model); a burst of 200 streams started at the same
instant (zero-latency model: pure server work, the worst case); and 200 concurrent conversations of 3
turns each, started over 2 s, with a model that takes 40 ms per token (a paced model keeps about 200
streams open at once). `--streams` sets the 200 (and half of it for the one-at-a-time runs), `--paced-turns` the 3.

The same-run baseline is the server's cheapest authenticated write, `POST /threads` (auth, validation, one
row): a stream's first token is printed as a multiple of it, next to the fixed targets.

    .venv/bin/python -m bench.sse_first_token [--streams 200] [--paced-turns 3] [--tiny]
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from typing import Any

import httpx
from langchain_core.messages import HumanMessage, SystemMessage

from bench.harness import ACME, median, parse_sizes, pct
from bench.server_process import BenchServer, chorus_server
from chorus.agents.providers.offline import OfflineChatModel

BODY = {"input": {"messages": [{"role": "user", "content": "hello"}]}, "stream_mode": ["messages-tuple"]}


PACED_MS = 40
SPACING_S = 0.01  # paced conversation i starts i x 10 ms in: 200 of them over 2 s
SIZES = {"streams": 200, "paced_turns": 3}
TINY = {"streams": 4, "paced_turns": 1}


async def model_first_token(delay_s: float = 0.0, samples: int = 200) -> float:
    model = OfflineChatModel(token_delay_s=delay_s)
    times = []
    for _ in range(samples):
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
    error = ""
    async with client.stream("POST", f"/threads/{thread_id}/runs/stream", json=body) as resp:
        if resp.status_code != 200:
            await resp.aread()
            raise AssertionError(f"no token streamed: HTTP {resp.status_code} {resp.text[:200]}")
        event = ""
        async for line in resp.aiter_lines():  # read to the end: the run finishes normally
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: ") and event == "error":
                error = line[6:]
            elif (
                elapsed is None
                and line.startswith("data: ")
                and event == "messages"
                and json.loads(line[6:])[0].get("content")
            ):
                elapsed = time.perf_counter() - started
    if error:  # the run failed, before or after its first token
        raise AssertionError(f"the run failed: {error}")
    if elapsed is None:
        raise AssertionError("no token streamed")
    return elapsed


def stream_client(server: BenchServer, streams: int) -> httpx.AsyncClient:
    """A client for `streams` concurrent streams to `server`."""
    # The client drops an idle connection before uvicorn does (5 s): with equal timeouts, a request sent
    # on a connection the server is closing fails with httpx.ReadError.
    limits = httpx.Limits(max_connections=streams + 100, max_keepalive_connections=streams + 100, keepalive_expiry=2.0)
    return httpx.AsyncClient(base_url=server.url, headers={"x-api-key": server.key}, limits=limits, timeout=120)


def paced_bot() -> dict[str, Any]:
    """The example bot on the offline model at PACED_MS per token."""
    return {
        **ACME,
        "config_metadata": {**ACME["config_metadata"], "name": "paced"},
        "llm_config": {"provider": "offline", "model": "paced", "offline_token_delay_ms": PACED_MS},
    }


async def conversation(
    client: httpx.AsyncClient,
    server: BenchServer,
    assistant_id: str,
    *,
    turns: int,
    start_after: float,
    failures: list[str] | None = None,
    think_s: tuple[float, float] = (0.0, 0.0),
) -> list[float]:
    """One customer: waits `start_after` seconds, opens a thread, sends `turns` turns one after the other,
    reading each answer for a random time within `think_s` before the next; the seconds to each turn's
    first token. With `failures`, a turn that fails (no token, an error event, a broken connection) is
    noted there and the conversation goes on; without, it raises."""
    await asyncio.sleep(start_after)
    thread_id = (await client.post("/threads", json={})).json()["thread_id"]
    times = []
    for turn in range(turns):
        if turn and think_s[1] > 0:
            await asyncio.sleep(random.uniform(*think_s))
        try:
            times.append(await first_token(client, server, thread_id, assistant_id))
        except (AssertionError, httpx.HTTPError) as exc:
            if failures is None:
                raise
            failures.append(f"{type(exc).__name__}: {exc}")
    return times


async def create_thread(client: httpx.AsyncClient) -> float:
    started = time.perf_counter()
    (await client.post("/threads", json={})).raise_for_status()
    return time.perf_counter() - started


async def main(*, streams: int = SIZES["streams"], paced_turns: int = SIZES["paced_turns"]) -> dict[str, float]:
    one_at_a_time = max(1, streams // 2)
    baseline = await model_first_token()
    paced_baseline = await model_first_token(PACED_MS / 1000, samples=max(10, streams // 10))
    async with chorus_server() as server, stream_client(server, streams) as client:
        for _ in range(min(20, streams)):  # warm-up: compile the graph, fill pools
            await first_token(client, server)
        request = [await create_thread(client) for _ in range(one_at_a_time)]
        single = [await first_token(client, server) - baseline for _ in range(one_at_a_time)]
        thread_id = (await client.post("/threads", json={})).json()["thread_id"]
        follow_up = [await first_token(client, server, thread_id) - baseline for _ in range(one_at_a_time)]
        crowd = await asyncio.gather(*(first_token(client, server) for _ in range(streams)))
        paced = (await client.post("/assistants", json={"graph_id": "chatbot", "context": paced_bot()})).json()
        conversations = [
            conversation(client, server, paced["assistant_id"], turns=paced_turns, start_after=i * SPACING_S)
            for i in range(streams)
        ]
        steady = [t - paced_baseline for ts in await asyncio.gather(*conversations) for t in ts]
    crowd_overhead = [t - baseline for t in crowd]
    result = {
        "model_first_token_ms": baseline * 1000,
        "post_thread_ms": median(request) * 1000,
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
    result["ratio_request"] = result["p50_single_ms"] / result["post_thread_ms"]
    print(
        f"SSE first-token overhead (model's own first token {result['model_first_token_ms']:.3f} ms; "
        f"POST /threads p50 {result['post_thread_ms']:.2f} ms): 1 stream p50 {result['p50_single_ms']:.2f} ms "
        f"on a new thread -> {result['ratio_request']:.2f}x of POST /threads (target 5 ms -> "
        f"{result['ratio_single']:.2f}x), {result['p50_follow_up_ms']:.2f} ms on later turns; "
        f"burst of {streams} streams p50 {result['p50_200_ms']:.0f} ms, p95 {result['p95_200_ms']:.0f} ms "
        f"(target 50 ms -> {result['ratio_200']:.2f}x); {streams} concurrent conversations, paced model "
        f"({PACED_MS} ms/token): p50 {result['p50_paced_ms']:.1f} ms, p95 {result['p95_paced_ms']:.1f} ms "
        f"-> {result['p95_paced_ms'] / 50:.2f}x"
    )
    return result


if __name__ == "__main__":
    asyncio.run(main(**parse_sizes(__doc__, SIZES, TINY)))
