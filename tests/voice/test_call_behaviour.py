"""Call behaviour from the config: silence gets a reprompt then a polite hang-up; max_tokens caps an answer
(the thread keeps what was spoken); a failing turn is a spoken apology, not a hung call."""

from __future__ import annotations

import asyncio
import uuid

from langchain_core.messages import AIMessage, HumanMessage
from livekit.agents import Agent, AgentSession
from livekit.agents.voice.transcription.synchronizer import TranscriptSynchronizer

from chorus.graphs.compiler import CompiledBot
from chorus.voice.audio_files import PlayedAudioOutput, WavAudioInput
from chorus.voice.graph_llm import FALLBACK, CallThread, GraphLLM, follow_speeches
from chorus.voice.session_factory import GOODBYE, REPROMPT, build_session
from chorus.voice.simulate import offline_variant
from tests.conftest import example
from tests.voice.conftest import voicebot


async def test_silence_gets_a_reprompt_then_a_polite_hang_up(scheduler_graph: CompiledBot, call: CallThread) -> None:
    raw = example("healthcare_scheduler")
    raw["system_prompt"]["voice_specific"]["silence_timeout_ms"] = 700
    cfg = offline_variant(voicebot(**raw))
    voice = build_session(cfg, scheduler_graph, call)
    assert voice.silence is not None
    speaker = PlayedAudioOutput()
    sync = TranscriptSynchronizer(next_in_chain_audio=speaker, next_in_chain_text=None)
    session = voice.session
    closed = asyncio.Event()
    session.on("close", lambda _ev: closed.set())
    session.input.audio = WavAudioInput(b"", 16000)  # a caller who never says a word
    session.output.audio = sync.audio_output
    session.output.transcription = sync.text_output
    await session.start(voice.agent)
    await asyncio.wait_for(voice.silence.hung_up.wait(), 60)
    await asyncio.wait_for(closed.wait(), 30)
    await voice.brain.settled()
    await speaker.aclose()
    said = [m.content for m in (await scheduler_graph.aget_state(call.runnable_config())).values["messages"]]
    assert said == [cfg.first_message, REPROMPT, GOODBYE]


async def test_max_tokens_caps_the_answer_and_the_thread_keeps_what_was_spoken(
    scheduler_graph: CompiledBot, call: CallThread
) -> None:
    brain = GraphLLM(scheduler_graph, call, max_tokens=4)
    async with AgentSession(llm=brain) as session:
        follow_speeches(session, brain)
        await session.start(Agent(instructions=""))
        result = await session.run(user_input="Is there appointment availability on 2030-01-07?")
        said = result.expect.next_event().is_message(role="assistant").event().item.text_content or ""
        await brain.settled()
    assert said.split() == ["I", "understand.", "Here", "is"]
    messages = (await scheduler_graph.aget_state(call.runnable_config())).values["messages"]
    assert isinstance(messages[-1], AIMessage) and messages[-1].content.split() == said.split()


async def test_a_failing_turn_is_a_spoken_apology(scheduler_graph: CompiledBot, call: CallThread) -> None:
    # The thread id is not a UUID: the tool audit's insert fails inside the graph, as a database error would.
    broken = CallThread(tenant_id=call.tenant_id, thread_id=f"not-a-uuid-{uuid.uuid4().hex[:6]}")
    brain = GraphLLM(scheduler_graph, broken)
    async with AgentSession(llm=brain) as session:
        await session.start(Agent(instructions=""))
        result = await session.run(user_input="Is there appointment availability on 2030-01-07?")
        said = result.expect.next_event().is_message(role="assistant").event().item.text_content or ""
        again = await session.run(user_input="hello")  # the call goes on
        answer = again.expect.next_event().is_message(role="assistant").event().item.text_content or ""
    assert said == FALLBACK
    assert "How can I help you today?" in answer
    humans = [m for m in (await scheduler_graph.aget_state(broken.runnable_config())).values["messages"]]
    assert [m.content for m in humans if isinstance(m, HumanMessage)][-1] == "hello"
