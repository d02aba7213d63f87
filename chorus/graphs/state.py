"""The conversation state every compiled bot shares."""

from __future__ import annotations

from typing import Annotated, Any, TypedDict

from langchain_core.messages import AnyMessage

from chorus.graphs.upstream import DeltaChannel, _messages_delta_reducer


def _merge(current: dict[str, str] | None, update: dict[str, str] | None) -> dict[str, str]:
    return {**(current or {}), **(update or {})}


class BotState(TypedDict, total=False):
    # DeltaChannel stores only each step's new messages (plus a full snapshot every 1000 updates), so
    # checkpoint storage grows linearly with the conversation instead of quadratically.
    messages: Annotated[list[AnyMessage], DeltaChannel(_messages_delta_reducer, snapshot_frequency=1000)]
    pii: Annotated[dict[str, str], _merge]
    escalated: bool
    escalation: dict[str, Any] | None
    suggest_handoff: bool
