"""Scaling out: throughput and SSE first token with 1 and then 2 `chorus serve` processes on one database.

Load (as the paced scenario of bench.sse_first_token, whose helpers it uses): 200 concurrent conversations
of 3 turns each, started over 2 s, the model paced at 40 ms per token; conversation i talks to process
i mod N (what a load balancer in front of N processes does). Per N: turns per second (all turns over the
time from the first start to the last end) and the first token's p50/p95 over the model's own first
token. Then the same with the model unpaced (zero latency): 64 clients each sending 6 turns back to back
(`runs/wait`, alternating a plain answer and a tool call), turns per second — the processes' capacity.
Per phase the CPU the servers and this client used is printed (2 cores here: when the servers and the
client together use ~2 CPU-seconds per second, the machine, not Chorus, is the limit).

Baseline: the same load on 1 process, same run. Ratio: throughput with 2 processes over throughput with
1 (paced and unpaced). Targets: scaling >= 1.7x; paced first-token p95 <= 100 ms.

    uv run python -m bench.scaling [--conversations 200] [--turns 3] [--clients 64] [--client-turns 6] [--tiny]
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import httpx

from bench.harness import SCRIPT, median, parse_sizes, pct
from bench.server_process import BenchCluster, BenchServer, ServerProcess, chorus_servers, create_assistant
from bench.sse_first_token import (
    PACED_MS,
    SPACING_S,
    conversation,
    first_token,
    model_first_token,
    paced_bot,
    stream_client,
)
from chorus.agents.storage.embedded import release_embedded_servers

SIZES = {"conversations": 200, "turns": 3, "clients": 64, "client_turns": 6}
TINY = {"conversations": 4, "turns": 1, "clients": 2, "client_turns": 2}
SCALING_TARGET = 1.7
P95_TARGET_MS = 100.0


@dataclass
class Phase:
    processes: int
    paced_turns_s: float
    p50_ms: float
    p95_ms: float
    paced_server_cpu: float  # CPU-seconds per second, all server processes
    paced_client_cpu: float
    unpaced_turns_s: float
    unpaced_server_cpu: float
    unpaced_client_cpu: float


class CpuMeter:
    """CPU-seconds per wall-second of the server processes and of this process, over a block."""

    def __init__(self, servers: list[ServerProcess]) -> None:
        self.servers = servers

    def __enter__(self) -> CpuMeter:
        self._wall = time.perf_counter()
        self._client = time.process_time()
        self._servers = sum(s.cpu_seconds() for s in self.servers)
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self._wall
        self.client = (time.process_time() - self._client) / self.wall
        self.server = (sum(s.cpu_seconds() for s in self.servers) - self._servers) / self.wall


async def unpaced_client(client: httpx.AsyncClient, assistant_id: str, turns: int) -> None:
    thread_id = (await client.post("/threads", json={})).json()["thread_id"]
    for i in range(turns):
        body = {"assistant_id": assistant_id, "input": {"messages": [{"role": "user", "content": SCRIPT[i % 2]}]}}
        (await client.post(f"/threads/{thread_id}/runs/wait", json=body)).raise_for_status()


async def warm_up(cluster: BenchCluster, paced_id: str, turns: int) -> None:
    """Every process compiles both graphs and fills its pools (all at once: a paced turn takes seconds)."""
    targets = [BenchServer(s.url, cluster.key, cluster.assistant_id) for s in cluster.servers]
    http = [stream_client(t, 2 * turns) for t in targets]
    try:
        await asyncio.gather(
            *(
                first_token(c, t, assistant_id=paced_id)
                for c, t in zip(http, targets, strict=True)
                for _ in range(turns)
            ),
            *(unpaced_client(c, cluster.assistant_id, 2) for c in http for _ in range(turns)),
        )
    finally:
        for c in http:
            await c.aclose()


async def phase(
    cluster: BenchCluster, paced_id: str, n: int, *, conversations: int, turns: int, clients: int, client_turns: int
) -> Phase:
    servers = cluster.servers[:n]
    targets = [BenchServer(s.url, cluster.key, cluster.assistant_id) for s in servers]
    http = [stream_client(t, conversations + clients) for t in targets]
    try:
        model = await model_first_token(PACED_MS / 1000, samples=10)
        with CpuMeter(servers) as paced:
            firsts = await asyncio.gather(
                *(
                    conversation(http[i % n], targets[i % n], paced_id, turns=turns, start_after=i * SPACING_S)
                    for i in range(conversations)
                )
            )
        overheads = [t - model for ts in firsts for t in ts]
        with CpuMeter(servers) as unpaced:
            await asyncio.gather(
                *(unpaced_client(http[i % n], cluster.assistant_id, client_turns) for i in range(clients))
            )
    finally:
        for c in http:
            await c.aclose()
    return Phase(
        processes=n,
        paced_turns_s=conversations * turns / paced.wall,
        p50_ms=median(overheads) * 1000,
        p95_ms=pct(overheads, 0.95) * 1000,
        paced_server_cpu=paced.server,
        paced_client_cpu=paced.client,
        unpaced_turns_s=clients * client_turns / unpaced.wall,
        unpaced_server_cpu=unpaced.server,
        unpaced_client_cpu=unpaced.client,
    )


async def main(
    *,
    conversations: int = SIZES["conversations"],
    turns: int = SIZES["turns"],
    clients: int = SIZES["clients"],
    client_turns: int = SIZES["client_turns"],
) -> dict[str, float]:
    sizes = {"conversations": conversations, "turns": turns, "clients": clients, "client_turns": client_turns}
    async with chorus_servers(2) as cluster:
        paced_id = await create_assistant(cluster.urls[0], cluster.key, paced_bot())
        await warm_up(cluster, paced_id, min(10, conversations))
        two = await phase(cluster, paced_id, 2, **sizes)
        await cluster.servers[1].stop()  # then the baseline: 1 process, the other one stopped
        one = await phase(cluster, paced_id, 1, **sizes)
    result: dict[str, float] = {}
    for p in (one, two):
        result[f"paced_turns_s_{p.processes}"] = p.paced_turns_s
        result[f"p50_first_token_ms_{p.processes}"] = p.p50_ms
        result[f"p95_first_token_ms_{p.processes}"] = p.p95_ms
        result[f"unpaced_turns_s_{p.processes}"] = p.unpaced_turns_s
    result["ratio_scaling"] = two.paced_turns_s / one.paced_turns_s
    result["ratio_scaling_unpaced"] = two.unpaced_turns_s / one.unpaced_turns_s
    result["ratio_p95_vs_target"] = two.p95_ms / P95_TARGET_MS
    lines = [
        f"  {p.processes} process(es): paced {p.paced_turns_s:.0f} turns/s, first token over the model's own "
        f"p50 {p.p50_ms:.0f} ms, p95 {p.p95_ms:.0f} ms "
        f"(target {P95_TARGET_MS:g} ms -> {p.p95_ms / P95_TARGET_MS:.2f}x), "
        f"CPU servers {p.paced_server_cpu:.2f} + client {p.paced_client_cpu:.2f}; unpaced {p.unpaced_turns_s:.0f} "
        f"turns/s, CPU servers {p.unpaced_server_cpu:.2f} + client {p.unpaced_client_cpu:.2f}"
        for p in (one, two)
    ]
    print(
        f"scaling 1 -> 2 processes ({conversations} paced conversations x {turns} turns, model {PACED_MS} ms/token; "
        f"unpaced: {clients} clients x {client_turns} turns): paced throughput {result['ratio_scaling']:.2f}x, "
        f"unpaced {result['ratio_scaling_unpaced']:.2f}x (target >= {SCALING_TARGET:g}x)\n" + "\n".join(lines),
        flush=True,
    )
    return result


if __name__ == "__main__":
    try:
        asyncio.run(main(**parse_sizes(__doc__, SIZES, TINY)))
    finally:
        release_embedded_servers()
