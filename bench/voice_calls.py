"""Simulated calls for the voice benchmarks: a real AgentSession with GraphLLM on the example voicebot's
compiled graph (offline model, no token delay; the Postgres checkpointer) between the zero-latency fakes of the
speech providers and the room's audio (tests/fakes.py), and the stamps a turn is measured with."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from langchain_core.messages import HumanMessage
from livekit.agents import Agent, AgentSession, llm
from livekit.agents.voice.events import AgentStateChangedEvent, ConversationItemAddedEvent
from livekit.agents.voice.turn import TurnHandlingOptions

from bench.harness import ROOT, new_tenant, open_bench_database
from chorus.agents.configs.models import BotConfig
from chorus.agents.storage.database import Database
from chorus.agents.tools.builtins import build_registry
from chorus.graphs.checkpointer import ChorusCheckpointer
from chorus.graphs.compiler import CompiledBot, GraphDeps, compile_bot
from chorus.voice.audio_files import WavAudioInput
from chorus.voice.graph_llm import DURABILITY, CallThread, GraphLLM, _spoken_text, follow_speeches
from chorus.voice.session_factory import build_vad, turn_handling
from tests.fakes import INSTANT_SAMPLE_RATE, InstantAudioOutput, InstantSTT, InstantTTS

# A plain answer, then one with a tool call (agent -> tools -> agent), as bench.harness.SCRIPT for chat.
SCRIPT = ["thanks for the help", "Is there appointment availability on 2030-01-07?"]


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
                # GraphLLM streams ("messages", (chunk, metadata)) and ("updates", …) pairs.
                mode, payload = item if isinstance(item, tuple) and len(item) == 2 else (None, None)
                chunk = payload[0] if mode == "messages" and isinstance(payload, tuple) else None
                if first and chunk is not None and _spoken_text(chunk):
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
        stream_mode=["messages", "updates"],  # as GraphLLM asks for it
        durability=DURABILITY,
    ):
        mode, payload = item
        if first is None and mode == "messages" and _spoken_text(payload[0]):
            first = time.perf_counter()
    if first is None:
        raise RuntimeError(f"the graph said nothing to {text!r}")
    return (first - started) * 1000
