"""A voicebot config becomes a LiveKit AgentSession: STT, TTS, VAD, turn handling, silence handling, the
first message, and the config's compiled graph as the model (GraphLLM). docs/voice.md has the mapping."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from livekit.agents import Agent, AgentSession, stt, tts, vad
from livekit.agents.voice.events import UserStateChangedEvent
from livekit.agents.voice.speech_handle import SpeechHandle
from livekit.agents.voice.turn import InterruptionOptions, TurnHandlingOptions
from livekit.plugins import deepgram, elevenlabs, silero

from chorus.agents.configs.models import BotConfig
from chorus.agents.errors import BadRequest
from chorus.graphs.compiler import CompiledBot
from chorus.voice.call_control import PhoneFeatures
from chorus.voice.call_facts import CallFacts
from chorus.voice.graph_llm import CallThread, GraphLLM, follow_speeches
from chorus.voice.offline_stt import PocketSphinxSTT
from chorus.voice.offline_tts import EspeakTTS
from chorus.voice.provider_keys import ProviderKeys

# interruption_sensitivity when no stop_speaking_plan says otherwise: speech needed to interrupt the bot.
SENSITIVITY = {"high": (0.2, 0), "medium": (0.5, 1), "low": (1.0, 3)}  # (seconds, words)
SPEAKING_RATE = {"slow": 0.85, "normal": 1.0, "fast": 1.15}
ELEVENLABS_MODELS = {"flash_v2_5": "eleven_flash_v2_5", "turbo_v2_5": "eleven_turbo_v2_5"}
REPROMPT = "Are you still there?"
GOODBYE = "I haven't heard anything, so I'll end the call now. Thank you for calling. Goodbye."


def _voice_specific(cfg: BotConfig) -> Any:
    return cfg.system_prompt.voice_specific


def build_stt(cfg: BotConfig, keys: ProviderKeys) -> stt.STT[Any]:
    lk = cfg.livekit_config
    provider = (lk.stt_provider if lk else None) or "deepgram"
    language = (lk.stt_language if lk else None) or "en-US"
    if provider == "offline":
        return PocketSphinxSTT(language=language)
    if provider == "deepgram":
        if not keys.deepgram:
            raise BadRequest("stt_provider deepgram needs a Deepgram API key in the tenant's vault (DEEPGRAM_API_KEY)")
        return deepgram.STT(model=(lk.stt_model if lk else None) or "nova-3", language=language, api_key=keys.deepgram)
    raise BadRequest(f"livekit_config.stt_provider '{provider}' is not supported: use deepgram or offline")


def tts_speed(cfg: BotConfig) -> float:
    ms = cfg.voice_settings.model_settings if cfg.voice_settings else None
    if ms is not None and ms.speed is not None:
        return float(ms.speed)
    rate = getattr(_voice_specific(cfg), "speaking_rate", None)
    return SPEAKING_RATE.get(rate or "normal", 1.0)


def build_tts(cfg: BotConfig, keys: ProviderKeys) -> tts.TTS[Any]:
    lk = cfg.livekit_config
    provider = (lk.tts_provider if lk else None) or "elevenlabs"
    speed = tts_speed(cfg)
    if provider == "offline":
        return EspeakTTS(speed=speed)
    if provider != "elevenlabs":
        raise BadRequest(f"livekit_config.tts_provider '{provider}' is not supported: use elevenlabs or offline")
    if not keys.elevenlabs:
        raise BadRequest("tts_provider elevenlabs needs an ElevenLabs API key in the tenant's vault (ELEVEN_API_KEY)")
    ms = cfg.voice_settings.model_settings if cfg.voice_settings else None
    model = (ms.model if ms and ms.model else None) or (lk.tts_model if lk else None) or "eleven_flash_v2_5"
    settings = elevenlabs.VoiceSettings(
        stability=0.5,  # not in the config format: ElevenLabs' default
        similarity_boost=ms.clarity_similarity if ms and ms.clarity_similarity is not None else 0.75,
        style=ms.style_exaggeration if ms and ms.style_exaggeration is not None else 0.0,
        speed=min(1.2, max(0.8, speed)),  # ElevenLabs accepts 0.8-1.2
        use_speaker_boost=ms.use_speaker_boost if ms and ms.use_speaker_boost is not None else True,
    )
    extra: dict[str, Any] = {}
    if ms is not None and ms.optimize_streaming_latency is not None:
        extra["streaming_latency"] = ms.optimize_streaming_latency
    return elevenlabs.TTS(
        voice_id=(lk.tts_voice_id if lk else None) or elevenlabs.tts.DEFAULT_VOICE_ID,
        model=ELEVENLABS_MODELS.get(model, model),
        voice_settings=settings,
        api_key=keys.elevenlabs,
        **extra,
    )


def build_vad(cfg: BotConfig) -> vad.VAD | None:
    lk = cfg.livekit_config
    if lk is not None and lk.vad_enabled is False:
        return None
    threshold = lk.vad_threshold if lk and lk.vad_threshold is not None else 0.5
    return silero.VAD.load(activation_threshold=threshold)


def turn_handling(cfg: BotConfig) -> TurnHandlingOptions:
    """stop_speaking_plan and voice_specific.interruption_sensitivity as LiveKit turn handling."""
    sensitivity = getattr(_voice_specific(cfg), "interruption_sensitivity", None) or "medium"
    seconds, words = SENSITIVITY[sensitivity]
    interruption: InterruptionOptions = {"enabled": True, "min_duration": seconds, "min_words": words}
    plan = cfg.voice_settings.stop_speaking_plan if cfg.voice_settings else None
    if plan is not None:
        if plan.voice_seconds is not None:
            interruption["min_duration"] = plan.voice_seconds
        if plan.number_of_words is not None:
            interruption["min_words"] = plan.number_of_words
        if plan.back_off_seconds is not None:
            interruption["false_interruption_timeout"] = plan.back_off_seconds or None
    return {
        "interruption": interruption,
        # A speculative graph run would checkpoint the turn and run its tools before the caller finished.
        "preemptive_generation": {"enabled": False},
    }


def silence_timeout_s(cfg: BotConfig) -> float | None:
    ms = getattr(_voice_specific(cfg), "silence_timeout_ms", None)
    return ms / 1000 if ms else None


class VoicebotAgent(Agent):
    """Says the config's first_message when the call is answered; the graph holds the real prompt."""

    def __init__(self, first_message: str | None) -> None:
        super().__init__(instructions="The compiled graph of the bot config holds the instructions.")
        self.first_message = first_message
        self.greeting: SpeechHandle | None = None

    async def on_enter(self) -> None:
        if self.first_message:
            self.greeting = self.session.say(self.first_message)


class SilenceWatch:
    """silence_timeout_ms: the first silence gets a reprompt, the next one a polite goodbye and the hang-up."""

    def __init__(self, session: AgentSession[Any]) -> None:
        self.session = session
        self.reprompted = False
        self.hung_up = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        session.on("user_state_changed", self._on_user_state)

    def _on_user_state(self, ev: UserStateChangedEvent) -> None:
        if ev.new_state == "speaking":
            self.reprompted = False
        if ev.new_state != "away":
            return
        task = asyncio.ensure_future(self._act())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _act(self) -> None:
        if not self.reprompted:
            self.reprompted = True
            # The caller is "listening" again, so the away countdown restarts once the reprompt is said.
            self.session.reset_away_timer()
            self.session.say(REPROMPT)
            return
        await self.session.say(GOODBYE, allow_interruptions=False)
        self.hung_up.set()
        self.session.shutdown()


@dataclass
class VoiceCall:
    session: AgentSession[Any]
    agent: VoicebotAgent
    brain: GraphLLM
    silence: SilenceWatch | None
    facts: CallFacts
    phone: PhoneFeatures | None = None  # end_call, transfers, escalation, DTMF, background sound


def build_session(
    cfg: BotConfig,
    graph: CompiledBot,
    thread: CallThread,
    *,
    keys: ProviderKeys | None = None,
    facts: CallFacts | None = None,
) -> VoiceCall:
    """The AgentSession of one call on `graph` (the config's compiled graph); start it with
    `call.session.start(call.agent, room=…)` or with custom audio I/O (chorus voice simulate)."""
    if cfg.config_metadata.product_type != "voicebot":
        raise BadRequest("only a voicebot config can serve a call: set config_metadata.product_type to voicebot")
    keys = keys or ProviderKeys()
    max_tokens = cfg.voice_settings.max_tokens if cfg.voice_settings else None
    brain = GraphLLM(graph, thread, max_tokens=max_tokens)
    away = silence_timeout_s(cfg)
    vad_model = build_vad(cfg)
    if vad_model is None and cfg.livekit_config is not None and cfg.livekit_config.stt_provider == "offline":
        raise BadRequest("the offline STT recognises whole utterances the VAD cuts: set livekit_config.vad_enabled")
    session: AgentSession[Any] = AgentSession(
        stt=build_stt(cfg, keys),
        tts=build_tts(cfg, keys),
        vad=vad_model,
        llm=brain,
        turn_handling=turn_handling(cfg),
        user_away_timeout=away,
    )
    follow_speeches(session, brain)
    silence = SilenceWatch(session) if away else None
    facts = facts or CallFacts(call_id=thread.thread_id, tenant_id=thread.tenant_id, environment=thread.environment)
    return VoiceCall(
        session=session,
        agent=VoicebotAgent(cfg.first_message),
        brain=brain,
        silence=silence,
        facts=facts,
        phone=PhoneFeatures.build(session=session, cfg=cfg, brain=brain, facts=facts),
    )
