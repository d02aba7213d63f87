"""Voicemail detection on outbound calls. The callee speaks first; LiveKit's answering-machine detection (AMD,
1.8's `livekit.agents.voice.amd`) listens to the greeting until it is over and has it classified
(voicemail_classifier.py). A person (or a greeting no one can tell) hears the config's first_message and the
conversation goes on; a voicemail greeting or a call-screening prompt gets the configured message
(workflow_features.voicemail.message) once the greeting has ended, then the call hangs up; a mailbox that
takes no message is hung up on. The verdict goes into the call's facts either way."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from livekit.agents import llm
from livekit.agents.llm.tool_context import StopResponse
from livekit.agents.voice.amd import AMD, AMDCategory

from chorus.agents.configs.models import BotConfig
from chorus.voice.session_factory import VoicebotAgent, VoiceCall
from chorus.voice.voicemail_classifier import Classify, ScreeningLLM

log = logging.getLogger(__name__)

LEAVES_MESSAGE = (AMDCategory.MACHINE_VM, AMDCategory.MACHINE_IVR)  # a screener asks for the message too


class OutboundAgent(VoicebotAgent):
    """The agent of an outbound call: silent on answer (the callee speaks first), and the greeting's turns get
    no reply from the graph: a person is answered with the first message, a machine with the voicemail."""

    def __init__(self, first_message: str | None) -> None:
        super().__init__(first_message)
        self.screened_at: float | None = None  # when the verdict came (wall clock, as LiveKit's metrics)

    async def on_enter(self) -> None:
        return None

    async def on_user_turn_completed(self, turn_ctx: llm.ChatContext, new_message: llm.ChatMessage) -> None:
        started = (new_message.metrics or {}).get("started_speaking_at")
        if self.screened_at is None or (isinstance(started, int | float) and started < self.screened_at):
            raise StopResponse()


def voicemail_message(cfg: BotConfig) -> str | None:
    vm = cfg.workflow_features.voicemail if cfg.workflow_features else None
    return vm.message if vm is not None and vm.enabled and vm.message else None


async def answer_outbound(
    voice: VoiceCall,
    cfg: BotConfig,
    *,
    classify: Classify,
    dial: Callable[[], Awaitable[bool]],
    hang_up: Callable[[], Awaitable[None]],
) -> None:
    """Dial (`dial` returns whether the callee answered), screen the answer, act on the verdict. The session is
    started already with an `OutboundAgent`. Every way out of here leaves the call settled or going on."""
    session, facts, agent = voice.session, voice.facts, voice.agent
    assert isinstance(agent, OutboundAgent), "an outbound call's session runs an OutboundAgent"
    detector = AMD(
        session,
        llm=ScreeningLLM(classify),
        stt=None,  # the session's own transcripts
        interrupt_on_machine=True,
        ivr_detection=False,  # a screening prompt is answered with the message, not navigated
        suppress_compatibility_warning=True,
    )
    try:
        async with detector:
            if not await dial():
                await hang_up()
                return
            result = await detector.execute()
    except Exception as exc:  # never a hung call: the failure is recorded and the line closed
        log.exception("call %s: voicemail detection failed", facts.call_id)
        facts.settle("failed", f"voicemail detection failed: {exc}")
        await hang_up()
        return
    facts.voicemail = {
        "verdict": result.category.value,
        "reason": result.reason,
        "transcript": result.transcript,
        "message_left": False,
    }
    log.info("call %s answered by %s (%s)", facts.call_id, result.category.value, result.reason)
    if not result.is_machine:
        agent.screened_at = time.time()
        if agent.first_message:
            agent.greeting = session.say(agent.first_message)
        return
    message = voicemail_message(cfg) if result.category in LEAVES_MESSAGE else None
    if message:
        await session.say(message, allow_interruptions=False)
        facts.voicemail.update(message_left=True, message=message)
    facts.settle("voicemail")
    await hang_up()
