"""Barge-in: the caller speaks over an answer; the thread keeps the answer cut where playback stopped."""

from __future__ import annotations

import asyncio

from langchain_core.messages import AIMessage, HumanMessage
from livekit.agents import Agent, AgentSession
from livekit.agents.voice.transcription.synchronizer import TranscriptSynchronizer
from livekit.agents.voice.turn import TurnHandlingOptions

from chorus.agents.configs.models import BotConfig
from chorus.agents.storage.database import Database
from chorus.agents.tools.builtins import build_registry
from chorus.graphs.checkpointer import ChorusCheckpointer
from chorus.graphs.compiler import CompiledBot, GraphDeps, compile_bot
from chorus.voice.audio_files import PlayedAudioOutput
from chorus.voice.graph_llm import CallThread, GraphLLM, follow_speeches
from chorus.voice.offline_tts import EspeakTTS
from tests.conftest import example, slow_bot

QUESTION = "Is there appointment availability on 2030-01-07?"


async def test_an_interrupted_answer_is_checkpointed_as_heard(scheduler_graph: CompiledBot, call: CallThread) -> None:
    brain = GraphLLM(scheduler_graph, call)
    speaker = PlayedAudioOutput()
    sync = TranscriptSynchronizer(next_in_chain_audio=speaker, next_in_chain_text=None)
    speaking = asyncio.Event()
    no_preemption: TurnHandlingOptions = {"preemptive_generation": {"enabled": False}}
    async with AgentSession(llm=brain, tts=EspeakTTS(), turn_handling=no_preemption) as session:
        session.output.audio = sync.audio_output
        session.output.transcription = sync.text_output
        session.on("agent_state_changed", lambda ev: speaking.set() if ev.new_state == "speaking" else None)
        follow_speeches(session, brain)
        await session.start(Agent(instructions=""))
        handle = session.generate_reply(user_input=QUESTION)
        await asyncio.wait_for(speaking.wait(), 30)
        await asyncio.sleep(1.5)  # the caller hears about a second and a half, then talks over the bot
        assert list(brain._turns) == [handle.id]  # the graph run is tied to the speech it answers
        await session.interrupt()
        await handle
        await brain.settled()
        messages = (await scheduler_graph.aget_state(call.runnable_config())).values["messages"]
        await speaker.aclose()
    answer = messages[-1]
    assert isinstance(messages[0], HumanMessage) and messages[0].content == QUESTION
    assert isinstance(answer, AIMessage) and answer.response_metadata.get("interrupted") is True
    heard = str(answer.content)
    assert heard, "the caller heard the start of the answer"
    assert heard.startswith("I understand")  # the answer's first words, as played
    assert "16:30" not in heard  # the last slot of the full answer was never played
    assert len(speaker.pcm) < 22050 * 2 * 4  # well under the whole answer's audio


async def test_talking_over_an_answer_still_streaming_cancels_the_graph_run(
    db: Database, checkpointer: ChorusCheckpointer, call: CallThread
) -> None:
    """The caller's next words arrive while the graph is still producing the answer (a slow model): the run is
    cancelled, the thread keeps the words heard, then the caller's new turn and its answer."""
    cfg = BotConfig.model_validate(slow_bot(example("healthcare_scheduler"), delay_ms=250))
    graph = compile_bot(cfg, GraphDeps(db=db, registry=build_registry(), checkpointer=checkpointer, offline=True))
    brain = GraphLLM(graph, call)
    speaker = PlayedAudioOutput()
    sync = TranscriptSynchronizer(next_in_chain_audio=speaker, next_in_chain_text=None)
    speaking = asyncio.Event()
    no_preemption: TurnHandlingOptions = {"preemptive_generation": {"enabled": False}}
    async with AgentSession(llm=brain, tts=EspeakTTS(), turn_handling=no_preemption) as session:
        session.output.audio = sync.audio_output
        session.output.transcription = sync.text_output
        session.on("agent_state_changed", lambda ev: speaking.set() if ev.new_state == "speaking" else None)
        follow_speeches(session, brain)
        await session.start(Agent(instructions=""))
        session.generate_reply(user_input="hello")
        await asyncio.wait_for(speaking.wait(), 30)
        await asyncio.sleep(0.8)
        await session.interrupt()
        result = await session.run(user_input="thanks")
        thanks = result.expect.next_event().is_message(role="assistant").event().item.text_content or ""
        await brain.settled()
        await speaker.aclose()
    messages = (await graph.aget_state(call.runnable_config())).values["messages"]
    kinds = [(type(m).__name__, str(m.content)) for m in messages]
    assert [k for k, _ in kinds] == ["HumanMessage", "AIMessage", "HumanMessage", "AIMessage"], kinds
    heard = kinds[1][1]
    assert heard and "I understand. How can I help you today?".startswith(heard)  # the words played, by LiveKit
    assert messages[1].response_metadata.get("interrupted") is True
    # The run was cancelled mid-answer: no checkpoint of the thread ever held the whole answer.
    async for snapshot in graph.aget_state_history(call.runnable_config()):
        assert not any("tell me a bit more" in str(m.content) for m in snapshot.values.get("messages", []))
    assert kinds[2][1] == "thanks" and kinds[3][1] == thanks
