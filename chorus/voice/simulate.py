"""A call without a LiveKit server: a caller's WAV file in, the bot's spoken reply out, through the whole
pipeline (Silero VAD, the offline STT, the config's graph, the offline TTS) with real-time audio I/O."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from livekit.agents import llm
from livekit.agents.voice.events import AgentStateChangedEvent, ConversationItemAddedEvent
from livekit.agents.voice.transcription.synchronizer import TranscriptSynchronizer

from chorus.agents.configs.models import BotConfig
from chorus.graphs.compiler import CompiledBot
from chorus.voice.audio_files import FRAME_MS, PlayedAudioOutput, WavAudioInput
from chorus.voice.graph_llm import CallThread
from chorus.voice.offline_tts import SAMPLE_RATE
from chorus.voice.session_factory import build_session

# Per-turn figures LiveKit reports on the chat items (seconds).
METRICS = ("end_of_turn_delay", "transcription_delay", "llm_node_ttft", "tts_node_ttfb", "e2e_latency")


@dataclass
class Line:
    role: str
    text: str
    metrics: dict[str, float] = field(default_factory=dict)
    interrupted: bool = False


@dataclass
class Simulation:
    lines: list[Line]
    reply_pcm: bytes
    sample_rate: int
    finished: bool  # the bot answered the caller's last turn before the time limit

    def transcript(self) -> str:
        return "\n".join(f"{line.role}: {line.text}" for line in self.lines)


def offline_variant(cfg: BotConfig) -> BotConfig:
    """The config with the offline STT and TTS (a simulation calls no speech provider)."""
    raw = cfg.model_dump(mode="json", by_alias=True, exclude_none=True)
    raw["livekit_config"] = {**(raw.get("livekit_config") or {}), "stt_provider": "offline", "tts_provider": "offline"}
    return BotConfig.model_validate(raw)


async def simulate_call(
    cfg: BotConfig,
    graph: CompiledBot,
    thread: CallThread,
    *,
    caller_pcm: bytes,
    caller_rate: int,
    max_seconds: float = 60.0,
) -> Simulation:
    """Play `caller_pcm` to the bot as the caller (after its first message), and wait until the bot has
    answered every caller turn (or `max_seconds`)."""
    voice = build_session(offline_variant(cfg), graph, thread)
    session = voice.session
    speaker = PlayedAudioOutput(sample_rate=SAMPLE_RATE)
    sync = TranscriptSynchronizer(next_in_chain_audio=speaker, next_in_chain_text=None)
    microphone = WavAudioInput(b"", caller_rate)
    lines: list[Line] = []
    settled = asyncio.Event()
    caller_done_at: list[float] = []

    def on_item(ev: ConversationItemAddedEvent) -> None:
        item = ev.item
        if not isinstance(item, llm.ChatMessage) or item.role not in ("user", "assistant"):
            return
        reported: dict[str, object] = dict(item.metrics or {})
        metrics = {k: float(v) for k, v in reported.items() if k in METRICS and isinstance(v, int | float)}
        role = "caller" if item.role == "user" else "bot"
        lines.append(Line(role, item.text_content or "", metrics, item.interrupted))

    def answered() -> bool:
        users = [i for i, line in enumerate(lines) if line.role == "caller"]
        return bool(users) and any(line.role == "bot" for line in lines[users[-1] + 1 :])

    def on_state(ev: AgentStateChangedEvent) -> None:
        if ev.new_state == "listening" and caller_done_at and answered():
            settled.set()

    closed = asyncio.Event()  # e.g. hung up after silence: nothing more will be said
    session.on("close", lambda _ev: closed.set())
    session.on("conversation_item_added", on_item)
    session.on("agent_state_changed", on_state)
    session.input.audio = microphone
    session.output.audio = sync.audio_output
    session.output.transcription = sync.text_output
    deadline = time.monotonic() + max_seconds
    try:
        await session.start(voice.agent)
        if voice.agent.greeting is not None:
            await voice.agent.greeting
        microphone.say(caller_pcm)
        await asyncio.sleep(len(caller_pcm) / 2 / caller_rate + 4 * FRAME_MS / 1000)
        caller_done_at.append(time.monotonic())
        if answered() and session.agent_state == "listening":
            settled.set()
        waiting = [asyncio.ensure_future(settled.wait()), asyncio.ensure_future(closed.wait())]
        # Until the bot answered, the call ended, or the limit passed: then report what was said so far.
        await asyncio.wait(waiting, timeout=max(0.0, deadline - time.monotonic()), return_when="FIRST_COMPLETED")
        for waiter in waiting:
            waiter.cancel()
        await voice.brain.settled()
    finally:
        await session.aclose()
        await speaker.aclose()
    return Simulation(lines=lines, reply_pcm=bytes(speaker.pcm), sample_rate=SAMPLE_RATE, finished=settled.is_set())


def metrics_table(sim: Simulation) -> list[str]:
    rows = []
    for n, line in enumerate((x for x in sim.lines if x.metrics), start=1):
        figures = ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in line.metrics.items())
        rows.append(f"turn {n} ({line.role}): {figures}")
    return rows
