"""Memory under steady load: does a server process's RSS grow with the turns it serves?

One `chorus serve` process; 200 customers talk to it without pause, each opening a thread, sending 3
turns (streamed, the model paced at 40 ms per token, as in bench.sse_first_token) and starting over on
a new thread, so threads come and go as they do in production. The warm-up lasts at least 60 s and
until 2100 threads have been opened: the process keeps bounded caches per thread (the checkpointer's
2048 hot threads, up to 2000 finished runs for 2 minutes), and growth while they fill is not a leak.
Then the process's RSS (/proc/<pid>/status VmRSS) is sampled every second for 300 s next to the count
of turns completed; a least-squares line of RSS over turns gives MB per 1000 turns (target: flat, <= 1
MB), also over the last half of the window alone. After the load stops, RSS is read again once the
process has been idle for 10 s.

Baseline, same run: the RSS right after the warm-up. Ratio: RSS at the end of the measured load over it
(1.00x = flat; the slope says how much of any growth the turns explain).

    .venv/bin/python -m bench.memory [--seconds 300] [--warmup 60] [--warmup-threads 2100] [--conversations 200]
        [--turns 3] [--idle 10] [--tiny]
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field

import httpx

from bench.harness import load_average, parse_sizes
from bench.server_process import BenchServer, chorus_servers, create_assistant
from bench.sse_first_token import PACED_MS, SPACING_S, first_token, paced_bot, stream_client
from chorus.agents.storage.embedded import release_embedded_servers

SIZES = {"seconds": 300, "warmup": 60, "warmup_threads": 2100, "conversations": 200, "turns": 3, "idle": 10}
TINY = {"seconds": 4, "warmup": 2, "warmup_threads": 0, "conversations": 8, "turns": 2, "idle": 1}
TARGET_MB_PER_1000 = 1.0
MB = 1024 * 1024


@dataclass
class Load:
    turns: int = 0
    threads: int = 0
    failed: Counter[str] = field(default_factory=Counter)
    stop: asyncio.Event = field(default_factory=asyncio.Event)


async def customer(client: httpx.AsyncClient, server: BenchServer, assistant_id: str, turns: int, load: Load) -> None:
    """New thread, `turns` turns, again, until the load stops (the turn in flight is finished)."""
    while not load.stop.is_set():
        try:
            thread_id = (await client.post("/threads", json={})).json()["thread_id"]
            load.threads += 1
            for _ in range(turns):
                if load.stop.is_set():
                    return
                await first_token(client, server, thread_id, assistant_id)
                load.turns += 1
        except (httpx.HTTPError, AssertionError, KeyError) as exc:
            load.failed[f"{type(exc).__name__}: {exc}"[:120]] += 1
            await asyncio.sleep(0.1)


def slope_per_1000(samples: list[tuple[int, int]]) -> float:
    """MB per 1000 turns: the least-squares slope of RSS over turns completed."""
    turns = [float(t) for t, _ in samples]
    rss = [r / MB for _, r in samples]
    if len(set(turns)) < 2:
        return 0.0
    return statistics.linear_regression(turns, rss).slope * 1000


async def main(
    *,
    seconds: int = SIZES["seconds"],
    warmup: int = SIZES["warmup"],
    warmup_threads: int = SIZES["warmup_threads"],
    conversations: int = SIZES["conversations"],
    turns: int = SIZES["turns"],
    idle: int = SIZES["idle"],
) -> dict[str, float]:
    every = 1.0 if seconds >= 60 else 0.25
    load = Load()
    samples: list[tuple[int, int]] = []
    async with chorus_servers(1) as cluster:
        process = cluster.servers[0]
        paced_id = await create_assistant(process.url, cluster.key, paced_bot())
        server = BenchServer(process.url, cluster.key, paced_id)
        async with stream_client(server, conversations) as client:

            async def start(i: int) -> None:
                await asyncio.sleep(i * SPACING_S)
                await customer(client, server, paced_id, turns, load)

            customers = [asyncio.create_task(start(i)) for i in range(conversations)]
            rss_start = process.rss_bytes()
            warm_from = time.perf_counter()
            while time.perf_counter() - warm_from < warmup or load.threads < warmup_threads:
                await asyncio.sleep(every)
            warm_s = time.perf_counter() - warm_from
            warm_turns, warm_threads, rss_warm = load.turns, load.threads, process.rss_bytes()
            measured_from = time.perf_counter()
            while time.perf_counter() - measured_from < seconds:
                samples.append((load.turns, process.rss_bytes()))
                await asyncio.sleep(every)
            samples.append((load.turns, process.rss_bytes()))
            elapsed = time.perf_counter() - measured_from
            load.stop.set()
            await asyncio.gather(*customers)
        await asyncio.sleep(idle)
        rss_idle = process.rss_bytes()
    rss_end = samples[-1][1]
    measured_turns = samples[-1][0] - warm_turns
    slope = slope_per_1000(samples)
    slope_late = slope_per_1000(samples[len(samples) // 2 :])
    result = {
        "rss_start_mb": rss_start / MB,
        "rss_after_warmup_mb": rss_warm / MB,
        "rss_end_mb": rss_end / MB,
        "rss_peak_mb": max(r for _, r in samples) / MB,
        "rss_idle_mb": rss_idle / MB,
        "warmup_turns": float(warm_turns),
        "measured_turns": float(measured_turns),
        "turns_per_s": measured_turns / elapsed,
        "failed": float(load.failed.total()),
        "mb_per_1000_turns": slope,
        "mb_per_1000_turns_last_half": slope_late,
        "warmup_s": warm_s,
        "threads": float(load.threads),
        "slope_vs_target": slope / TARGET_MB_PER_1000,
        "ratio_rss_growth": rss_end / rss_warm,
    }
    print(
        f"memory ({conversations} customers x {turns}-turn threads, model {PACED_MS} ms/token; warm-up "
        f"{warm_s:.0f} s and {warm_threads} threads; {seconds} s measured, {load.threads} threads in all): RSS "
        f"{result['rss_after_warmup_mb']:.0f} MB after {warm_turns} warm-up turns (baseline; "
        f"{result['rss_start_mb']:.0f} MB before the load) -> {result['rss_end_mb']:.0f} MB after {measured_turns} "
        f"more turns ({result['turns_per_s']:.0f} turns/s) = {result['ratio_rss_growth']:.3f}x; slope {slope:+.3f} MB "
        f"per 1000 turns (target <= {TARGET_MB_PER_1000:g} MB -> {slope / TARGET_MB_PER_1000:+.2f}x), last half "
        f"{slope_late:+.3f}; peak {result['rss_peak_mb']:.0f} MB; idle {idle} s after the load "
        f"{result['rss_idle_mb']:.0f} MB; "
        f"failed turns {load.failed.total()} {dict(load.failed.most_common(2)) if load.failed else ''}; "
        f"load average {load_average()}",
        flush=True,
    )
    return result


if __name__ == "__main__":
    try:
        asyncio.run(main(**parse_sizes(__doc__, SIZES, TINY)))
    finally:
        release_embedded_servers()
