"""end_call: the bot says its goodbye, then the call ends (session closed, room deleted), outcome completed."""

from __future__ import annotations

from typing import Any

from langchain_core.messages import AIMessage, ToolMessage

from chorus.agents.configs.models import BotConfig
from chorus.agents.storage.database import Database
from chorus.agents.tools.builtins import build_registry
from chorus.graphs.checkpointer import ChorusCheckpointer
from chorus.graphs.compiler import CompiledBot, bot_tools
from chorus.voice.graph_llm import CallThread
from chorus.voice.session_factory import build_session
from chorus.voice.simulate import offline_variant
from tests.conftest import example
from tests.voice.conftest import voicebot
from tests.voice.phone_calls import ROOM, phone_call


async def test_the_goodbye_is_spoken_then_the_room_is_deleted(
    db: Database, checkpointer: ChorusCheckpointer, call: CallThread
) -> None:
    async with phone_call(db, checkpointer, call) as phone:
        said = await phone.say("that's all, bye")
        assert said == "Goodbye, thanks for calling!"
        assert phone.closed()
        [(method, request)] = phone.livekit_calls()
        assert method == "DeleteRoom" and request.room == ROOM  # the caller's SIP leg ends with the room
        assert phone.voice.facts.final_outcome() == "completed" and phone.voice.facts.failure is None
        messages = await phone.messages()
        assert isinstance(messages[-2], ToolMessage) and messages[-2].name == "end_call"
        assert isinstance(messages[-1], AIMessage) and messages[-1].content == said  # the thread keeps the goodbye


async def test_a_failing_hang_up_still_ends_the_session_and_is_recorded(
    db: Database, checkpointer: ChorusCheckpointer, call: CallThread
) -> None:
    async with phone_call(db, checkpointer, call) as phone:
        phone.livekit.state.errors["DeleteRoom"] = (404, {"code": "not_found", "msg": "room not found"})
        await phone.say("bye")
        assert phone.closed()
        facts = phone.voice.facts
        assert facts.final_outcome() == "completed"
        assert facts.failure is not None and "room not found" in facts.failure


async def test_the_offline_model_ends_the_call_when_the_caller_says_goodbye(
    scheduler_graph: CompiledBot, call: CallThread
) -> None:
    raw: dict[str, Any] = example("healthcare_scheduler")
    raw["system_prompt"]["voice_specific"].pop("silence_timeout_ms")
    voice = build_session(offline_variant(voicebot(**raw)), scheduler_graph, call)  # no room: no line to delete
    assert voice.phone is not None
    await voice.session.start(voice.agent)
    try:
        await voice.session.run(user_input="Thanks, goodbye")
        await voice.phone.control.settled()
        assert voice.phone.control._closed.is_set()
        assert voice.facts.final_outcome() == "completed"
    finally:
        await voice.session.aclose()
    messages = (await scheduler_graph.aget_state(call.runnable_config())).values["messages"]
    assert [m.name for m in messages if isinstance(m, ToolMessage)] == ["end_call"]


def test_call_tools_are_offered_to_voicebots_only() -> None:
    registry = build_registry()
    assert "end_call" in bot_tools(voicebot(), registry)
    assert "transfer_call" in bot_tools(voicebot(), registry)  # the example enables call_transfer
    chatbot = BotConfig.model_validate(example("acme_support_bot"))
    assert not {"end_call", "transfer_call"} & set(bot_tools(chatbot, registry))
