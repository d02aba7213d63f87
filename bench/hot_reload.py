"""Hot reload: from a deploy answered by one server process to the other process serving it.

Two `chorus serve` processes share one database. Each round makes a new version (a low-risk tone change)
and deploys it to production through process A. Measured from A's 202:
- event: until process B's `GET /api/v1/configs/events` stream delivers the deploy (Postgres NOTIFY);
- served: until a new conversation on B has been answered by the new version (one whole turn included).
Baseline: the same turn on B with nothing deployed, measured in the same run. Target (issue 9): <= 1 s.

    uv run python -m bench.hot_reload [--rounds 20] [--tiny]
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx

from bench.harness import median, parse_sizes, pct
from bench.server_process import chorus_servers

SIZES = {"rounds": 20}
TINY = {"rounds": 2}
TARGET_S = 1.0
HELLO = {"messages": [{"role": "user", "content": "hello"}]}


async def _turn(client: httpx.AsyncClient, assistant_id: str) -> int:
    """A new conversation's first turn; the version that answered it."""
    thread_id = str(uuid.uuid4())
    resp = await client.post(
        f"/threads/{thread_id}/runs/wait",
        json={"assistant_id": assistant_id, "input": HELLO, "if_not_exists": "create"},
    )
    resp.raise_for_status()
    return int((await client.get(f"/threads/{thread_id}")).json()["config_version"])


async def _events(client: httpx.AsyncClient, arrived: dict[int, float]) -> None:
    """Record when each deployed version's event arrives on this stream."""
    async with client.stream("GET", "/api/v1/configs/events") as resp:
        async for line in resp.aiter_lines():
            if line.startswith("data: "):
                event: dict[str, Any] = json.loads(line[6:])
                arrived.setdefault(int(event["version"]), time.perf_counter())


@contextlib.asynccontextmanager
async def _listening(client: httpx.AsyncClient, arrived: dict[int, float]) -> AsyncIterator[None]:
    task = asyncio.create_task(_events(client, arrived))
    await asyncio.sleep(0.5)  # subscribed before the first deploy
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, httpx.HTTPError):
            await task


async def main(*, rounds: int = SIZES["rounds"]) -> dict[str, float]:
    async with chorus_servers(2) as cluster:
        headers = {"x-api-key": cluster.key}
        config = f"/api/v1/configs/{cluster.assistant_id}"
        a = httpx.AsyncClient(base_url=cluster.urls[0], headers=headers, timeout=30)
        b = httpx.AsyncClient(base_url=cluster.urls[1], headers=headers, timeout=30)
        arrived: dict[int, float] = {}
        event_s: list[float] = []
        served_s: list[float] = []
        baseline_s: list[float] = []
        try:
            async with _listening(b, arrived):
                for i in range(rounds):
                    started = time.perf_counter()
                    await _turn(b, cluster.assistant_id)
                    baseline_s.append(time.perf_counter() - started)
                    patched = await a.patch(config, json={"system_prompt": {"tone": f"tone {i}"}})
                    patched.raise_for_status()
                    version = int(patched.json()["version"])
                    deployed = await a.post(f"{config}/deploy", json={"environment": "production", "version": version})
                    deployed.raise_for_status()
                    at = time.perf_counter()
                    while await _turn(b, cluster.assistant_id) != version:
                        if time.perf_counter() - at > 10:
                            raise RuntimeError(f"process B did not serve version {version} within 10 s")
                    served_s.append(time.perf_counter() - at)
                    for _ in range(200):
                        if version in arrived:
                            break
                        await asyncio.sleep(0.01)
                    else:
                        raise RuntimeError(f"process B's event stream did not deliver version {version}")
                    event_s.append(max(0.0, arrived[version] - at))
        finally:
            await a.aclose()
            await b.aclose()
    result = {
        "event_p50_ms": median(event_s) * 1000,
        "event_p95_ms": pct(event_s, 0.95) * 1000,
        "served_p50_ms": median(served_s) * 1000,
        "served_p95_ms": pct(served_s, 0.95) * 1000,
        "baseline_turn_p50_ms": median(baseline_s) * 1000,
    }
    result["ratio_turn"] = result["served_p50_ms"] / result["baseline_turn_p50_ms"]
    result["ratio_target"] = result["served_p95_ms"] / (TARGET_S * 1000)
    print(
        f"hot reload ({rounds} deploys, 2 processes): the other process served the new version p50 "
        f"{result['served_p50_ms']:.0f} ms, p95 {result['served_p95_ms']:.0f} ms after the deploy answered "
        f"({result['ratio_turn']:.2f}x one turn there, {result['baseline_turn_p50_ms']:.0f} ms; "
        f"{result['ratio_target']:.3f}x the 1 s target at p95); its event stream had it after p50 "
        f"{result['event_p50_ms']:.0f} ms, p95 {result['event_p95_ms']:.0f} ms",
        flush=True,
    )
    return result


if __name__ == "__main__":
    asyncio.run(main(**parse_sizes(__doc__, SIZES, TINY)))
