"""What the per-tenant rate limit costs: requests/s of the cheapest authenticated route (GET /api/v1/tools:
the key comes from the auth cache, no other database work) on a server with the limiter (one Postgres
upsert per request) over a server without it (CHORUS_RATE_LIMIT_PER_MINUTE=0), both `chorus serve`
processes on the same database, measured in turns in the same run. The ratio is the worst case: any route
that does real work pays the same fixed cost on a larger base.

    .venv/bin/python -m bench.rate_limit [--requests 4000] [--concurrency 16] [--tiny]
"""

from __future__ import annotations

import asyncio
import time

import httpx

from bench.harness import load_average, new_tenant, open_bench_database, parse_sizes
from bench.server_process import ServerProcess, free_port, server_env
from chorus.agents.tenancy.keys import create_api_key

SIZES = {"requests": 4000, "concurrency": 16}
TINY = {"requests": 40, "concurrency": 4}
ROUNDS = 3


async def _throughput(url: str, key: str, *, requests: int, concurrency: int) -> float:
    """Requests per second of `concurrency` clients sending `requests` in all."""
    left = requests
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, headers={"x-api-key": key}, limits=limits, timeout=30) as client:

        async def worker() -> None:
            nonlocal left
            while left > 0:
                left -= 1
                resp = await client.get("/api/v1/tools")
                resp.raise_for_status()

        await client.get("/api/v1/tools")  # the key into the auth cache, a connection open
        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return requests / (time.perf_counter() - started)


async def main(*, requests: int = SIZES["requests"], concurrency: int = SIZES["concurrency"]) -> dict[str, float]:
    db, url = await open_bench_database()
    servers = {
        "without": ServerProcess(free_port(), server_env(url, {"CHORUS_RATE_LIMIT_PER_MINUTE": "0"})),
        "with": ServerProcess(free_port(), server_env(url, {"CHORUS_RATE_LIMIT_PER_MINUTE": "100000000"})),
    }
    try:
        key = await create_api_key(db, tenant_id=await new_tenant(db), role="viewer")
        for server in servers.values():
            server.spawn()
        await asyncio.gather(*(s.wait_ready() for s in servers.values()))
        best = {"without": 0.0, "with": 0.0}
        for _ in range(ROUNDS):  # in turns: a machine getting busier weighs on both alike
            for name, server in servers.items():
                rps = await _throughput(server.url, key, requests=requests, concurrency=concurrency)
                best[name] = max(best[name], rps)
    finally:
        await asyncio.gather(*(s.stop() for s in servers.values()), return_exceptions=True)
        for server in servers.values():
            server.kill()
        await db.close()
    result = {
        "rps_without": best["without"],
        "rps_with": best["with"],
        "ratio_with_limiter": best["with"] / best["without"],
        # The server is saturated in both runs: 1/throughput is the machine time one request takes.
        "added_ms_per_request": (1 / best["with"] - 1 / best["without"]) * 1000,
    }
    print(
        f"rate limit ({requests} x GET /api/v1/tools, {concurrency} clients, best of {ROUNDS}, load {load_average()}): "
        f"without {result['rps_without']:.0f} req/s, with the Postgres limiter {result['rps_with']:.0f} req/s "
        f"-> {result['ratio_with_limiter']:.2f}x "
        f"(about {result['added_ms_per_request']:.2f} ms more machine time per request)",
        flush=True,
    )
    return result


if __name__ == "__main__":
    asyncio.run(main(**parse_sizes(__doc__, SIZES, TINY)))
