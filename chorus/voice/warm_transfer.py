"""Warm transfer's conversation with the person taking the call: what they are told about the caller (a recap of
the call's thread) and their answer (take the call or not).

LiveKit's `WarmTransferTask` (livekit.agents.beta.workflows) drives this part with the session's LLM and its
function tools (`connect_to_caller`, `decline_transfer`). A Chorus voice session's LLM is the bot's compiled
graph, which has neither those tools nor that persona, so the briefing is spoken from the thread and the person's
spoken answer decides. The rest of the workflow is LiveKit's: the caller on hold with hold music, the person
dialled into a consultation room, then moved into the caller's room (call_control.py, phone_line.py)."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from livekit import api, rtc
from livekit.agents import Agent, AgentSession, stt, tts, vad
from livekit.agents.voice import room_io
from livekit.agents.voice.events import UserInputTranscribedEvent

ASK = "Say yes to take the call, or no if you can't."
_YES = re.compile(r"\b(yes|yeah|yep|sure|ok|okay|go ahead|connect|put (them|him|her) through|i'?ll take it)\b", re.I)
_NO = re.compile(r"\b(no|nope|not now|can'?t|cannot|busy|decline|later)\b", re.I)


class Briefer(Protocol):
    """Speaks to the person a warm transfer reached, in the consultation room, and hears their answer."""

    async def brief(self, *, room: str, identity: str, text: str) -> bool:
        """True when the person takes the call; False when they decline, say nothing, or hang up."""
        ...


def answer_of(transcript: str) -> bool | None:
    """The person's decision in what they said: True (take the call), False (decline), None (not said yet)."""
    if _NO.search(transcript):
        return False
    if _YES.search(transcript):
        return True
    return None


def _text(message: BaseMessage) -> str:
    return message.content if isinstance(message.content, str) else ""


def briefing(messages: Sequence[BaseMessage], *, bot: str, destination: str, reason: str | None) -> str:
    """What the person hears before taking the call: who calls, why, and the caller's last words."""
    said = [t for m in messages if isinstance(m, HumanMessage) and (t := _text(m).strip())][-3:]
    answered = next((t for m in reversed(messages) if isinstance(m, AIMessage) and (t := _text(m).strip())), None)
    parts = [f"Hello, this is the {bot} assistant with a caller for {destination.replace('_', ' ')}."]
    if reason:
        parts.append(f"Reason for the transfer: {reason}.")
    if said:
        parts.append("The caller said: " + " ... ".join(f'"{t}"' for t in said) + ".")
    if answered:
        parts.append(f'I last told them: "{answered}"')
    parts.append(ASK)
    return " ".join(parts)


@dataclass
class RoomBriefer:
    """The Briefer of a real call: joins the consultation room (LiveKit server at `url`), says the briefing with
    the call's own TTS and listens with its STT for the person's answer."""

    url: str
    api_key: str
    api_secret: str
    tts: tts.TTS[Any]
    stt: stt.STT[Any]
    vad: vad.VAD | None
    agent_identity: str = "chorus-voicebot"
    answer_timeout_s: float = 20.0

    async def brief(self, *, room: str, identity: str, text: str) -> bool:
        token = (
            api.AccessToken(self.api_key, self.api_secret)
            .with_identity(self.agent_identity)
            .with_kind("agent")
            .with_grants(api.VideoGrants(room_join=True, room=room, can_publish=True, can_subscribe=True))
            .to_jwt()
        )
        consult = rtc.Room()
        session: AgentSession[Any] = AgentSession(stt=self.stt, tts=self.tts, vad=self.vad)
        decided: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

        def on_transcript(ev: UserInputTranscribedEvent) -> None:
            verdict = answer_of(ev.transcript) if ev.is_final else None
            if verdict is not None and not decided.done():
                decided.set_result(verdict)

        def on_close(_ev: Any) -> None:  # the person hung up
            if not decided.done():
                decided.set_result(False)

        session.on("user_input_transcribed", on_transcript)
        session.on("close", on_close)
        try:
            await consult.connect(self.url, token)
            await session.start(
                Agent(instructions="Brief the person taking a transferred call."),
                room=consult,
                room_options=room_io.RoomOptions(participant_identity=identity, close_on_disconnect=True),
                record=False,
            )
            session.say(text, allow_interruptions=False)
            return await asyncio.wait_for(decided, self.answer_timeout_s)
        except TimeoutError:
            return False
        finally:
            with contextlib.suppress(Exception):
                await session.aclose()
            with contextlib.suppress(Exception):
                await consult.disconnect()
