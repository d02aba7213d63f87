"""What happened on one call, filled in by the parts of the call as it goes (routing, transfers, voicemail
detection, DTMF, recording) and stored as the call's record when it ends. One object per call: the worker
makes it when the job starts and hands it to the session (VoiceCall.facts)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

Outcome = Literal["completed", "transferred", "escalated", "voicemail", "failed", "no_config"]
Direction = Literal["inbound", "outbound"]


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class CallFacts:
    call_id: str  # also the call's thread id
    direction: Direction = "inbound"
    caller_number: str | None = None
    dialed_number: str | None = None
    tenant_id: str | None = None
    config_key: str | None = None  # config_metadata.config_id
    assistant_id: str | None = None
    config_version: int | None = None
    environment: str | None = None
    room: str | None = None
    started_at: datetime = field(default_factory=_now)
    ended_at: datetime | None = None
    outcome: Outcome | None = None  # None when the call ends: completed
    failure: str | None = None  # why, when the outcome is failed (or what failed along the way)
    transfer: dict[str, Any] | None = None  # destination, phone, mode (cold|warm), result
    voicemail: dict[str, Any] | None = None  # verdict, message_left
    dial: dict[str, Any] | None = None  # outbound: trunk (primary|failover), sip_status, attempts
    dtmf: list[str] = field(default_factory=list)
    recording: dict[str, Any] | None = None  # egress_id, location, delete_after
    turns: list[dict[str, Any]] = field(default_factory=list)  # per-turn latency metrics from LiveKit

    def settle(self, outcome: Outcome, failure: str | None = None) -> None:
        """Record how the call ended; the first outcome stands (a transfer then a hang-up is a transfer),
        except that a failure is always kept in `failure`."""
        if failure is not None and self.failure is None:
            self.failure = failure
        if self.outcome is None:
            self.outcome = outcome

    def final_outcome(self) -> Outcome:
        return self.outcome or "completed"
