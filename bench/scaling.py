"""Scaling out: throughput and SSE first token with 1 and then 2 `chorus serve` processes on one database.

Two loads per process count N, conversation (or client) i on process i mod N (what a load balancer in
front of N processes does):

- Paced, for latency: 200 customers arriving over 10 s, each holding a conversation of 3 turns with the
  model paced at 40 ms per token, reading each answer for 2-4 s before the next question. The first
  token's p50/p95 over the model's own first token. Its throughput is the customers' demand (the same
  with 1 or 2 processes while the servers keep up), so it is printed but is not the scaling figure.
- Unpaced, for capacity: the model unpaced (zero latency), 64 clients each sending 6 turns back to back
  (`runs/wait`, alternating a plain answer and a tool call): turns per second is what the processes can
  serve, and its ratio is the scaling figure.

Per phase the CPU the servers, their Postgres backends and this client used is printed (2 cores here:
when they together use ~2 CPU-seconds per second, the machine, not Chorus, is the limit).

Baseline: the same loads on 1 process, same run. Ratios: capacity with 2 processes over capacity with 1
(and the paced throughputs' ratio, for reference). Targets: scaling >= 1.7x; paced first-token p95 <= 100 ms.

    .venv/bin/python -m bench.scaling [--conversations 200] [--turns 3] [--clients 64] [--client-turns 6] [--tiny]
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass

import httpx

from bench.harness import SCRIPT, load_average, median, open_bench_database, parse_sizes, pct
from bench.server_process import (
    BenchCluster,
    BenchServer,
    ServerProcess,
    chorus_servers,
    cpu_seconds,
    create_assistant,
)
from bench.sse_first_token import (
    PACED_MS,
    conversation,
    first_token,
    model_first_token,
    paced_bot,
    stream_client,
)
from chorus.agents.storage.database import Database
from chorus.agents.storage.embedded import release_embedded_servers

SIZES = {"conversations": 200, "turns": 3, "clients": 64, "client_turns": 6}
TINY = {"conversations": 4, "turns": 1, "clients": 2, "client_turns": 2}
SCALING_TARGET = 1.7
P95_TARGET_MS = 100.0
ARRIVALS_PER_S = 20.0  # paced customers arriving per second (200 over 10 s)
THINK_S = (2.0, 4.0)  # a customer reads an answer this long before the next question


@dataclass
class Phase:
    processes: int
    paced_turns_s: float  # turns that streamed their answer without an error, per second
    p50_ms: float
    p95_ms: float
    paced_failed: list[str]
    paced_cpu: CpuMeter
    unpaced_turns_s: float
    unpaced_failed: list[str]
    unpaced_cpu: CpuMeter


async def postgres_cpu(db: Database) -> dict[int, float]:
    """CPU-seconds so far of each Postgres backend serving the benchmark's database (a local Postgres)."""
    async with db.connection() as conn:
        cur = await conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
        return {int(row["pid"]): cpu_seconds(int(row["pid"])) for row in await cur.fetchall()}


class CpuMeter:
    """CPU-seconds per wall-second, over a block, of the server processes, of this process (the client)
    and of the Postgres backends of the benchmark's database."""

    def __init__(self, servers: list[ServerProcess], db: Database) -> None:
        self.servers = servers
        self.db = db

    async def __aenter__(self) -> CpuMeter:
        self._postgres = await postgres_cpu(self.db)
        self._wall = time.perf_counter()
        self._client = time.process_time()
        self._servers = sum(s.cpu_seconds() for s in self.servers)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self._wall
        self.client = (time.process_time() - self._client) / self.wall
        self.server = (sum(s.cpu_seconds() for s in self.servers) - self._servers) / self.wall
        after = await postgres_cpu(self.db)
        self.postgres = sum(cpu - self._postgres.get(pid, 0.0) for pid, cpu in after.items()) / self.wall

    def __str__(self) -> str:
        return f"CPU servers {self.server:.2f}, Postgres {self.postgres:.2f}, client {self.client:.2f}"


async def unpaced_client(client: httpx.AsyncClient, assistant_id: str, turns: int, failures: list[str]) -> None:
    """A new thread, then `turns` turns back to back (`runs/wait`); a failed turn is noted in `failures`."""
    try:
        thread_id = (await client.post("/threads", json={})).json()["thread_id"]
    except (httpx.HTTPError, KeyError) as exc:
        failures.extend([f"{type(exc).__name__}: {exc}"] * turns)
        return
    for i in range(turns):
        body = {"assistant_id": assistant_id, "input": {"messages": [{"role": "user", "content": SCRIPT[i % 2]}]}}
        try:
            resp = await client.post(f"/threads/{thread_id}/runs/wait", json=body)
        except httpx.HTTPError as exc:
            failures.append(f"{type(exc).__name__}: {exc}")
            continue
        outcome = resp.json() if resp.status_code == 200 else {"__error__": f"HTTP {resp.status_code}"}
        if "__error__" in outcome:
            failures.append(str(outcome["__error__"]))


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
            *(unpaced_client(c, cluster.assistant_id, 2, []) for c in http for _ in range(turns)),
        )
    finally:
        for c in http:
            await c.aclose()


async def phase(
    cluster: BenchCluster,
    db: Database,
    paced_id: str,
    n: int,
    *,
    conversations: int,
    turns: int,
    clients: int,
    client_turns: int,
) -> Phase:
    """The paced and the unpaced load on the first `n` processes, conversation i on process i mod n."""
    servers = cluster.servers[:n]
    targets = [BenchServer(s.url, cluster.key, cluster.assistant_id) for s in servers]
    http = [stream_client(t, conversations + clients) for t in targets]
    paced_failed: list[str] = []
    unpaced_failed: list[str] = []
    try:
        model = await model_first_token(PACED_MS / 1000, samples=10)
        async with CpuMeter(servers, db) as paced:
            firsts = await asyncio.gather(
                *(
                    conversation(
                        http[i % n],
                        targets[i % n],
                        paced_id,
                        turns=turns,
                        start_after=i / ARRIVALS_PER_S,
                        failures=paced_failed,
                        think_s=THINK_S,
                    )
                    for i in range(conversations)
                )
            )
        overheads = [t - model for ts in firsts for t in ts] or [float("nan")]
        async with CpuMeter(servers, db) as unpaced:
            await asyncio.gather(
                *(
                    unpaced_client(http[i % n], cluster.assistant_id, client_turns, unpaced_failed)
                    for i in range(clients)
                )
            )
    finally:
        for c in http:
            await c.aclose()
    return Phase(
        processes=n,
        paced_turns_s=(conversations * turns - len(paced_failed)) / paced.wall,
        p50_ms=median(overheads) * 1000,
        p95_ms=pct(overheads, 0.95) * 1000,
        paced_failed=paced_failed,
        paced_cpu=paced,
        unpaced_turns_s=(clients * client_turns - len(unpaced_failed)) / unpaced.wall,
        unpaced_failed=unpaced_failed,
        unpaced_cpu=unpaced,
    )


def failures_text(failures: list[str]) -> str:
    if not failures:
        return "0 failed"
    common = Counter(f[:120] for f in failures).most_common(2)
    return f"{len(failures)} FAILED (" + "; ".join(f"{n}x {text}" for text, n in common) + ")"


async def main(
    *,
    conversations: int = SIZES["conversations"],
    turns: int = SIZES["turns"],
    clients: int = SIZES["clients"],
    client_turns: int = SIZES["client_turns"],
) -> dict[str, float]:
    sizes = {"conversations": conversations, "turns": turns, "clients": clients, "client_turns": client_turns}
    db, _ = await open_bench_database()
    try:
        async with chorus_servers(2) as cluster:
            paced_id = await create_assistant(cluster.urls[0], cluster.key, paced_bot())
            await warm_up(cluster, paced_id, min(10, conversations))
            two = await phase(cluster, db, paced_id, 2, **sizes)
            await cluster.servers[1].stop()  # then the baseline: 1 process, the other one stopped
            one = await phase(cluster, db, paced_id, 1, **sizes)
    finally:
        await db.close()
    result: dict[str, float] = {}
    for p in (one, two):
        result[f"paced_turns_s_{p.processes}"] = p.paced_turns_s
        result[f"p50_first_token_ms_{p.processes}"] = p.p50_ms
        result[f"p95_first_token_ms_{p.processes}"] = p.p95_ms
        result[f"paced_failed_{p.processes}"] = float(len(p.paced_failed))
        result[f"unpaced_turns_s_{p.processes}"] = p.unpaced_turns_s
        result[f"unpaced_failed_{p.processes}"] = float(len(p.unpaced_failed))
    result["ratio_scaling"] = two.unpaced_turns_s / one.unpaced_turns_s
    result["ratio_paced_throughput"] = two.paced_turns_s / one.paced_turns_s
    result["ratio_p95_vs_target"] = two.p95_ms / P95_TARGET_MS
    lines = [
        f"  {p.processes} process(es): paced {p.paced_turns_s:.1f} turns/s, {failures_text(p.paced_failed)}, "
        f"first token over the model's own p50 {p.p50_ms:.0f} ms, p95 {p.p95_ms:.0f} ms "
        f"(target {P95_TARGET_MS:g} ms -> {p.p95_ms / P95_TARGET_MS:.2f}x), {p.paced_cpu}; "
        f"unpaced {p.unpaced_turns_s:.1f} turns/s, {failures_text(p.unpaced_failed)}, {p.unpaced_cpu}"
        for p in (one, two)
    ]
    print(
        f"scaling 1 -> 2 processes: capacity ({clients} unpaced clients x {client_turns} turns) "
        f"{result['ratio_scaling']:.2f}x (target >= {SCALING_TARGET:g}x); paced ({conversations} customers over "
        f"{conversations / ARRIVALS_PER_S:g} s x {turns} turns, think {THINK_S[0]:g}-{THINK_S[1]:g} s, "
        f"model {PACED_MS} ms/token) "
        f"first-token p95 {one.p95_ms:.0f} -> {two.p95_ms:.0f} ms (target {P95_TARGET_MS:g} ms), throughput "
        f"{result['ratio_paced_throughput']:.2f}x (demand-bound); CPU in CPU-seconds per second (2 cores; load "
        f"average {load_average()})\n" + "\n".join(lines),
        flush=True,
    )
    return result


if __name__ == "__main__":
    try:
        asyncio.run(main(**parse_sizes(__doc__, SIZES, TINY)))
    finally:
        release_embedded_servers()
