"""A voicebot config becomes an AgentSession: providers built through their real plugin classes (fake keys,
no network), turn handling from the voice settings, the first message spoken and kept in the thread."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage
from livekit.plugins import deepgram, elevenlabs, silero

from chorus.agents.configs.models import BotConfig
from chorus.agents.errors import BadRequest
from chorus.graphs.compiler import CompiledBot
from chorus.voice.graph_llm import CallThread
from chorus.voice.offline_stt import PocketSphinxSTT
from chorus.voice.offline_tts import EspeakTTS
from chorus.voice.provider_keys import ProviderKeys
from chorus.voice.session_factory import (
    build_session,
    build_stt,
    build_tts,
    build_vad,
    turn_handling,
)
from tests.conftest import example
from tests.fakes import FAKE_SPEECH_KEYS
from tests.voice.conftest import voicebot


def offline(**overrides: Any) -> BotConfig:
    raw = example("healthcare_scheduler")
    raw["livekit_config"] = {**raw["livekit_config"], "stt_provider": "offline", "tts_provider": "offline"}
    raw.update(overrides)
    return BotConfig.model_validate(raw)


def test_deepgram_is_built_from_livekit_config() -> None:
    stt = build_stt(voicebot(), FAKE_SPEECH_KEYS)
    assert isinstance(stt, deepgram.STT)
    assert stt._opts.model == "nova-3"
    assert stt._opts.language == "en-US"


def test_elevenlabs_is_built_from_voice_settings() -> None:
    tts = build_tts(voicebot(), FAKE_SPEECH_KEYS)
    assert isinstance(tts, elevenlabs.TTS)
    opts = tts._opts
    assert opts.voice_id == "ErXwobaYiN019PkySvjV"
    assert opts.model == "eleven_flash_v2_5"
    assert opts.streaming_latency == 3
    settings = opts.voice_settings
    assert isinstance(settings, elevenlabs.VoiceSettings)
    assert (settings.similarity_boost, settings.style, settings.speed, settings.use_speaker_boost) == (
        0.75,
        0,
        1.0,
        True,
    )


def test_a_missing_provider_key_says_which_one() -> None:
    with pytest.raises(BadRequest, match="Deepgram API key"):
        build_stt(voicebot(), ProviderKeys())
    with pytest.raises(BadRequest, match="ElevenLabs API key"):
        build_tts(voicebot(), ProviderKeys(deepgram="x"))


def test_an_unknown_provider_is_refused_with_the_choices() -> None:
    raw = example("healthcare_scheduler")
    raw["livekit_config"]["tts_provider"] = "polly"
    with pytest.raises(BadRequest, match="elevenlabs or offline"):
        build_tts(BotConfig.model_validate(raw), FAKE_SPEECH_KEYS)


def test_offline_providers_and_silero_threshold() -> None:
    cfg = offline()
    assert isinstance(build_stt(cfg, ProviderKeys()), PocketSphinxSTT)
    assert isinstance(build_tts(cfg, ProviderKeys()), EspeakTTS)
    vad = build_vad(cfg)
    assert isinstance(vad, silero.VAD)
    assert vad._opts.activation_threshold == 0.5


def test_stop_speaking_plan_becomes_interruption_options() -> None:
    options = turn_handling(voicebot())
    assert options["interruption"]["min_words"] == 3
    assert options["interruption"]["min_duration"] == 0.2
    assert options["interruption"]["false_interruption_timeout"] == 1
    assert options["preemptive_generation"] == {"enabled": False}


def test_interruption_sensitivity_applies_without_a_plan() -> None:
    raw = example("healthcare_scheduler")
    del raw["voice_settings"]["stop_speaking_plan"]
    raw["system_prompt"]["voice_specific"]["interruption_sensitivity"] = "low"
    options = turn_handling(BotConfig.model_validate(raw))
    assert (options["interruption"]["min_duration"], options["interruption"]["min_words"]) == (1.0, 3)


def test_a_chatbot_config_cannot_serve_a_call(scheduler_graph: CompiledBot, call: CallThread) -> None:
    with pytest.raises(BadRequest, match="voicebot"):
        build_session(BotConfig.model_validate(example("acme_support_bot")), scheduler_graph, call)


async def test_the_first_message_is_spoken_and_kept_in_the_thread(
    scheduler_graph: CompiledBot, call: CallThread
) -> None:
    cfg = offline()
    voice = build_session(cfg, scheduler_graph, call)
    async with voice.session as session:
        await session.start(voice.agent)
        assert voice.agent.greeting is not None
        await voice.agent.greeting  # the caller hears the greeting before speaking
        await voice.brain.settled()
        result = await session.run(user_input="hello")
        result.expect.next_event().is_message(role="assistant")
        await voice.brain.settled()
    messages = (await scheduler_graph.aget_state(call.runnable_config())).values["messages"]
    assert isinstance(messages[0], AIMessage) and messages[0].content == cfg.first_message
    assert isinstance(messages[1], HumanMessage) and messages[1].content == "hello"


def test_the_offline_stt_needs_the_vad(scheduler_graph: CompiledBot, call: CallThread) -> None:
    raw = example("healthcare_scheduler")
    raw["livekit_config"].update(stt_provider="offline", tts_provider="offline", vad_enabled=False)
    with pytest.raises(BadRequest, match="vad_enabled"):
        build_session(BotConfig.model_validate(raw), scheduler_graph, call)
