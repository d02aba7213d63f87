"""Request bodies of the widget API: strict (unknown fields are 422s naming them), one user message a turn."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

MAX_MESSAGE_CHARS = 4000
# What a web page may ask to stream: tokens, the transcript, tool progress. Not updates/events/debug/tasks/
# checkpoints, which carry the graph's internals (tool calls, node inputs, run config).
WidgetStreamMode = Literal["values", "messages-tuple", "custom"]


def _default_modes() -> list[WidgetStreamMode]:
    return ["messages-tuple", "values"]


class WidgetThreadCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    assistant_id: str | None = Field(
        default=None, max_length=64, description="one of the publishable key's bots; default: its first"
    )


class WidgetMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Literal["user", "human"] = Field(description="only the visitor's own messages can be sent")
    # No `id`: a message id of the visitor's choosing could replace an earlier message of the thread.
    content: str = Field(min_length=1, max_length=MAX_MESSAGE_CHARS)

    @field_validator("content")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("the message is empty")
        return value


class WidgetInput(BaseModel):
    model_config = ConfigDict(extra="forbid")
    messages: list[WidgetMessage] = Field(min_length=1, max_length=1, description="the visitor's message")


class WidgetRunCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    input: WidgetInput
    stream_mode: list[WidgetStreamMode] = Field(default_factory=_default_modes, min_length=1, max_length=4)
