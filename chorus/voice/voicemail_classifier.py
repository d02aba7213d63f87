"""Who answered an outbound call, from the first words heard: a person, a voicemail greeting, a mailbox that
takes no message, or a call-screening prompt. LiveKit's answering-machine detection (`livekit.agents.voice.amd`)
decides when the greeting is over and asks an `llm.LLM` to classify it by calling its `save_prediction` tool;
`ScreeningLLM` is that LLM: the config's own model when it is a real one, else a deterministic classifier of
greeting phrases (the offline model has none of its own for this)."""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage, SystemMessage
from livekit.agents import llm
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS, NOT_GIVEN, APIConnectOptions, NotGivenOr
from livekit.agents.voice.amd import AMDCategory
from livekit.agents.voice.amd.classifier import AMD_PROMPT

from chorus.agents.configs.models import BotConfig
from chorus.agents.errors import ChorusError
from chorus.agents.providers.factory import build_chat_model

log = logging.getLogger(__name__)

Classify = Callable[[str], Awaitable[AMDCategory]]

# Cues of a machine, by what it lets the caller do. Matched on lower-case words without punctuation or
# apostrophes, so a recogniser's "you've" and "youve" both count.
UNAVAILABLE = (
    "mailbox is full",
    "mailbox has not been set up",
    "mailbox hasnt been set up",
    "not been set up",
    "cannot accept messages",
    "not accepting messages",
)
SCREENING = (
    "state your name",
    "say your name",
    "record your name",
    "why you are calling",
    "why youre calling",
    "reason for your call",
    "reason for calling",
    "before i try to connect",
    "screening",
    "press one",
    "press 1",
)
VOICEMAIL = (
    "leave a message",
    "leave your message",
    "leave me a message",
    "after the tone",
    "after the beep",
    "at the tone",
    "youve reached",
    "you have reached",
    "not available",
    "unavailable",
    "cant take your call",
    "cannot take your call",
    "cant come to the phone",
    "cant answer",
    "get back to you",
    "voicemail",
    "voice mail",
    "record your message",
)


def _normal(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9 ]+", "", text.lower().replace("-", " ")).split())


def classify_greeting(transcript: str) -> AMDCategory:
    """The deterministic classifier: machine cues decide; words without any cue are a person."""
    text = _normal(transcript)
    if not text:
        return AMDCategory.UNCERTAIN
    for cues, category in (
        (UNAVAILABLE, AMDCategory.MACHINE_UNAVAILABLE),
        (SCREENING, AMDCategory.MACHINE_IVR),
        (VOICEMAIL, AMDCategory.MACHINE_VM),
    ):
        if any(cue in text for cue in cues):
            return category
    return AMDCategory.HUMAN


async def _offline(transcript: str) -> AMDCategory:
    return classify_greeting(transcript)


def model_classifier(model: BaseChatModel | Any) -> Classify:
    """The config's model classifies, with LiveKit's answering-machine prompt; an answer that names no category,
    or a model error, is `uncertain` (the call then goes on as with a person)."""

    async def classify(transcript: str) -> AMDCategory:
        try:
            answer = await model.ainvoke(
                [
                    SystemMessage(AMD_PROMPT + "\n\nAnswer with the category only."),
                    HumanMessage(transcript),
                ]
            )
        except Exception:
            log.exception("the model could not classify a call's greeting")
            return AMDCategory.UNCERTAIN
        said = str(answer.content).strip().lower()
        for category in sorted(AMDCategory, key=lambda c: -len(c.value)):  # machine-vm before human, …
            if category.value in said:
                return category
        return AMDCategory.UNCERTAIN

    return classify


def classifier_for(cfg: BotConfig, *, offline: bool) -> Classify:
    """The classifier a config gets: its own model (and fallback), or the phrase classifier when it runs on the
    offline model (on purpose: CHORUS_OFFLINE, or llm_config.provider offline)."""
    if offline or cfg.llm_config.provider == "offline":
        return _offline
    try:
        return model_classifier(build_chat_model(cfg.llm_config, tools=[], offline=False))
    except ChorusError as exc:
        log.warning("greetings are classified by phrase: the config's model is not usable (%s)", exc.detail)
        return _offline


class ScreeningLLM(llm.LLM[Any]):
    """The classifier as the `llm.LLM` LiveKit's answering-machine detection calls: each request classifies the
    transcript it carries and answers with a `save_prediction(label)` tool call."""

    def __init__(self, classify: Classify) -> None:
        super().__init__()
        self.classify = classify

    @property
    def model(self) -> str:
        return "chorus-greeting-classifier"

    @property
    def provider(self) -> str:
        return "chorus"

    def chat(
        self,
        *,
        chat_ctx: llm.ChatContext,
        tools: list[llm.Tool] | None = None,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
        parallel_tool_calls: NotGivenOr[bool] = NOT_GIVEN,
        tool_choice: NotGivenOr[llm.ToolChoice] = NOT_GIVEN,
        extra_kwargs: NotGivenOr[dict[str, Any]] = NOT_GIVEN,
    ) -> _VerdictStream:
        return _VerdictStream(self, chat_ctx=chat_ctx, tools=tools or [], conn_options=conn_options)


class _VerdictStream(llm.LLMStream):
    def __init__(
        self, owner: ScreeningLLM, *, chat_ctx: llm.ChatContext, tools: list[llm.Tool], conn_options: APIConnectOptions
    ) -> None:
        super().__init__(owner, chat_ctx=chat_ctx, tools=tools, conn_options=conn_options)
        self._owner = owner

    async def _run(self) -> None:
        said = [
            m.text_content or "" for m in self._chat_ctx.items if isinstance(m, llm.ChatMessage) and m.role == "user"
        ]
        category = await self._owner.classify(said[-1] if said else "")
        call = llm.FunctionToolCall(
            name="save_prediction", arguments=json.dumps({"label": category.value}), call_id=uuid.uuid4().hex
        )
        self._event_ch.send_nowait(
            llm.ChatChunk(id=f"verdict-{call.call_id}", delta=llm.ChoiceDelta(role="assistant", tool_calls=[call]))
        )
