"""How many simultaneous calls one worker process carries before the latency the runtime adds to a turn passes
50 ms at p95 (issue 10).

Each call is bench.voice_calls' FakeCall: a real AgentSession with GraphLLM on the example voicebot's
compiled graph (offline model, no token delay; the Postgres checkpointer), between zero-latency fakes of the STT,
the TTS and the room's audio (tests/fakes.py), with the caller's silence streaming in at real time. A call is
`--turns` turns, a plain answer and a tool call in turn, each after a think time of `--think-ms` (0.5x-1.5x,
seeded); calls start spread over one think time. The runtime's added latency of a turn is bench.voice_turn_latency's
(a) + (b): the caller's final transcript -> the graph asked, plus the graph's first spoken token -> the first text
pushed to the TTS (LiveKit's session and GraphLLM around the graph). Printed beside it: the whole final transcript
-> first TTS request, the graph and its Postgres checkpoints included. The number of calls doubles from 1 up to
`--max-calls`, and stops after the first level whose p95 of (a) + (b) passes 50 ms. Baseline: the same p95 at
1 call, in the same run. `--vad 1` (the default) runs the config's Silero VAD on each call's audio, as a worker
does on a real call; `--vad 0` leaves it out.

    .venv/bin/python -m bench.voice_concurrency [--max-calls 64] [--turns 4] [--think-ms 2000] [--vad 1] [--tiny]
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass

from bench.harness import load_average, median, parse_sizes, pct
from bench.voice_calls import SCRIPT, FakeCall, TurnTimes, VoiceRig, open_voice_rig

# A caller's turn comes every think time plus the answer's latency (playback is instant here): 2 s stands for a
# short question and a short answer on a real call; 500 ms is a stress pace.
SIZES = {"max_calls": 64, "turns": 4, "think_ms": 2000, "vad": 1}
TINY = {"max_calls": 2, "turns": 2, "think_ms": 50, "vad": 1}
LIMIT_MS = 50.0


@dataclass
class Level:
    calls: int
    added_p50: float  # (a) + (b)
    added_p95: float
    whole_p50: float  # final transcript -> first TTS request
    whole_p95: float
    cpu: float  # the process's CPU-seconds per second during the level (all its threads: 1.0 is one core)

    @classmethod
    def of(cls, calls: int, times: list[TurnTimes], cpu: float) -> Level:
        added = [t.to_graph_ms + t.to_tts_ms for t in times]
        whole = [t.whole_ms for t in times]
        return cls(calls, median(added), pct(added, 0.95), median(whole), pct(whole, 0.95), cpu)


async def _one_call(call: FakeCall, *, turns: int, think_s: float, rng: random.Random) -> list[TurnTimes]:
    times = []
    await asyncio.sleep(rng.uniform(0, think_s))  # calls do not all start on the same beat
    for i in range(turns):
        times.append(await call.turn(SCRIPT[i % 2], timeout=60))
        await asyncio.sleep(think_s * rng.uniform(0.5, 1.5))
    return times


async def level(rig: VoiceRig, *, calls: int, turns: int, think_s: float, seed: int, vad: bool) -> list[TurnTimes]:
    """`calls` simultaneous calls of `turns` turns each; every turn's times."""
    rng = random.Random(seed)
    started = [FakeCall(rig, vad=vad) for _ in range(calls)]
    try:
        await asyncio.gather(*(call.start() for call in started))
        per_call = await asyncio.gather(
            *(_one_call(call, turns=turns, think_s=think_s, rng=random.Random(rng.random())) for call in started)
        )
    finally:
        await asyncio.gather(*(call.close() for call in started), return_exceptions=True)
    return [t for times in per_call for t in times]


async def main(
    *,
    max_calls: int = SIZES["max_calls"],
    turns: int = SIZES["turns"],
    think_ms: int = SIZES["think_ms"],
    vad: int = SIZES["vad"],
) -> dict[str, float]:
    load_before = load_average()
    think_s = think_ms / 1000
    rig = await open_voice_rig()
    rows: list[Level] = []
    try:
        await level(rig, calls=1, turns=2, think_s=0.0, seed=0, vad=bool(vad))  # warm-up
        calls = 1
        while calls <= max_calls:
            wall, cpu = time.perf_counter(), time.process_time()
            times = await level(rig, calls=calls, turns=turns, think_s=think_s, seed=calls, vad=bool(vad))
            row = Level.of(calls, times, (time.process_time() - cpu) / (time.perf_counter() - wall))
            rows.append(row)
            if row.added_p95 > LIMIT_MS and calls > 1:
                break
            calls *= 2
    finally:
        await rig.close()
    base = rows[0]
    carried = max((r.calls for r in rows if r.added_p95 <= LIMIT_MS), default=0)
    carried_with_graph = max((r.calls for r in rows if r.whole_p95 <= LIMIT_MS), default=0)
    result: dict[str, float] = {
        "calls_within_limit": float(carried),
        "calls_within_limit_graph_included": float(carried_with_graph),
        "one_call_added_p95_ms": base.added_p95,
    }
    for r in rows:
        result[f"calls_{r.calls}_added_p50_ms"] = r.added_p50
        result[f"calls_{r.calls}_added_p95_ms"] = r.added_p95
        result[f"calls_{r.calls}_whole_p50_ms"] = r.whole_p50
        result[f"calls_{r.calls}_whole_p95_ms"] = r.whole_p95
        result[f"calls_{r.calls}_process_cpu"] = r.cpu
        result[f"ratio_added_p95_{r.calls}_calls_to_1"] = r.added_p95 / base.added_p95
        result[f"ratio_whole_p95_{r.calls}_calls_to_1"] = r.whole_p95 / base.whole_p95
    levels = "; ".join(
        f"{r.calls}: {r.added_p50:.1f} / {r.added_p95:.1f} ms ({r.added_p95 / base.added_p95:.2f}x), graph included "
        f"{r.whole_p50:.1f} / {r.whole_p95:.1f} ms ({r.whole_p95 / base.whole_p95:.2f}x), process CPU {r.cpu:.2f}"
        for r in rows
    )
    listening = "the config's Silero VAD on each call" if vad else "no VAD"
    stopped = "" if rows[-1].added_p95 > LIMIT_MS else f" (not passed at {rows[-1].calls} calls)"
    print(
        f"voice calls per worker process ({turns} turns/call, think {think_ms} ms, zero-latency STT/TTS, "
        f"{listening}; load "
        f"{load_before} -> {load_average()}). Calls: runtime-added latency (a)+(b) p50 / p95: {levels}. "
        f"Carried with p95 <= {LIMIT_MS:g} ms: {carried} calls{stopped}; "
        f"{carried_with_graph} with the graph's own time included",
        flush=True,
    )
    return result


if __name__ == "__main__":
    asyncio.run(main(**parse_sizes(__doc__, SIZES, TINY)))
