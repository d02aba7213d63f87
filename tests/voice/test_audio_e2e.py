"""A call on audio files: espeak-ng speaks the caller's request, Silero VAD and PocketSphinx hear it, the graph
calls a tool, espeak-ng speaks the answer, and PocketSphinx hears the tool's result in the reply."""

from __future__ import annotations

import pytest
from langchain_core.messages import ToolMessage

from chorus.agents.storage.database import Database
from chorus.agents.tools.builtins import build_registry
from chorus.graphs.checkpointer import ChorusCheckpointer
from chorus.graphs.compiler import GraphDeps, compile_bot
from chorus.voice.graph_llm import CallThread
from chorus.voice.offline_stt import recognise_pcm
from chorus.voice.offline_tts import synthesize_pcm
from chorus.voice.simulate import simulate_call
from tests.conftest import example
from tests.fakes import clinic_api, serve
from tests.voice.conftest import voicebot


def with_hours_tool(base_url: str) -> dict[str, object]:
    raw = example("healthcare_scheduler")
    raw["tools_needed"] = [
        {
            "tool_name": "opening_hours",
            "description": "Tell the clinic's opening days.",
            "input_schema": {},
            "http": {"method": "GET", "url": base_url + "/hours"},
        }
    ]
    raw["tools_available"].append({"tool_name": "opening_hours", "status": "implemented"})
    return raw


async def test_a_spoken_request_gets_the_tools_result_spoken_back(
    db: Database, checkpointer: ChorusCheckpointer, call: CallThread, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHORUS_HTTP_TOOLS_ALLOW_PRIVATE", "1")  # the stand-in API listens on loopback
    api = clinic_api()
    async with serve(api) as base_url:
        cfg = voicebot(**with_hours_tool(base_url))
        graph = compile_bot(cfg, GraphDeps(db=db, registry=build_registry(), checkpointer=checkpointer, offline=True))
        pcm, rate = await synthesize_pcm("What are your opening hours?")
        sim = await simulate_call(cfg, graph, call, caller_pcm=pcm, caller_rate=rate, max_seconds=60)
    assert sim.finished, sim.transcript()
    assert api.state.calls == 1  # the graph called the clinic's API once
    heard_back = recognise_pcm(sim.reply_pcm, sim.sample_rate)
    assert "monday to friday" in heard_back, heard_back  # the tool's result, spoken and heard
    caller_lines = [line.text for line in sim.lines if line.role == "caller"]
    assert any("opening hours" in text for text in caller_lines), sim.transcript()
    messages = (await graph.aget_state(call.runnable_config())).values["messages"]
    tool_results = [m for m in messages if isinstance(m, ToolMessage)]
    assert [m.name for m in tool_results] == ["opening_hours"]
    bot_lines = [line.text for line in sim.lines if line.role == "bot"]
    assert bot_lines[0] == cfg.first_message
    assert "monday to friday" in bot_lines[-1] and "{" not in bot_lines[-1]  # worded, not the raw JSON
    assert any("e2e_latency" in line.metrics for line in sim.lines)  # LiveKit's per-turn metrics came through
