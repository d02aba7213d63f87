"""DTMF: keys the caller presses reach the graph as one user turn ("[dtmf] 1 2 3 #") and the call's facts."""

from __future__ import annotations

import asyncio
from typing import Any

from langchain_core.messages import AIMessage, HumanMessage
from livekit import rtc

from chorus.graphs.compiler import CompiledBot
from chorus.voice.dtmf import DtmfCollector
from chorus.voice.graph_llm import CallThread
from chorus.voice.session_factory import VoiceCall, build_session
from chorus.voice.simulate import offline_variant
from tests.conftest import example
from tests.voice.conftest import voicebot


def _call(graph: CompiledBot, call: CallThread) -> VoiceCall:
    raw: dict[str, Any] = example("healthcare_scheduler")
    raw["system_prompt"]["voice_specific"].pop("silence_timeout_ms")
    return build_session(offline_variant(voicebot(**raw)), graph, call)


async def _turns(graph: CompiledBot, call: CallThread) -> list[Any]:
    return list((await graph.aget_state(call.runnable_config())).values["messages"])


async def test_keys_up_to_pound_are_one_user_turn_the_graph_answers(
    scheduler_graph: CompiledBot, call: CallThread
) -> None:
    voice = _call(scheduler_graph, call)
    assert voice.phone is not None
    dtmf = voice.phone.dtmf
    await voice.session.start(voice.agent)
    try:
        for key in "123#":
            dtmf.press(key)
        [reply] = dtmf.replies
        await reply
        await voice.brain.settled()
    finally:
        await voice.session.aclose()
    messages = await _turns(scheduler_graph, call)
    humans = [m.content for m in messages if isinstance(m, HumanMessage)]
    assert humans == ["[dtmf] 1 2 3 #"]
    assert isinstance(messages[-1], AIMessage) and messages[-1].content  # the graph answered the keys
    assert voice.facts.dtmf == ["1", "2", "3", "#"]


async def test_a_pause_ends_an_entry_and_room_events_are_keys(scheduler_graph: CompiledBot, call: CallThread) -> None:
    voice = _call(scheduler_graph, call)
    dtmf = DtmfCollector(voice.session, voice.facts, timeout_s=0.2)
    room = rtc.Room()  # not connected: the worker's room reports keys as this event
    dtmf.attach(room)
    await voice.session.start(voice.agent)
    try:
        room.emit("sip_dtmf_received", rtc.SipDTMF(code=4, digit="4"))
        dtmf.press("x")  # not a DTMF key: ignored
        room.emit("sip_dtmf_received", rtc.SipDTMF(code=10, digit="*"))
        assert dtmf.replies == []  # still gathering
        await asyncio.sleep(0.5)
        [reply] = dtmf.replies
        await reply
        await voice.brain.settled()
    finally:
        await voice.session.aclose()
    humans = [m.content for m in await _turns(scheduler_graph, call) if isinstance(m, HumanMessage)]
    assert humans == ["[dtmf] 4 *"]
    assert voice.facts.dtmf == ["4", "*"]
