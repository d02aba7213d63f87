"""DTMF: the keys a caller presses become a user turn the graph sees, `[dtmf] 1 2 3 #`, and are recorded in the
call's facts. Digits are gathered until `#` or a pause, as LiveKit's `GetDtmfTask` does (its per-digit timeout
and stop key); that task itself asks its LLM to confirm through function tools the graph does not have."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from livekit import rtc
from livekit.agents import AgentSession
from livekit.agents.beta.workflows.utils import DtmfEvent, format_dtmf
from livekit.agents.voice.speech_handle import SpeechHandle

from chorus.voice.call_facts import CallFacts

log = logging.getLogger(__name__)

PREFIX = "[dtmf]"
STOP_KEY = DtmfEvent.POUND
INTER_DIGIT_TIMEOUT_S = 2.0  # a pause this long ends the entry
MAX_DIGITS = 32  # an entry this long is sent as it is


class DtmfCollector:
    def __init__(self, session: AgentSession[Any], facts: CallFacts, *, timeout_s: float = INTER_DIGIT_TIMEOUT_S):
        self.session = session
        self.facts = facts
        self.timeout_s = timeout_s
        self.replies: list[SpeechHandle] = []  # the bot's answers to each entry
        self._pending: list[DtmfEvent] = []
        self._timer: asyncio.TimerHandle | None = None

    def attach(self, room: rtc.Room) -> None:
        room.on("sip_dtmf_received", lambda ev: self.press(ev.digit))

    def press(self, digit: str) -> None:
        try:
            event = DtmfEvent(digit.strip().upper())
        except ValueError:
            log.warning("ignored a DTMF key LiveKit reported as %r", digit[:8])
            return
        self.facts.dtmf.append(event.value)
        self._pending.append(event)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if event is STOP_KEY or len(self._pending) >= MAX_DIGITS:
            self.flush()
        else:
            self._timer = asyncio.get_running_loop().call_later(self.timeout_s, self.flush)

    def flush(self) -> None:
        """Send the keys pressed so far to the graph as one user turn."""
        self._timer = None
        if not self._pending:
            return
        text = f"{PREFIX} {format_dtmf(self._pending)}"
        self._pending = []
        try:
            self.replies.append(self.session.generate_reply(user_input=text))
        except RuntimeError:  # the session has closed: the keys stay in the call's facts
            log.info("DTMF %s arrived after the session closed", text)
