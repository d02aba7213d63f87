"""Phone features inside a call, carried out by the voice session once the bot's answer has been spoken:
end_call, transfers (cold by SIP REFER, warm with hold, briefing and fallback) and escalation by transfer.

The graph decides (its call-control tools, its escalation); GraphLLM hands each turn's call actions here with the
speech that answers the turn (call_actions.py); this waits for that speech to play out, then acts on the LiveKit
side of the call (phone_line.py) and records what happened in the call's facts. A failed transfer is apologised
for and the conversation goes on; nothing here leaves a call hanging. docs/voice.md describes the behaviour."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from livekit import api, rtc
from livekit.agents import AgentSession, JobContext
from livekit.agents.voice.background_audio import BackgroundAudioPlayer, PlayHandle
from livekit.agents.voice.speech_handle import SpeechHandle

from chorus.agents.configs.models import BotConfig, TransferDestination
from chorus.voice.background import HOLD_MUSIC, background_player
from chorus.voice.call_actions import CallAction
from chorus.voice.call_facts import CallFacts
from chorus.voice.dtmf import DtmfCollector
from chorus.voice.phone_line import LiveKitLine
from chorus.voice.warm_transfer import Briefer, RoomBriefer, briefing

if TYPE_CHECKING:
    from chorus.voice.graph_llm import GraphLLM

log = logging.getLogger(__name__)

HUMAN_IDENTITY = "chorus-transfer-target"  # the person a warm transfer dials, in the consultation room
CALLBACK = "A member of our team will call you back as soon as possible."
GO_ON = "I'm still here: how else can I help?"
NO_LINE = "no phone line in this session (it has no LiveKit room)"
OUTBOUND_TRUNK_ENV = "LIVEKIT_SIP_OUTBOUND_TRUNK"  # as LiveKit's own warm transfer reads it
CLOSE_WAIT_S = 5.0


def _label(dest: TransferDestination) -> str:
    return dest.name.replace("_", " ")


def _describe(exc: BaseException) -> str:
    if isinstance(exc, api.SipCallError) and exc.sip_status_code:
        return f"LiveKit {exc.code}: {exc.message} (SIP {exc.sip_status_code} {exc.sip_status or ''})".strip()[:300]
    if isinstance(exc, api.ServerError):
        return f"LiveKit {exc.code}: {exc.message}"[:300]
    return f"{type(exc).__name__}: {exc}"[:300]


class CallControl:
    """One call's call control. `line` (and `briefer`, `player`) are set when the session has a LiveKit room;
    without one, end_call only closes the session and a transfer fails with an apology."""

    def __init__(self, *, session: AgentSession[Any], cfg: BotConfig, brain: GraphLLM, facts: CallFacts) -> None:
        self.session = session
        self.cfg = cfg
        self.brain = brain
        self.facts = facts
        self.line: LiveKitLine | None = None
        self.briefer: Briefer | None = None
        self.player: BackgroundAudioPlayer | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = asyncio.Event()
        self._hold_music: PlayHandle | None = None
        self._holding = False
        self._left = False  # the bot left the call (ended, or handed the caller over)
        self._acting = asyncio.Lock()  # one turn's actions at a time, in the order of the turns
        session.on("close", lambda _ev: self._closed.set())
        brain.on_actions = self.carry_out

    # -- from the graph --------------------------------------------------------------------------

    def carry_out(self, actions: list[CallAction], speech: SpeechHandle | None) -> None:
        """Called by GraphLLM when a turn's graph run asked for call actions; acts once `speech` has played."""
        task = asyncio.ensure_future(self._after(speech, actions))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def settled(self) -> None:
        """Wait until the actions requested so far are carried out."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def _after(self, speech: SpeechHandle | None, actions: list[CallAction]) -> None:
        speech = speech or self.session.current_speech  # LiveKit did not say which speech: the one playing
        try:
            if speech is not None:
                await speech.wait_for_playout()
            async with self._acting:
                if self._left or self._closed.is_set():
                    return  # the call already ended or left the bot: nothing more to do in it
                await self._act(actions)
        except Exception as exc:  # never a hung call: what cannot be done is ended cleanly
            log.exception("call %s: call actions %s failed", self.facts.call_id, actions)
            self.facts.settle("failed", f"call control failed: {_describe(exc)}")
            self.session.shutdown()

    async def _act(self, actions: list[CallAction]) -> None:
        escalation = next((a for a in actions if a.kind == "escalate"), None)
        transfer = next((a for a in actions if a.kind == "transfer"), None)
        if escalation is not None:
            self.facts.settle("escalated")
            dest = self.destination(transfer.destination) if transfer else self.first_destination()
            if dest is None:
                await self._say(CALLBACK)
                return
            await self.transfer(dest, reason=escalation.reason or "escalated to a person", escalated=True)
            return
        if transfer is not None:
            dest = self.destination(transfer.destination)
            if dest is not None:  # the tool checked the name against this config: always found
                await self.transfer(dest, reason="the caller asked to be transferred")
            return
        if any(a.kind == "end_call" for a in actions):
            await self.end_call()

    # -- the actions -------------------------------------------------------------------------------

    def destinations(self) -> list[TransferDestination]:
        transfer = self.cfg.workflow_features.call_transfer
        return list(transfer.transfer_destinations) if transfer is not None and transfer.enabled else []

    def destination(self, name: str | None) -> TransferDestination | None:
        return next((d for d in self.destinations() if d.name == name), None)

    def first_destination(self) -> TransferDestination | None:
        found = self.destinations()
        return found[0] if found else None

    async def end_call(self) -> None:
        """The goodbye has been said: close the session, then delete the room so the caller's SIP leg ends."""
        self.facts.settle("completed")
        await self._leave()
        if self.line is not None:
            try:
                await self.line.hang_up()
            except Exception as exc:  # the session is closed; the room empties and LiveKit closes it
                log.warning("call %s: deleting room %s failed: %s", self.facts.call_id, self.line.room, exc)
                self.facts.failure = self.facts.failure or f"hang-up failed: {_describe(exc)}"

    async def transfer(self, dest: TransferDestination, *, reason: str, escalated: bool = False) -> bool:
        """Transfer the caller to `dest` (its mode decides cold or warm). True when the caller was handed over;
        False when it failed: the caller has heard an apology and the conversation goes on."""
        record: dict[str, Any] = {"destination": dest.name, "phone": dest.phone, "mode": dest.mode, "reason": reason}
        self.facts.transfer = record
        if self.line is None:
            return await self._failed(record, dest, "failed", NO_LINE, escalated=escalated)
        if dest.mode == "warm":
            return await self._warm(record, dest, reason, escalated=escalated)
        try:
            await self.line.transfer(dest.phone)
        except Exception as exc:
            return await self._failed(record, dest, "failed", _describe(exc), escalated=escalated)
        record["result"] = "transferred"
        self.facts.settle("transferred")
        await self._leave()  # the caller's leg now belongs to the destination
        return True

    async def _warm(self, record: dict[str, Any], dest: TransferDestination, reason: str, *, escalated: bool) -> bool:
        assert self.line is not None
        consult = f"{self.line.room}-transfer-{uuid.uuid4().hex[:8]}"
        record["consult_room"] = consult
        self._hold(True)
        try:
            try:
                await self.line.dial(phone=dest.phone, room=consult, identity=HUMAN_IDENTITY)
            except Exception as exc:
                return await self._failed(record, dest, "no_answer", _describe(exc), escalated=escalated)
            if self.briefer is None:
                return await self._failed(record, dest, "failed", "no one to brief the person", escalated=escalated)
            messages = (await self.brain.graph.aget_state(self.brain.thread.runnable_config())).values.get(
                "messages", []
            )
            text = briefing(messages, bot=self.cfg.display_name.replace("_", " "), destination=dest.name, reason=reason)
            record["briefing"] = text
            if not await self.briefer.brief(room=consult, identity=HUMAN_IDENTITY, text=text):
                return await self._failed(
                    record, dest, "declined", "the person did not take the call", escalated=escalated
                )
            self._hold(False)
            await self.line.connect(room=consult, identity=HUMAN_IDENTITY)
        except Exception as exc:
            return await self._failed(record, dest, "failed", _describe(exc), escalated=escalated)
        finally:
            self._hold(False)
        record["result"] = "connected"
        self.facts.settle("transferred")
        await self._leave()  # caller and person talk in the caller's room; the bot leaves
        return True

    async def _failed(
        self, record: dict[str, Any], dest: TransferDestination, result: str, error: str, *, escalated: bool
    ) -> bool:
        record["result"] = result
        record["error"] = error
        self.facts.failure = self.facts.failure or f"transfer to {dest.name} {result}: {error}"
        log.warning("call %s: transfer to %s %s: %s", self.facts.call_id, dest.name, result, error)
        consult = record.get("consult_room")
        if consult and self.line is not None:
            with contextlib.suppress(Exception):  # the person's leg, if any, ends with its room
                await self.line.drop(consult)
        self._hold(False)
        if result in ("no_answer", "declined"):
            sorry = f"I'm sorry, {_label(dest)} couldn't take your call right now."
        else:
            sorry = f"I'm sorry, I couldn't transfer you to {_label(dest)} just now."
        await self._say(f"{sorry} {CALLBACK if escalated else GO_ON}")
        return False

    # -- the session ---------------------------------------------------------------------------------

    def _hold(self, on: bool) -> None:
        """Hold: the caller neither hears the bot nor is heard by it, and hears hold music if there is a room."""
        if on == self._holding:
            return
        self._holding = on
        if self.session.input.audio is not None:
            self.session.input.set_audio_enabled(not on)
        if self.session.output.audio is not None:
            self.session.output.set_audio_enabled(not on)
        if self.player is not None:
            if on:
                self._hold_music = self.player.play(HOLD_MUSIC, loop=True)
            elif self._hold_music is not None:
                self._hold_music.stop()
                self._hold_music = None

    async def _say(self, text: str) -> None:
        if self._closed.is_set():
            return
        await self.session.say(text)

    async def _leave(self) -> None:
        self._left = True
        self.session.shutdown()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closed.wait(), CLOSE_WAIT_S)


@dataclass
class PhoneFeatures:
    """A call's phone features: call control, DTMF, and (once there is a room) the background sound."""

    control: CallControl
    dtmf: DtmfCollector
    player: BackgroundAudioPlayer | None = None

    @classmethod
    def build(cls, *, session: AgentSession[Any], cfg: BotConfig, brain: GraphLLM, facts: CallFacts) -> PhoneFeatures:
        return cls(CallControl(session=session, cfg=cfg, brain=brain, facts=facts), DtmfCollector(session, facts))

    async def attach(self, ctx: JobContext, caller: rtc.RemoteParticipant) -> None:
        """Connect them to the call's room, once the session has started in it (the worker)."""
        control = self.control
        session = control.session
        control.line = LiveKitLine(
            ctx.api,
            room=ctx.room.name,
            caller_identity=caller.identity,
            outbound_trunk_id=os.getenv(OUTBOUND_TRUNK_ENV),
        )
        if session.tts is not None and session.stt is not None:
            control.briefer = RoomBriefer(
                url=os.environ.get("LIVEKIT_URL", ""),
                api_key=os.environ.get("LIVEKIT_API_KEY", ""),
                api_secret=os.environ.get("LIVEKIT_API_SECRET", ""),
                tts=session.tts,
                stt=session.stt,
                vad=session.vad,
            )
        self.dtmf.attach(ctx.room)
        self.player = control.player = background_player(control.cfg)
        try:
            await self.player.start(room=ctx.room, agent_session=session)
        except Exception:  # background sound is a nicety: the call goes on without it
            log.exception("call %s: background audio did not start", control.facts.call_id)
            self.player = control.player = None
