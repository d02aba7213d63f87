"""How many simultaneous calls one worker process carries before the latency it adds to a turn passes 50 ms
at p95 (issue 10).

Each call is bench.voice_turn_latency's FakeCall: a real AgentSession with GraphLLM on the example voicebot's
compiled graph (offline model, no token delay; the Postgres checkpointer), between zero-latency fakes of the STT,
the TTS and the room's audio (tests/fakes.py), with the caller's silence streaming in at real time. A call is
`--turns` turns, a plain answer and a tool call in turn, each after a think time of `--think-ms` (0.5x-1.5x,
seeded); calls start spread over one think time. Added latency of a turn: the caller's final transcript -> the
first text pushed to the TTS, i.e. everything between two providers that answer in no time (LiveKit's session,
GraphLLM, the graph and its checkpoints). The number of calls doubles from 1 up to `--max-calls`, and stops after
the first level whose p95 passes 50 ms. Baseline: the same p95 at 1 call, in the same run.

    .venv/bin/python -m bench.voice_concurrency [--max-calls 64] [--turns 5] [--think-ms 500] [--tiny]
"""

from __future__ import annotations

import asyncio
import random

from bench.harness import load_average, median, parse_sizes, pct
from bench.voice_turn_latency import SCRIPT, FakeCall, TurnTimes, VoiceRig, open_voice_rig

SIZES = {"max_calls": 64, "turns": 5, "think_ms": 500}
TINY = {"max_calls": 2, "turns": 2, "think_ms": 50}
LIMIT_MS = 50.0


async def _one_call(call: FakeCall, *, turns: int, think_s: float, rng: random.Random) -> list[TurnTimes]:
    times = []
    await asyncio.sleep(rng.uniform(0, think_s))  # calls do not all start on the same beat
    for i in range(turns):
        times.append(await call.turn(SCRIPT[i % 2], timeout=60))
        await asyncio.sleep(think_s * rng.uniform(0.5, 1.5))
    return times


async def level(rig: VoiceRig, *, calls: int, turns: int, think_s: float, seed: int) -> list[TurnTimes]:
    """`calls` simultaneous calls of `turns` turns each; every turn's times."""
    rng = random.Random(seed)
    started = [FakeCall(rig) for _ in range(calls)]
    try:
        await asyncio.gather(*(call.start() for call in started))
        per_call = await asyncio.gather(
            *(_one_call(call, turns=turns, think_s=think_s, rng=random.Random(rng.random())) for call in started)
        )
    finally:
        await asyncio.gather(*(call.close() for call in started), return_exceptions=True)
    return [t for times in per_call for t in times]


async def main(
    *, max_calls: int = SIZES["max_calls"], turns: int = SIZES["turns"], think_ms: int = SIZES["think_ms"]
) -> dict[str, float]:
    load_before = load_average()
    think_s = think_ms / 1000
    rig = await open_voice_rig()
    rows: list[tuple[int, float, float, float]] = []  # calls, p50, p95, p95 of the part outside the graph
    try:
        await level(rig, calls=1, turns=2, think_s=0.0, seed=0)  # warm-up
        calls = 1
        while calls <= max_calls:
            times = await level(rig, calls=calls, turns=turns, think_s=think_s, seed=calls)
            added = [t.added_ms for t in times]
            outside = [t.to_graph_ms + t.to_tts_ms for t in times]
            rows.append((calls, median(added), pct(added, 0.95), pct(outside, 0.95)))
            if pct(added, 0.95) > LIMIT_MS and calls > 1:
                break
            calls *= 2
    finally:
        await rig.close()
    base_p95 = rows[0][2]
    within = [n for n, _p50, p95, _o in rows if p95 <= LIMIT_MS]
    carried = max(within) if within else 0
    result: dict[str, float] = {"calls_within_limit": float(carried), "one_call_p95_ms": base_p95}
    for n, p50, p95, outside in rows:
        result[f"calls_{n}_p50_ms"] = p50
        result[f"calls_{n}_p95_ms"] = p95
        result[f"calls_{n}_outside_graph_p95_ms"] = outside
        result[f"ratio_p95_{n}_calls_to_1"] = p95 / base_p95
    levels = "; ".join(
        f"{n} calls p50 {p50:.1f} ms, p95 {p95:.1f} ms ({p95 / base_p95:.2f}x; outside the graph {outside:.1f} ms)"
        for n, p50, p95, outside in rows
    )
    stopped = "" if rows[-1][2] > LIMIT_MS else f", not reached at {rows[-1][0]} calls"
    print(
        f"voice calls per worker process ({turns} turns/call, think {think_ms} ms; final transcript -> first TTS "
        f"request with zero-latency STT/TTS; load {load_before} -> {load_average()}): {levels}. "
        f"Carried with p95 <= {LIMIT_MS:g} ms: {carried} calls{stopped}",
        flush=True,
    )
    return result


if __name__ == "__main__":
    asyncio.run(main(**parse_sizes(__doc__, SIZES, TINY)))
