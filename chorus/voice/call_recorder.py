"""Follows one call's session and writes its record when the call ends, whatever ends it: the session closing
(the caller hung up, the bot ended the call, an error), the job shutting down, or a failure while serving
(the worker settles the call failed and calls `finish`). The record is written once.

What it follows: the conversation items. They give the transcript, each answer as the caller heard it
(LiveKit's item of an interrupted speech holds the text up to where playback stopped), and the per-turn
latency LiveKit measures on them (`ChatMessage.metrics`: end-of-turn and transcription delay on the caller's
item; LLM time to first token, TTS time to first byte and end-to-end latency on the answer's). LiveKit 1.8
deprecates its `metrics_collected` events for per-turn latency in favour of these (and logs a warning when a
listener subscribes), so they are not used."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime
from typing import Any

from livekit import rtc
from livekit.agents import AgentSession, llm
from livekit.agents.voice.events import CloseEvent, ConversationItemAddedEvent

from chorus.agents.errors import ChorusError
from chorus.agents.storage.database import Database
from chorus.runs.threads_repository import ThreadRepository
from chorus.voice.call_facts import CallFacts
from chorus.voice.call_records import CallRecords
from chorus.voice.routing import CallRoute, NoVoicebot

log = logging.getLogger(__name__)

CHANNEL = "voice"
ALONGSIDE_WAIT_S = 15.0  # how long the record waits for work beside the call (the egress answers in 10 s)
# LiveKit's per-turn figures (ChatMessage.metrics, seconds) and their names on the record (milliseconds).
CALLER_METRICS = {"end_of_turn_delay": "end_of_turn_delay_ms", "transcription_delay": "transcription_delay_ms"}
ANSWER_METRICS = {"llm_node_ttft": "llm_ttft_ms", "tts_node_ttfb": "tts_ttfb_ms", "e2e_latency": "e2e_latency_ms"}
SIP_CALLER = "sip.phoneNumber"  # the participant attribute LiveKit SIP sets to the caller's number


def caller_number(participant: rtc.RemoteParticipant) -> str | None:
    return participant.attributes.get(SIP_CALLER) or None


def _ms(seconds: Any) -> float | None:
    return round(float(seconds) * 1000, 1) if isinstance(seconds, int | float) and seconds >= 0 else None


class CallRecorder:
    def __init__(self, db: Database, facts: CallFacts, *, thread_ttl_days: float | None = None) -> None:
        self.db = db
        self.facts = facts
        self.records = CallRecords(db)
        self.threads = ThreadRepository(db, ttl_days=thread_ttl_days)
        self.transcript: list[dict[str, Any]] = []
        self._turns: list[dict[str, Any]] = []  # per-turn latency (ms)
        self._heard: dict[str, float | None] = {}  # the figures of the caller's last turn
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._alongside: set[asyncio.Task[None]] = set()
        self.saved = asyncio.Event()

    # -- the call is served ----------------------------------------------------------------------

    async def serve(self, route: CallRoute) -> None:
        """The call is routed: its record names the config and version, and its thread becomes a row of
        `threads` pinned to that version (channel voice), so the thread APIs and expiry see it."""
        facts = self.facts
        facts.tenant_id, facts.assistant_id, facts.config_key = route.tenant_id, route.assistant_id, route.config_key
        facts.config_version, facts.environment = route.serving.version, route.serving.environment
        metadata = {"channel": CHANNEL, "call_id": facts.call_id, "direction": facts.direction}
        try:
            await self.threads.insert(route.tenant_id, thread_id=facts.call_id, metadata=metadata)
            await self.threads.pin(facts.call_id, route.assistant_id, route.serving)
        except Exception:  # the call goes on: its checkpoint still holds the conversation
            log.exception("call %s: could not record its thread", facts.call_id)
        try:
            await self.records.open(facts)
        except Exception:  # the call goes on: its record is written when it ends
            log.exception("call %s: could not open its record", facts.call_id)

    def alongside(self, work: Coroutine[Any, Any, None]) -> None:
        """Run `work` (e.g. starting the recording) beside the call; the record waits for it (a while)."""
        task = asyncio.ensure_future(work)
        self._alongside.add(task)
        task.add_done_callback(self._alongside.discard)

    def follow(self, session: AgentSession[Any]) -> None:
        session.on("conversation_item_added", self._on_item)
        session.on("close", self._on_close)

    def _on_item(self, ev: ConversationItemAddedEvent) -> None:
        item = ev.item
        if not isinstance(item, llm.ChatMessage) or item.role not in ("user", "assistant"):
            return
        self.transcript.append(
            {
                "role": "caller" if item.role == "user" else "bot",
                "text": item.text_content or "",
                "interrupted": bool(item.interrupted),
                "at": datetime.fromtimestamp(item.created_at, UTC).isoformat(),
            }
        )
        reported: dict[str, Any] = dict(item.metrics or {})
        if item.role == "user":
            self._heard = {name: _ms(reported.get(key)) for key, name in CALLER_METRICS.items()}
            return
        figures = {name: _ms(reported.get(key)) for key, name in ANSWER_METRICS.items()}
        if figures["llm_ttft_ms"] is None and figures["e2e_latency_ms"] is None:
            return  # a said line (first message, reprompt): no model turn
        self._turns.append({"turn": len(self._turns) + 1, **self._heard, **figures})
        self._heard = {}

    def _on_close(self, ev: CloseEvent) -> None:
        if ev.error is not None:
            self.facts.settle("failed", f"{type(ev.error.error).__name__}: {ev.error.error}"[:500])
        task = asyncio.ensure_future(self.finish())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def refused(self, exc: Exception, *, hang_up: Callable[[], Awaitable[None]]) -> None:
        """The call could not be served (no voicebot answers it, a key is missing, the database failed):
        settled no_config or failed with the reason, the caller apologised to and hung up on, the record
        written, whatever of that fails."""
        facts = self.facts
        if isinstance(exc, ChorusError):
            reason = exc.detail
            log.warning(
                "call %s in room %s (dialed %s) not served: %s", facts.call_id, facts.room, facts.dialed_number, reason
            )
        else:
            reason = f"the call could not be set up: {type(exc).__name__}: {exc}"[:500]
            log.error("call %s in room %s not served", facts.call_id, facts.room, exc_info=exc)
        facts.settle("no_config" if isinstance(exc, NoVoicebot) else "failed", reason)
        try:
            await hang_up()
        except Exception as err:
            log.warning("call %s: the apology and hang-up failed: %s", facts.call_id, err)
        finally:
            await self.finish()

    async def start_failed(self, exc: Exception, session: AgentSession[Any]) -> None:
        """The session could not start: settled failed, the session closed, the record written."""
        self.facts.settle("failed", f"the session could not start: {type(exc).__name__}: {exc}"[:500])
        try:
            await session.aclose()
        finally:
            await self.finish()

    # -- the call ends ----------------------------------------------------------------------------

    async def finish(self, reason: str | None = None) -> None:
        """Write the record (once). `reason` (a job's shutdown reason) is logged, not an outcome."""
        async with self._lock:
            if self.saved.is_set():
                return
            facts = self.facts
            facts.ended_at = facts.ended_at or datetime.now(UTC)
            if self._alongside:
                await asyncio.wait(list(self._alongside), timeout=ALONGSIDE_WAIT_S)
            facts.turns = facts.turns or self._turns
            try:
                await self.records.save(facts, self.transcript)
            except Exception:
                log.exception("call %s: its record could not be written", facts.call_id)
                return
            self.saved.set()
        outcome = facts.final_outcome() if facts.tenant_id else "no_config"
        log.info(
            "call %s ended: %s%s (tenant %s, config %s)",
            facts.call_id,
            outcome,
            f" ({facts.failure})" if facts.failure else "",
            facts.tenant_id or "unknown",
            facts.config_key or "none",
            extra={"call_id": facts.call_id, "outcome": outcome, "shutdown_reason": reason},
        )
