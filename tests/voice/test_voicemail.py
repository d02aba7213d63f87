"""Voicemail detection on an outbound call, on audio: espeak-ng speaks a recorded voicemail greeting or a person's
"hello?" into the offline pipeline (Silero VAD, PocketSphinx) under LiveKit's answering-machine detection. The
greeting gets the configured message (heard in the bot's audio) and the call ends as voicemail; the person hears
the first message and the call goes on."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import pytest
from langchain_core.messages import HumanMessage
from livekit.agents import llm
from livekit.agents.voice.amd import AMDCategory
from livekit.agents.voice.events import ConversationItemAddedEvent
from livekit.agents.voice.transcription.synchronizer import TranscriptSynchronizer

from chorus.agents.configs.models import BotConfig
from chorus.graphs.compiler import CompiledBot
from chorus.voice.audio_files import PlayedAudioOutput, WavAudioInput
from chorus.voice.graph_llm import CallThread
from chorus.voice.offline_stt import recognise_pcm
from chorus.voice.offline_tts import SAMPLE_RATE, synthesize_pcm
from chorus.voice.session_factory import build_session
from chorus.voice.simulate import offline_variant
from chorus.voice.voicemail import OutboundAgent, answer_outbound
from chorus.voice.voicemail_classifier import classifier_for, classify_greeting, model_classifier
from tests.conftest import example
from tests.fakes import openai_api, serve

GREETING = "Hi, you've reached Dana, I can't take your call, please leave a message after the tone."
MESSAGE = "This is HealthCare Plus calling about your appointment tomorrow. Please call us back. Goodbye."


def outbound_voicebot() -> BotConfig:
    raw = example("healthcare_scheduler")
    raw["workflow_features"]["voicemail"]["message"] = MESSAGE
    del raw["system_prompt"]["voice_specific"]["silence_timeout_ms"]  # no "are you still there?" mid-test
    return offline_variant(BotConfig.model_validate(raw))


@dataclass
class Answered:
    said: list[str]  # what the bot said, in order
    reply_pcm: bytes
    hung_up: bool
    facts: Any


async def outbound_call(cfg: BotConfig, graph: CompiledBot, thread: CallThread, callee: str) -> Answered:
    """An outbound call whose callee answers with `callee` (spoken by espeak-ng)."""
    voice = build_session(cfg, graph, thread)
    voice.agent = OutboundAgent(cfg.first_message)
    session = voice.session
    speaker = PlayedAudioOutput(sample_rate=SAMPLE_RATE)
    sync = TranscriptSynchronizer(next_in_chain_audio=speaker, next_in_chain_text=None)
    pcm, rate = await synthesize_pcm(callee)
    microphone = WavAudioInput(b"", rate)
    said: list[str] = []

    def on_item(ev: ConversationItemAddedEvent) -> None:
        if isinstance(ev.item, llm.ChatMessage) and ev.item.role == "assistant":
            said.append(ev.item.text_content or "")

    session.on("conversation_item_added", on_item)
    session.input.audio = microphone
    session.output.audio = sync.audio_output
    session.output.transcription = sync.text_output
    hung_up = asyncio.Event()

    async def dial() -> bool:
        microphone.say(pcm)  # the callee picks up and speaks
        return True

    async def hang_up() -> None:
        hung_up.set()

    try:
        await session.start(voice.agent)
        await asyncio.wait_for(
            answer_outbound(voice, cfg, classify=classifier_for(cfg, offline=True), dial=dial, hang_up=hang_up),
            timeout=60,
        )
        if voice.agent.greeting is not None:
            await voice.agent.greeting
        await asyncio.sleep(0.5)
        await voice.brain.settled()
    finally:
        await session.aclose()
        await speaker.aclose()
    return Answered(said, bytes(speaker.pcm), hung_up.is_set(), voice.facts)


async def test_a_voicemail_greeting_gets_the_message_and_the_call_ends(
    scheduler_graph: CompiledBot, call: CallThread
) -> None:
    cfg = outbound_voicebot()
    answered = await outbound_call(cfg, scheduler_graph, call, GREETING)
    facts = answered.facts
    assert facts.voicemail is not None, answered
    assert facts.voicemail["verdict"] == "machine-vm" and facts.voicemail["message_left"] is True
    assert "leave a message" in facts.voicemail["transcript"]
    assert facts.final_outcome() == "voicemail" and answered.hung_up
    assert answered.said == [MESSAGE]  # the message, and not the first message
    heard = recognise_pcm(answered.reply_pcm, SAMPLE_RATE)
    assert "appointment" in heard, heard  # the message was played out (PocketSphinx hears it roughly)
    state = await scheduler_graph.aget_state(call.runnable_config())
    human = [m for m in state.values.get("messages", []) if isinstance(m, HumanMessage)]
    assert human == []  # the greeting never went to the graph as a caller's turn


async def test_a_person_hears_the_first_message_and_the_call_goes_on(
    scheduler_graph: CompiledBot, call: CallThread
) -> None:
    cfg = outbound_voicebot()
    answered = await outbound_call(cfg, scheduler_graph, call, "Hello?")
    facts = answered.facts
    assert facts.voicemail is not None and facts.voicemail["verdict"] == "human", facts.voicemail
    assert facts.voicemail["message_left"] is False
    assert facts.outcome is None and not answered.hung_up  # the conversation goes on
    assert answered.said == [cfg.first_message]  # no reply to "hello?" on top of the first message
    state = await scheduler_graph.aget_state(call.runnable_config())
    assert not [m for m in state.values.get("messages", []) if isinstance(m, HumanMessage)]  # nor a graph turn


async def test_no_message_configured_hangs_up_on_the_machine(scheduler_graph: CompiledBot, call: CallThread) -> None:
    raw = outbound_voicebot().model_dump(mode="json", by_alias=True, exclude_none=True)
    raw["workflow_features"]["voicemail"]["enabled"] = False
    cfg = BotConfig.model_validate(raw)
    answered = await outbound_call(cfg, scheduler_graph, call, GREETING)
    assert answered.facts.voicemail["verdict"] == "machine-vm" and answered.facts.voicemail["message_left"] is False
    assert answered.facts.final_outcome() == "voicemail" and answered.hung_up and answered.said == []


async def test_a_call_that_does_not_connect_is_hung_up_and_settled(
    scheduler_graph: CompiledBot, call: CallThread
) -> None:
    cfg = outbound_voicebot()
    voice = build_session(cfg, scheduler_graph, call)
    voice.agent = OutboundAgent(cfg.first_message)
    hung_up: list[bool] = []

    async def no_answer() -> bool:
        voice.facts.settle("failed", "primary: 480 Temporarily Unavailable; failover: 486 Busy Here")
        return False

    async def hang_up() -> None:
        hung_up.append(True)

    await voice.session.start(voice.agent)
    try:
        await answer_outbound(voice, cfg, classify=classifier_for(cfg, offline=True), dial=no_answer, hang_up=hang_up)
    finally:
        await voice.session.aclose()
    assert hung_up == [True] and voice.facts.final_outcome() == "failed" and voice.facts.voicemail is None


@pytest.mark.parametrize(
    ("heard", "verdict"),
    [
        ("hi you've reached they can't take your call please leave a message after the tone", "machine-vm"),
        ("the person you are calling is not available", "machine-vm"),
        ("please state your name and why you are calling", "machine-ivr"),
        ("the mailbox is full goodbye", "machine-unavailable"),
        ("hello", "human"),
        ("yes this is dana speaking", "human"),
        ("", "uncertain"),
    ],
)
def test_the_offline_classifier(heard: str, verdict: str) -> None:
    assert classify_greeting(heard) == AMDCategory(verdict)


async def test_a_real_model_classifies_through_its_provider() -> None:
    """The config's own model is asked (here the OpenAI-compatible stand-in), with LiveKit's prompt."""
    from langchain_openai import ChatOpenAI

    api = openai_api(reply="machine-vm")
    async with serve(api) as base_url:
        model = ChatOpenAI(model="gpt-4o-mini", api_key="test", base_url=base_url + "/v1")
        verdict = await model_classifier(model)("I'm away from my desk. If you leave a message I will call back.")
    assert verdict == AMDCategory.MACHINE_VM
    (request,) = api.state.calls
    assert (
        "machine-vm" in request["messages"][0]["content"] and "away from my desk" in request["messages"][1]["content"]
    )
    async with serve(openai_api(fail_first=10)) as base_url:
        broken = ChatOpenAI(model="gpt-4o-mini", api_key="test", base_url=base_url + "/v1", max_retries=0)
        assert await model_classifier(broken)("hello") == AMDCategory.UNCERTAIN  # then treated as a person
