"""Calls for the phone-feature tests: a voicebot whose model is a scripted stand-in (it calls transfer_call and
end_call when told to), served by a text-mode session from build_session, with its phone line on a stand-in of
LiveKit's Twirp API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from langchain_core.messages import BaseMessage

from chorus.agents.configs.models import BotConfig
from chorus.agents.storage.database import Database
from chorus.agents.tools.builtins import build_registry
from chorus.graphs.checkpointer import ChorusCheckpointer
from chorus.graphs.compiler import CompiledBot, GraphDeps, compile_bot
from chorus.voice.call_control import CallControl
from chorus.voice.graph_llm import CallThread
from chorus.voice.phone_line import LiveKitLine
from chorus.voice.session_factory import VoiceCall, build_session
from chorus.voice.simulate import offline_variant
from tests.conftest import example
from tests.fakes import FakePerson, livekit_call_api, livekit_client, scripted_model_api, serve

ROOM = "healthcare_plus-call-1"
CALLER = "sip_+15550001111"
TRUNK = "ST_outbound"
DESTINATIONS = [
    {"name": "front_desk", "phone": "+14155556789"},
    {"name": "billing", "phone": "14155550100", "mode": "warm"},
]


def _last_tool_call(messages: list[dict[str, Any]]) -> str | None:
    for m in reversed(messages):
        if m["role"] == "assistant" and m.get("tool_calls"):
            return str(m["tool_calls"][0]["function"]["name"])
    return None


def receptionist(messages: list[dict[str, Any]]) -> dict[str, Any]:
    """The scripted model: 'transfer me to X' calls transfer_call(X), 'bye' calls end_call, and it words the
    tools' results (an error result: it says it cannot)."""
    last = messages[-1]
    if last["role"] == "tool":
        tool, content = _last_tool_call(messages), str(last["content"])
        if "call_action" not in content:
            return {"content": f"Sorry, I can't do that: {content}"}
        return {"content": "Goodbye, thanks for calling!" if tool == "end_call" else "Transferring you now."}
    text = str(last.get("content") or "").lower()
    if text.startswith("transfer me to "):
        return {
            "tool_call": {"name": "transfer_call", "arguments": {"destination": text.removeprefix("transfer me to ")}}
        }
    if "bye" in text:
        return {"tool_call": {"name": "end_call", "arguments": {"reason": "the caller said goodbye"}}}
    return {"content": f"You said: {text}. How else can I help?"}


def phone_bot(model_url: str, **workflow: Any) -> BotConfig:
    raw = example("healthcare_scheduler")
    raw["llm_config"] = {"provider": "openai_compatible", "model": "receptionist", "base_url": f"{model_url}/v1"}
    raw["workflow_features"]["call_transfer"] = {"enabled": True, "transfer_destinations": DESTINATIONS}
    raw["workflow_features"].update(workflow)
    raw["system_prompt"]["voice_specific"].pop("silence_timeout_ms")
    return offline_variant(BotConfig.model_validate(raw))


@dataclass
class PhoneCall:
    voice: VoiceCall
    graph: CompiledBot
    thread: CallThread
    livekit: FastAPI  # the Twirp stand-in: .state.calls, .state.errors
    person: FakePerson

    @property
    def control(self) -> CallControl:
        assert self.voice.phone is not None
        return self.voice.phone.control

    async def say(self, text: str) -> str:
        """The caller says `text`; the bot's answer, once what it asked the call to do has been done."""
        result = await self.voice.session.run(user_input=text)
        answer = result.expect.next_event().is_message(role="assistant").event().item.text_content or ""
        await self.control.settled()
        await self.voice.brain.settled()
        return answer

    async def messages(self) -> list[BaseMessage]:
        state = await self.graph.aget_state(self.thread.runnable_config())
        return list(state.values.get("messages", []))

    def livekit_calls(self) -> list[tuple[str, Any]]:
        return list(self.livekit.state.calls)

    def closed(self) -> bool:
        return self.control._closed.is_set()


@asynccontextmanager
async def phone_call(
    db: Database,
    checkpointer: ChorusCheckpointer,
    thread: CallThread,
    *,
    person: FakePerson | None = None,
    **workflow: Any,
) -> AsyncIterator[PhoneCall]:
    livekit = livekit_call_api()
    async with serve(scripted_model_api(receptionist)) as model_url, serve(livekit) as livekit_url:
        cfg = phone_bot(model_url, **workflow)
        graph = compile_bot(cfg, GraphDeps(db=db, registry=build_registry(), checkpointer=checkpointer, offline=False))
        voice = build_session(cfg, graph, thread)
        assert voice.phone is not None
        lk = livekit_client(livekit_url)
        call = PhoneCall(voice, graph, thread, livekit, person or FakePerson())
        voice.phone.control.line = LiveKitLine(lk, room=ROOM, caller_identity=CALLER, outbound_trunk_id=TRUNK)
        voice.phone.control.briefer = call.person
        await voice.session.start(voice.agent)
        try:
            yield call
        finally:
            await voice.session.aclose()
            await lk.aclose()


def tool_errors(messages: list[BaseMessage]) -> list[str]:
    return [str(m.content) for m in messages if getattr(m, "status", None) == "error"]
