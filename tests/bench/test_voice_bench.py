"""The voice benchmarks measure what they say: the zero-latency fakes drive a real session turn end to end, and
the stamps they rely on come in the order of the pipeline (no timing is asserted: these are not benchmarks)."""

from __future__ import annotations

import uuid

import pytest
from langchain_core.messages import AIMessage, HumanMessage

from bench.voice_calls import SCRIPT, FakeCall, GraphClock, VoiceRig, direct_ttft, voicebot
from chorus.agents.storage.database import Database
from chorus.agents.tools.builtins import build_registry
from chorus.graphs.checkpointer import ChorusCheckpointer
from chorus.graphs.compiler import GraphDeps, compile_bot
from tests.conftest import Tenant
from tests.fakes import InstantSTT


@pytest.fixture
def rig(db: Database, checkpointer: ChorusCheckpointer, tenant: Tenant) -> VoiceRig:
    cfg = voicebot()
    graph = compile_bot(cfg, GraphDeps(db=db, registry=build_registry(), checkpointer=checkpointer, offline=True))
    return VoiceRig(db, tenant.tenant_id, cfg, graph, GraphClock(graph))


@pytest.fixture
async def checkpointer(db: Database) -> ChorusCheckpointer:
    saver = ChorusCheckpointer(db.pool)
    await saver.setup()
    return saver


async def test_a_fake_call_turn_goes_through_the_real_graph_and_is_stamped_in_pipeline_order(rig: VoiceRig) -> None:
    call = FakeCall(rig)
    await call.start()
    try:
        plain = await call.turn(SCRIPT[0])
        tool = await call.turn(SCRIPT[1])
    finally:
        await call.close()
    for times in (plain, tool):
        assert times.heard <= times.asked <= times.first_token <= times.tts_asked
        assert "llm_node_ttft" in times.livekit and "e2e_latency" in times.livekit  # LiveKit's own metrics came
    messages = (await rig.graph.aget_state(call.thread.runnable_config())).values["messages"]
    humans = [m.content for m in messages if isinstance(m, HumanMessage)]
    assert humans == SCRIPT  # each final transcript reached the call's thread once
    answers = [m for m in messages if isinstance(m, AIMessage) and m.content and not m.tool_calls]
    assert "available slots" in str(answers[-1].content)  # the tool turn ran the tool and answered from it
    assert len(call.tts.asked) == 2  # one synthesis per answer, no speech for the tool call itself


async def test_the_baseline_calls_the_same_graph_without_a_session(rig: VoiceRig) -> None:
    thread_id = str(uuid.uuid4())
    ttft = await direct_ttft(rig, thread_id, SCRIPT[1])
    assert ttft > 0
    assert len(rig.clock.asked[thread_id]) == len(rig.clock.first_token[thread_id]) == 1


def test_the_fake_stt_refuses_a_caller_before_the_session_listens() -> None:
    with pytest.raises(RuntimeError, match="start the session"):
        InstantSTT().hear("hello")
