"""`POST /api/v1/configs/chat`: change a config by talking with Chorus's editor bot (docs/api.md)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field, model_validator

from chorus.agents.api_deps import PrincipalDep
from chorus.agents.configs.service import ConfigService
from chorus.runs.config_chat import ConfigChat
from chorus.runs.engine import RunEngine

router = APIRouter(prefix="/api/v1/configs", tags=["configs"])


def _chat(request: Request) -> ConfigChat:
    chat: ConfigChat | None = getattr(request.app.state, "config_chat", None)
    if chat is None:
        service: ConfigService = request.app.state.config_service
        engine: RunEngine = request.app.state.run_engine
        chat = request.app.state.config_chat = ConfigChat(service=service, deps=engine.cache.deps)
    return chat


ConfigChatDep = Annotated[ConfigChat, Depends(_chat)]


class ChatRequest(BaseModel):
    """The seed's request (001 §6 "Conversational Configuration Chat"), plus `confirm`."""

    model_config = ConfigDict(extra="forbid")
    config_id: str | None = Field(
        default=None, min_length=1, max_length=128, description="The config to edit (its id or assistant_id)"
    )
    message: str | None = Field(default=None, min_length=1, max_length=4000, description="What to change")
    conversation_id: str | None = Field(
        default=None, max_length=64, description="Continue this conversation (omit to start one)"
    )
    product_type: Literal["chatbot", "voicebot"] | None = Field(default=None, description="Checked against the config")
    confirm: bool = Field(
        default=False,
        description="Apply the change proposed last in this conversation (as if the message were 'yes, apply it')",
    )

    @model_validator(mode="after")
    def _something_to_do(self) -> ChatRequest:
        if self.message is None and not self.confirm:
            raise ValueError("send a message, or confirm: true to apply the proposed change")
        if self.confirm and self.message is not None:
            raise ValueError("send either a message or confirm: true (which stands for the message 'yes, apply it')")
        if self.confirm and self.conversation_id is None:
            raise ValueError("confirm applies a change proposed in a conversation: send its conversation_id")
        return self


@router.post(
    "/chat",
    summary="Change a config in conversation: each change previewed with its risk, stored only when confirmed",
)
async def config_chat(body: ChatRequest, principal: PrincipalDep, chat: ConfigChatDep) -> dict[str, Any]:
    turn = await chat.turn(
        principal,
        config_id=body.config_id,
        message=body.message,
        conversation_id=body.conversation_id,
        confirm=body.confirm,
        product_type=body.product_type,
    )
    return turn.to_dict()
