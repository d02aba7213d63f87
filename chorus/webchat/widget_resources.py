"""What the widget API answers with: the bot's public look, a visitor token, the visitor's threads and what
the visitor sees of one (never tool calls or results). Times are ISO 8601 strings on the wire."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from chorus.runs.statuses import RunStatus, ThreadStatus


class WidgetConfig(BaseModel):
    assistant_id: str
    name: str
    title: str = Field(description="the header: webchat.title, else the bot's name")
    greeting: str | None = Field(description="the first message shown: webchat.greeting, else first_message")
    webchat: dict[str, Any] = Field(description="the bot config's `webchat` (colors, avatar_url, position, …)")
    tool_status: dict[str, str] = Field(
        description="what to show while a tool runs, by tool name ('*': any other); never the tool's name"
    )
    assistant_ids: list[str] = Field(description="every bot the publishable key may talk to")


class VisitorSession(BaseModel):
    visitor_token: str = Field(description="send it as `Authorization: Bearer …` to the visitor routes")
    visitor_id: str
    expires_at: datetime
    expires_in: int = Field(description="seconds until the token expires")
    renewed: bool = Field(description="true: the presented token was renewed (same visitor)")
    assistant_ids: list[str]


class VisitorThread(BaseModel):
    thread_id: str
    assistant_id: str | None
    status: ThreadStatus
    created_at: datetime
    updated_at: datetime


class TranscriptMessage(BaseModel):
    id: str | None
    type: Literal["human", "ai"]
    content: str


class ActiveRun(BaseModel):
    run_id: str
    status: RunStatus


class VisitorThreadState(VisitorThread):
    messages: list[TranscriptMessage] = Field(description="what the visitor saw: their messages and the answers")
    escalated: bool = Field(description="the conversation was handed to a person")
    active_run: ActiveRun | None = Field(description="the turn still running (rejoin its stream), if any")
