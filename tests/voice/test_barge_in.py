"""Barge-in: the caller speaks over an answer; the thread keeps the answer cut where playback stopped."""

from __future__ import annotations

import asyncio

from langchain_core.messages import AIMessage, HumanMessage
from livekit.agents import Agent, AgentSession
from livekit.agents.voice.transcription.synchronizer import TranscriptSynchronizer
from livekit.agents.voice.turn import TurnHandlingOptions

from chorus.graphs.compiler import CompiledBot
from chorus.voice.audio_files import PlayedAudioOutput
from chorus.voice.graph_llm import CallThread, GraphLLM, follow_speeches
from chorus.voice.offline_tts import EspeakTTS

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
