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
cannot avoid, measured in the same run: Silero's end-of-speech silence (min_silence_duration) + PocketSphinx on
the same utterance (or LiveKit's endpointing delay, which counts from the same end of speech, if longer) + the
graph's time to first token on the recognised words + espeak-ng on the answer's first sentence (what LiveKit's
sentence tokenizer hands it first).

    .venv/bin/python -m bench.voice_turn_latency [--turns 60] [--offline-calls 3] [--tiny]
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from langchain_core.messages import HumanMessage
from livekit.agents import Agent, AgentSession, llm, tokenize
from livekit.agents.voice.events import AgentStateChangedEvent, ConversationItemAddedEvent
from livekit.agents.voice.turn import TurnHandlingOptions

from bench.harness import ROOT, load_average, median, new_tenant, open_bench_database, parse_sizes, pct
from chorus.agents.configs.models import BotConfig
from chorus.agents.storage.database import Database
from chorus.agents.tools.builtins import build_registry
from chorus.graphs.checkpointer import ChorusCheckpointer
from chorus.graphs.compiler import CompiledBot, GraphDeps, compile_bot
from chorus.voice import offline_stt
from chorus.voice.audio_files import WavAudioInput
from chorus.voice.graph_llm import DURABILITY, CallThread, GraphLLM, _spoken_text, follow_speeches
from chorus.voice.offline_stt import recognise_pcm
from chorus.voice.offline_tts import synthesize_pcm
from chorus.voice.session_factory import build_vad, turn_handling
from chorus.voice.simulate import simulate_call
from tests.fakes import INSTANT_SAMPLE_RATE, InstantAudioOutput, InstantSTT, InstantTTS

SIZES = {"turns": 60, "offline_calls": 3}
TINY = {"turns": 4, "offline_calls": 0}  # (c) plays real-time audio: 10-70 s, too long for the smoke run
TARGET_MS = 10.0
# A plain answer, then one with a tool call (agent -> tools -> agent), as bench.harness.SCRIPT for chat.
SCRIPT = ["thanks for the help", "Is there appointment availability on 2030-01-07?"]
CALLER_SAYS = "thank you very much"  # (c): short, and PocketSphinx hears it; the bot's answer is short too
VAD_SILENCE_S = 0.55  # Silero's min_silence_duration, which build_vad leaves at its default
ENDPOINTING_S = 0.5  # LiveKit's endpointing min_delay, which turn_handling leaves at its default

log = logging.getLogger(__name__)


def voicebot() -> BotConfig:
    raw = json.loads((ROOT / "configs" / "examples" / "healthcare_scheduler.json").read_text())
    return BotConfig.model_validate(raw)


class GraphClock:
    """Stamps, per thread, when the graph was asked for a turn (`astream` called) and when it streamed the first
    text GraphLLM speaks (`_spoken_text`, GraphLLM's own rule). Wraps the compiled graph's `astream` in place."""

    def __init__(self, graph: CompiledBot) -> None:
        self.asked: dict[str, list[float]] = defaultdict(list)
        self.first_token: dict[str, list[float]] = defaultdict(list)
        original = graph.astream

        def astream(graph_input: Any, config: Any = None, **kwargs: Any) -> AsyncIterator[Any]:
            thread = str((config or {}).get("configurable", {}).get("thread_id"))
            self.asked[thread].append(time.perf_counter())
            return self._watch(thread, original(graph_input, config, **kwargs))

        setattr(graph, "astream", astream)  # noqa: B010 - an instance attribute over the method

    async def _watch(self, thread: str, stream: AsyncIterator[Any]) -> AsyncIterator[Any]:
        first = True
        try:
            async for item in stream:
                if first and isinstance(item, tuple) and _spoken_text(item[0]):
                    self.first_token[thread].append(time.perf_counter())
                    first = False
                yield item
        finally:
            closing = getattr(stream, "aclose", None)
            if closing is not None:
                await closing()


@dataclass
class VoiceRig:
    db: Database
    tenant_id: str
    cfg: BotConfig
    graph: CompiledBot
    clock: GraphClock

    async def close(self) -> None:
        await self.db.close()


async def open_voice_rig() -> VoiceRig:
    db, _url = await open_bench_database()
    tenant_id = await new_tenant(db)
    saver = ChorusCheckpointer(db.pool)
    await saver.setup()
    cfg = voicebot()
    graph = compile_bot(cfg, GraphDeps(db=db, registry=build_registry(), checkpointer=saver, offline=True))
    return VoiceRig(db, tenant_id, cfg, graph, GraphClock(graph))


@dataclass
class TurnTimes:
    """One turn through the session (perf_counter seconds) and LiveKit's own metrics of it."""

    heard: float  # the fake STT sent the final transcript
    asked: float  # GraphLLM asked the graph
    first_token: float  # the graph streamed its first spoken text
    tts_asked: float  # the first text reached the TTS
    livekit: dict[str, float] = field(default_factory=dict)

    @property
    def to_graph_ms(self) -> float:  # (a)
        return (self.asked - self.heard) * 1000

    @property
    def graph_ms(self) -> float:
        return (self.first_token - self.asked) * 1000

    @property
    def to_tts_ms(self) -> float:  # (b)
        return (self.tts_asked - self.first_token) * 1000

    @property
    def whole_ms(self) -> float:  # final transcript -> first TTS request, the graph included
        return (self.tts_asked - self.heard) * 1000


class FakeCall:
    """One call in a worker process: a real AgentSession and GraphLLM on the rig's graph, between the
    zero-latency STT, TTS and room audio. The caller's silence streams in at real time (20 ms frames), as a
    room's audio track would. With `vad`, the config's Silero VAD listens to it, as on a real call (it runs in
    the worker, on every frame); without, none does (LiveKit would otherwise load its own default VAD)."""

    def __init__(self, rig: VoiceRig, *, vad: bool = False) -> None:
        self.rig = rig
        self.thread = CallThread(tenant_id=rig.tenant_id, thread_id=str(uuid.uuid4()))
        self.brain = GraphLLM(rig.graph, self.thread)
        self.stt = InstantSTT()
        self.tts = InstantTTS()
        handling: TurnHandlingOptions = {
            **turn_handling(rig.cfg),
            "turn_detection": "stt",  # the STT's end of speech ends the turn, as Deepgram's would
            "endpointing": {"min_delay": 0.0},
        }
        self.session: AgentSession[Any] = AgentSession(
            stt=self.stt, tts=self.tts, llm=self.brain, vad=build_vad(rig.cfg) if vad else None, turn_handling=handling
        )
        follow_speeches(self.session, self.brain)
        self._items: asyncio.Queue[llm.ChatMessage] = asyncio.Queue()
        self._listening = asyncio.Event()
        self.session.on("conversation_item_added", self._on_item)
        self.session.on("agent_state_changed", self._on_state)
        self.session.input.audio = WavAudioInput(b"", INSTANT_SAMPLE_RATE)
        self.session.output.audio = InstantAudioOutput()

    def _on_item(self, ev: ConversationItemAddedEvent) -> None:
        if isinstance(ev.item, llm.ChatMessage) and ev.item.role in ("user", "assistant"):
            self._items.put_nowait(ev.item)

    def _on_state(self, ev: AgentStateChangedEvent) -> None:
        if ev.new_state == "listening":
            self._listening.set()
        else:
            self._listening.clear()

    async def start(self) -> None:
        await self.session.start(Agent(instructions="The compiled graph of the bot config holds the instructions."))

    async def turn(self, text: str, *, timeout: float = 30.0) -> TurnTimes:
        """The caller says `text`; returns once the answer is played and the session listens again."""
        await asyncio.wait_for(self._listening.wait(), timeout)
        asked_before = len(self.rig.clock.asked[self.thread.thread_id])
        tts_before = len(self.tts.asked)
        heard = self.stt.hear(text)
        figures: dict[str, float] = {}
        while True:
            item = await asyncio.wait_for(self._items.get(), timeout)
            figures.update({k: float(v) for k, v in dict(item.metrics or {}).items() if isinstance(v, int | float)})
            if item.role == "assistant":
                break
        await self.brain.settled()
        asked = self.rig.clock.asked[self.thread.thread_id]
        tokens = self.rig.clock.first_token[self.thread.thread_id]
        if len(asked) <= asked_before or len(tokens) < len(asked) or len(self.tts.asked) <= tts_before:
            raise RuntimeError(f"the turn {text!r} did not reach the graph and the TTS once each")
        return TurnTimes(heard, asked[-1], tokens[-1], self.tts.asked[tts_before], figures)

    async def close(self) -> None:
        await self.session.aclose()


async def direct_ttft(rig: VoiceRig, thread_id: str, text: str) -> float:
    """The graph's own time to its first spoken token (ms), called as GraphLLM calls it, without a session."""
    thread = CallThread(tenant_id=rig.tenant_id, thread_id=thread_id)
    started = time.perf_counter()
    first: float | None = None
    async for item in rig.graph.astream(
        {"messages": [HumanMessage(text, id=str(uuid.uuid4()))]},
        thread.runnable_config(),
        stream_mode="messages",
        durability=DURABILITY,
    ):
        if first is None and isinstance(item, tuple) and _spoken_text(item[0]):
            first = time.perf_counter()
    if first is None:
        raise RuntimeError(f"the graph said nothing to {text!r}")
    return (first - started) * 1000


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
    floor_ms: float  # VAD silence + STT + graph to first token + TTS of the first sentence, measured directly
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
    floor = max(VAD_SILENCE_S * 1000 + stt_ms, ENDPOINTING_S * 1000) + graph_ms + tts_ms
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
            f"{result['offline_floor_p50_ms']:.0f} ms measured directly ("
            + ", ".join(f"{name} {value:.0f}" for name, value in parts.items())
            + ")",
            flush=True,
        )
    return result


if __name__ == "__main__":
    asyncio.run(main(**parse_sizes(__doc__, SIZES, TINY)))
