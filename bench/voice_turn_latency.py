"""What the runtime adds to a voice turn (issue 10), in three figures.

(a) the caller's final transcript -> the graph asked for the turn (GraphLLM calls the graph's `astream`), and
(b) the graph's first spoken token -> the first text pushed to the TTS: a real AgentSession with GraphLLM on the
example voicebot's compiled graph (offline model, no token delay; the Postgres checkpointer, durability "sync")
between zero-latency fakes of the STT, the TTS and the room's audio (tests/fakes.py). The session's endpointing
wait is 0 here: it is a setting (docs/voice.md), not runtime. Turns alternate a plain answer and one with a tool
call. Baseline: the graph's own time to its first spoken token, the same turns sent to `astream` directly on
another thread, interleaved with the session's. p50 target <= 10 ms each.
(c) end-to-end latency per turn from LiveKit's metrics (`e2e_latency`: the caller stopped speaking -> the reply's
audio started) with the offline providers, through `chorus voice simulate`'s pipeline (a spoken WAV, Silero VAD,
PocketSphinx, the graph, espeak-ng, real-time playback), one caller turn per call. Baseline: what the pipeline
cannot avoid, measured in the same run: Silero's end-of-speech silence (min_silence_duration) + PocketSphinx's
own time on the utterance, timed around its call inside the pipeline (or LiveKit's endpointing delay, which
counts from the same end of speech, if longer; the utterance recognised alone is printed beside it) + the
graph's time to first token on the recognised words, called directly + espeak-ng on the answer's first sentence
(what LiveKit's sentence tokenizer hands it first), called directly.

    .venv/bin/python -m bench.voice_turn_latency [--turns 60] [--offline-calls 3] [--tiny]
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from livekit.agents import tokenize

from bench.harness import load_average, median, parse_sizes, pct
from bench.voice_calls import SCRIPT, FakeCall, TurnTimes, VoiceRig, direct_ttft, open_voice_rig
from chorus.voice import offline_stt
from chorus.voice.graph_llm import CallThread
from chorus.voice.offline_stt import recognise_pcm
from chorus.voice.offline_tts import synthesize_pcm
from chorus.voice.simulate import simulate_call

SIZES = {"turns": 60, "offline_calls": 3}
TINY = {"turns": 4, "offline_calls": 0}  # (c) plays real-time audio: 10-70 s, too long for the smoke run
TARGET_MS = 10.0
CALLER_SAYS = "thank you very much"  # (c): short, and PocketSphinx hears it; the bot's answer is short too
VAD_SILENCE_S = 0.55  # Silero's min_silence_duration, which build_vad leaves at its default
ENDPOINTING_S = 0.5  # LiveKit's endpointing min_delay, which turn_handling leaves at its default


async def session_turns(rig: VoiceRig, turns: int) -> tuple[list[TurnTimes], list[float]]:
    """`turns` turns through one call's session, each followed by the same turn sent to the graph directly."""
    call = FakeCall(rig)
    direct_thread = str(uuid.uuid4())
    await call.start()
    try:
        await call.turn(SCRIPT[0])  # warm-up: the first turn of a process imports and compiles lazily
        await direct_ttft(rig, direct_thread, SCRIPT[0])
        through: list[TurnTimes] = []
        direct: list[float] = []
        for i in range(turns):
            through.append(await call.turn(SCRIPT[i % 2]))
            direct.append(await direct_ttft(rig, direct_thread, SCRIPT[i % 2]))
    finally:
        await call.close()
    return through, direct


@dataclass
class OfflineTurn:
    e2e_ms: float
    floor_ms: float  # VAD silence + STT (as it ran in the call) + graph to first token + TTS of the first sentence
    parts: dict[str, float]


@contextmanager
def timed_recognitions() -> Iterator[list[float]]:
    """The durations (ms) of the offline STT's recognitions inside the pipeline (PocketSphinxSTT looks
    `recognise_pcm` up in its module at each call)."""
    durations: list[float] = []
    original = offline_stt.recognise_pcm

    def timed(pcm: bytes, sample_rate: int) -> str:
        started = time.perf_counter()
        try:
            return original(pcm, sample_rate)
        finally:
            durations.append((time.perf_counter() - started) * 1000)

    offline_stt.recognise_pcm = timed
    try:
        yield durations
    finally:
        offline_stt.recognise_pcm = original


async def offline_turn(rig: VoiceRig, caller_pcm: bytes, caller_rate: int) -> OfflineTurn:
    cfg = rig.cfg.model_copy(update={"first_message": None})  # the caller speaks at once
    thread = CallThread(tenant_id=rig.tenant_id, thread_id=str(uuid.uuid4()))
    with timed_recognitions() as in_pipeline:
        sim = await simulate_call(
            cfg, rig.graph, thread, caller_pcm=caller_pcm, caller_rate=caller_rate, max_seconds=30
        )
    reply = next((line for line in sim.lines if line.role == "bot" and "e2e_latency" in line.metrics), None)
    heard = next((line.text for line in sim.lines if line.role == "caller"), "")
    if not sim.finished or reply is None or not heard:
        raise RuntimeError(f"the simulated call did not answer the caller:\n{sim.transcript()}")
    started = time.perf_counter()
    await asyncio.to_thread(recognise_pcm, caller_pcm, caller_rate)
    stt_ms = (time.perf_counter() - started) * 1000
    graph_ms = await direct_ttft(rig, str(uuid.uuid4()), heard)
    sentence = tokenize.blingfire.SentenceTokenizer(retain_format=True).tokenize(reply.text)[0]
    started = time.perf_counter()
    await synthesize_pcm(sentence)
    tts_ms = (time.perf_counter() - started) * 1000
    parts = {"vad_silence_ms": VAD_SILENCE_S * 1000, "stt_ms": stt_ms, "graph_ms": graph_ms, "tts_ms": tts_ms}
    if in_pipeline:
        parts["stt_in_pipeline_ms"] = max(in_pipeline)
    for name in ("transcription_delay", "end_of_turn_delay", "llm_node_ttft", "tts_node_ttfb"):
        for line in sim.lines:
            if name in line.metrics:
                parts[f"livekit_{name}_ms"] = line.metrics[name] * 1000
    # The endpointing wait counts from the end of speech too, so it overlaps the VAD's silence and the STT.
    # PocketSphinx's time as it ran in the call (timed around its own work): alone it runs at another speed
    # than beside the call's VAD and playback, by ±30 % either way on this shared machine.
    stt = parts.get("stt_in_pipeline_ms", stt_ms)
    floor = max(VAD_SILENCE_S * 1000 + stt, ENDPOINTING_S * 1000) + graph_ms + tts_ms
    return OfflineTurn(e2e_ms=reply.metrics["e2e_latency"] * 1000, floor_ms=floor, parts=parts)


async def main(*, turns: int = SIZES["turns"], offline_calls: int = SIZES["offline_calls"]) -> dict[str, float]:
    load = load_average()
    rig = await open_voice_rig()
    try:
        through, direct = await session_turns(rig, turns)
        offline: list[OfflineTurn] = []
        if offline_calls:
            caller_pcm, caller_rate = await synthesize_pcm(CALLER_SAYS)
            # A worker's first recognition loads PocketSphinx's model (about a second); later turns reuse it.
            await asyncio.to_thread(recognise_pcm, caller_pcm, caller_rate)
            for _ in range(offline_calls):
                offline.append(await offline_turn(rig, caller_pcm, caller_rate))
    finally:
        await rig.close()
    a = [t.to_graph_ms for t in through]
    b = [t.to_tts_ms for t in through]
    whole = [t.whole_ms for t in through]
    in_session = [t.graph_ms for t in through]
    base = median(direct)
    result = {
        "graph_direct_ttft_p50_ms": base,
        "graph_in_session_ttft_p50_ms": median(in_session),
        "a_p50_ms": median(a),
        "a_p95_ms": pct(a, 0.95),
        "b_p50_ms": median(b),
        "b_p95_ms": pct(b, 0.95),
        "whole_p50_ms": median(whole),
        "whole_p95_ms": pct(whole, 0.95),
        "ratio_a_to_graph": median(a) / base,
        "ratio_b_to_graph": median(b) / base,
        "ratio_whole_to_graph": median(whole) / base,
        "ratio_a_to_target": median(a) / TARGET_MS,
        "ratio_b_to_target": median(b) / TARGET_MS,
    }
    livekit = {
        name: median([t.livekit[name] * 1000 for t in through if name in t.livekit])
        for name in ("end_of_turn_delay", "llm_node_ttft", "tts_node_ttfb", "e2e_latency")
        if any(name in t.livekit for t in through)
    }
    for name, value in livekit.items():
        result[f"livekit_{name}_p50_ms"] = value
    print(
        f"voice turn, zero-latency STT/TTS ({turns} turns, p50 / p95; load {load}): (a) final transcript -> graph "
        f"asked {result['a_p50_ms']:.2f} / {result['a_p95_ms']:.2f} ms -> {result['ratio_a_to_graph']:.2f}x of the "
        f"graph's own time to first token ({base:.2f} ms called directly; "
        f"{result['graph_in_session_ttft_p50_ms']:.2f} ms in the session), {result['ratio_a_to_target']:.2f}x of "
        f"the {TARGET_MS:g} ms target; (b) first graph token -> first TTS request {result['b_p50_ms']:.2f} / "
        f"{result['b_p95_ms']:.2f} ms -> {result['ratio_b_to_graph']:.2f}x of the graph, "
        f"{result['ratio_b_to_target']:.2f}x of the target; final transcript -> first TTS request "
        f"{result['whole_p50_ms']:.2f} / {result['whole_p95_ms']:.2f} ms -> {result['ratio_whole_to_graph']:.2f}x "
        f"of the graph; LiveKit's metrics (p50): "
        + ", ".join(f"{name} {value:.2f} ms" for name, value in livekit.items()),
        flush=True,
    )
    if offline:
        e2e = [o.e2e_ms for o in offline]
        floor = [o.floor_ms for o in offline]
        result["offline_e2e_p50_ms"] = median(e2e)
        result["offline_floor_p50_ms"] = median(floor)
        result["ratio_offline_e2e_to_floor"] = median(e2e) / median(floor)
        parts = {name: median([o.parts[name] for o in offline if name in o.parts]) for name in offline[0].parts}
        result.update({f"offline_{name}": value for name, value in parts.items()})
        print(
            f"voice turn end to end, offline providers ({len(offline)} simulated calls, '{CALLER_SAYS}', p50): "
            f"LiveKit's e2e_latency {result['offline_e2e_p50_ms']:.0f} ms -> "
            f"{result['ratio_offline_e2e_to_floor']:.2f}x of what the pipeline cannot avoid, "
            f"{result['offline_floor_p50_ms']:.0f} ms ("
            + ", ".join(f"{name} {value:.0f}" for name, value in parts.items())
            + ")",
            flush=True,
        )
    return result


if __name__ == "__main__":
    asyncio.run(main(**parse_sizes(__doc__, SIZES, TINY)))
