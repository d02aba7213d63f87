"""The offline provider: a deterministic LangChain chat model for development and tests.

It needs no network and no key. It (i) calls a bound tool when the user's message matches the tool's
name or description and the required arguments can be taken from the conversation, else asks for the
missing ones by name; (ii) when no tool matches and the bot has knowledge tools (knowledge_search,
faq_search), searches them with the user's words; (iii) answers from the tool results after a tool call,
quoting the FAQ answer or the best passage with its citation; (iv) otherwise answers plainly in the
bot's tone. It is never used in place of a configured provider unless the server runs
offline on purpose (`CHORUS_OFFLINE=1` / `chorus serve --offline`).
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool

from chorus.agents.providers import offline_config_intents, offline_user_simulator
from chorus.agents.providers.argument_extraction import extract_arguments

_WORD = re.compile(r"[a-z0-9]+")
_STOP = {
    "a",
    "an",
    "the",
    "my",
    "i",
    "me",
    "to",
    "of",
    "for",
    "and",
    "or",
    "is",
    "it",
    "in",
    "on",
    "by",
    "be",
    "can",
    "you",
    "your",
    "please",
    "with",
    "this",
    "that",
    "what",
    "do",
    "does",
    "from",
    "at",
    "its",
    "want",
    "would",
    "like",
    "need",
    "get",
    "how",
    "when",
    "where",
    "are",
    "was",
    "has",
    "have",
    "id",
    "e",
    "g",
    "there",
    "their",
    "not",
    "yet",
    "any",
    "give",
    "some",
    "up",
    "hi",
    "hello",
}
_GREETING = re.compile(r"^\s*(hi|hello|hey|good (morning|afternoon|evening))\b", re.IGNORECASE)
_THANKS = re.compile(r"\b(thanks|thank you|cheers)\b", re.IGNORECASE)
PENDING_TOOL_KEY = "chorus_offline_pending_tool"
PENDING_ARGUMENTS_KEY = "chorus_offline_pending_arguments"
_ASKED = re.compile(r"To (?P<tool>[\w ]+?), I need your (?P<args>.+?)\. Could you share (?:it|them)\?")
KNOWLEDGE_TOOLS = ("faq_search", "knowledge_search")
_FAQ_CONFIDENT = 0.6


def _stem(word: str) -> str:
    for suffix in ("ing", "ed", "es", "s"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def _words(text: str) -> set[str]:
    return {_stem(w) for w in _WORD.findall(text.lower()) if w not in _STOP}


def _tone(messages: Sequence[BaseMessage]) -> str:
    for m in messages:
        if isinstance(m, SystemMessage):
            found = re.search(r"^Tone:\s*(.+)$", str(m.content), re.MULTILINE)
            if found:
                return found.group(1).strip().lower()
    return "professional"


def _humanize(name: str) -> str:
    return name.replace("_", " ")


def _format_result(content: str) -> str:
    try:
        data = json.loads(content)
    except ValueError:
        return content
    if isinstance(data, dict):
        parts = []
        for key, value in data.items():
            if value is None or value == [] or value == {}:
                continue
            if isinstance(value, list):
                value = ", ".join(str(v.get("name", v)) if isinstance(v, dict) else str(v) for v in value)
            parts.append(f"{_humanize(key)}: {value}")
        return "; ".join(parts)
    return str(data)


class OfflineChatModel(BaseChatModel):
    """Deterministic, no network. Development and test model only."""

    model_name: str = "chorus-offline"
    tools: list[dict[str, Any]] = []
    token_delay_s: float = 0.0

    @property
    def _llm_type(self) -> str:
        return "chorus-offline"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_name": self.model_name}

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        return self.model_copy(update={"tools": [convert_to_openai_tool(t) for t in tools]})

    # -- the behaviour -------------------------------------------------------------------------

    def respond(self, messages: Sequence[BaseMessage]) -> AIMessage:
        if offline_config_intents.handles(self.tools):  # the config editor bot (configs/system/)
            return offline_config_intents.respond(messages)
        if offline_user_simulator.handles(messages):  # the simulated user of eval cases (configs/system/)
            return offline_user_simulator.respond(messages)
        tone = _tone(messages)
        last = messages[-1] if messages else HumanMessage("")
        if isinstance(last, ToolMessage):
            return self._answer_from_tools(messages, tone)
        user_texts = [str(m.content) for m in reversed(messages) if isinstance(m, HumanMessage)]
        text = user_texts[0] if user_texts else ""
        pending, asked = self._asked(messages)
        tool = self._choose_tool(text, pending)
        if tool is None and text.strip() and not _GREETING.search(text) and not _THANKS.search(text):
            calls = [
                {"name": name, "args": {"query": text}, "id": f"call_{uuid.uuid4().hex[:16]}", "type": "tool_call"}
                for name in KNOWLEDGE_TOOLS
                if any(t["function"]["name"] == name for t in self.tools)
            ]
            if calls:
                return AIMessage(content="", tool_calls=calls, response_metadata={"confidence": 0.7})
        if tool is not None:
            fn = tool["function"]
            asked_here = asked if fn["name"] == pending else []
            args, missing = extract_arguments(fn.get("parameters", {}), user_texts[:4], asked=asked_here)
            if not missing:
                call = {
                    "name": fn["name"],
                    "args": args,
                    "id": f"call_{uuid.uuid4().hex[:16]}",
                    "type": "tool_call",
                }
                return AIMessage(content="", tool_calls=[call], response_metadata={"confidence": 0.9})
            wanted = " and ".join(_humanize(m) for m in missing)
            them = "them" if len(missing) > 1 else "it"
            question = f"To {_humanize(fn['name'])}, I need your {wanted}. Could you share {them}?"
            return AIMessage(
                content=self._opener(tone) + question,
                additional_kwargs={PENDING_TOOL_KEY: fn["name"], PENDING_ARGUMENTS_KEY: missing},
                response_metadata={"confidence": 0.8},
            )
        return self._plain_answer(text, tone)

    def _asked(self, messages: Sequence[BaseMessage]) -> tuple[str | None, list[str]]:
        """The tool and the arguments our previous message asked the user for, if it asked for any: from
        its metadata, or read back from its words when a client kept only the text."""
        previous_ai = next((m for m in reversed(messages[:-1]) if isinstance(m, AIMessage)), None)
        if previous_ai is None or previous_ai.tool_calls:
            return None, []
        pending = previous_ai.additional_kwargs.get(PENDING_TOOL_KEY)
        if isinstance(pending, str):
            names = previous_ai.additional_kwargs.get(PENDING_ARGUMENTS_KEY)
            return pending, [str(n) for n in names] if isinstance(names, list) else []
        said = _ASKED.search(str(previous_ai.content))
        if said is None:
            return None, []
        tool = next((t for t in self.tools if _humanize(t["function"]["name"]) == said.group("tool")), None)
        if tool is None:
            return None, []
        params = tool["function"].get("parameters", {}).get("properties", {})
        spoken = said.group("args").split(" and ")
        return tool["function"]["name"], [n for n in params if _humanize(n) in spoken]

    def _choose_tool(self, text: str, pending: str | None) -> dict[str, Any] | None:
        if not self.tools:
            return None
        words = _words(text)
        best: tuple[float, dict[str, Any]] | None = None
        named = False
        for tool in self.tools:
            fn = tool["function"]
            if fn["name"] in KNOWLEDGE_TOOLS:  # searched when nothing else matches, see respond()
                continue
            name_words = _words(_humanize(fn["name"]))
            desc_words = _words(fn.get("description", ""))
            hits = 2 * len(words & name_words) + len(words & desc_words)
            if hits == 0:
                continue
            score = hits - 0.01 * len(name_words)
            if best is None or score > best[0]:
                best, named = (score, tool), bool(words & name_words)
        # An answer to our own question for a missing argument continues that tool, unless it names another.
        if pending and (best is None or not named):
            chosen = next((t for t in self.tools if t["function"]["name"] == pending), None)
            if chosen is not None:
                return chosen
        return best[1] if best is not None else None

    def _answer_from_tools(self, messages: Sequence[BaseMessage], tone: str) -> AIMessage:
        results: list[ToolMessage] = []
        for m in reversed(messages):
            if not isinstance(m, ToolMessage):
                break
            results.append(m)
        results.reverse()
        if results and all(r.name in KNOWLEDGE_TOOLS for r in results):
            answer, confidence = _knowledge_answer(results)
            return AIMessage(content=self._opener(tone) + answer, response_metadata={"confidence": confidence})
        sentences = []
        for r in results:
            name = _humanize(r.name or "the tool")
            if r.status == "error":
                sentences.append(f"I couldn't complete {name}: {r.content}")
            elif r.name == "escalate_to_human":
                sentences.append("I've handed your conversation to a human agent, who will continue from here.")
            else:
                sentences.append(f"Here is what I found with {name}: {_format_result(str(r.content))}.")
        return AIMessage(content=self._opener(tone) + " ".join(sentences), response_metadata={"confidence": 0.9})

    def _plain_answer(self, text: str, tone: str) -> AIMessage:
        caps = [t["function"]["description"].rstrip(".").lower() for t in self.tools]
        offer = f" I can {'; '.join(caps[:4])}." if caps else ""
        if _GREETING.search(text):
            return AIMessage(
                content=f"{self._opener(tone)}How can I help you today?{offer}",
                response_metadata={"confidence": 0.9},
            )
        if _THANKS.search(text):
            return AIMessage(
                content="You're welcome! Is there anything else I can help with?",
                response_metadata={"confidence": 0.9},
            )
        return AIMessage(
            content=f"{self._opener(tone)}I'm not sure I understood that.{offer} Could you tell me a bit more?",
            response_metadata={"confidence": 0.4},
        )

    @staticmethod
    def _opener(tone: str) -> str:
        if "empath" in tone:
            return "I understand. "
        if "friendly" in tone or "casual" in tone:
            return "Thanks! "
        return ""

    # -- LangChain plumbing --------------------------------------------------------------------

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        message = self.respond(messages)
        message.usage_metadata = _usage(messages, message)
        message.response_metadata["model_name"] = self.model_name
        return ChatResult(generations=[ChatGeneration(message=message)])

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        result = self._generate(messages, stop)
        if self.token_delay_s:  # generating takes as long as streaming would
            tokens = max(1, len(str(result.generations[0].message.content).split()))
            await asyncio.sleep(self.token_delay_s * tokens)
        return result

    def _chunks(self, messages: list[BaseMessage]) -> Iterator[ChatGenerationChunk]:
        message = self.respond(messages)
        meta = {**message.response_metadata, "model_name": self.model_name}
        if message.tool_calls:
            chunks = [
                {
                    "name": c["name"],
                    "args": json.dumps(c["args"]),
                    "id": c["id"],
                    "index": i,
                    "type": "tool_call_chunk",
                }
                for i, c in enumerate(message.tool_calls)
            ]
            yield ChatGenerationChunk(message=AIMessageChunk(content="", tool_call_chunks=chunks))
        else:
            for token in re.findall(r"\S+\s*", str(message.content)):
                yield ChatGenerationChunk(message=AIMessageChunk(content=token))
        yield ChatGenerationChunk(
            message=AIMessageChunk(
                content="",
                additional_kwargs=message.additional_kwargs,
                response_metadata=meta,
                usage_metadata=_usage(messages, message),
                chunk_position="last",
            )
        )

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        yield from self._chunks(messages)

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        for chunk in self._chunks(messages):
            # Pause before each token, like a remote model; even at 0 other tasks run between tokens.
            await asyncio.sleep(self.token_delay_s)
            yield chunk


def _knowledge_answer(results: Sequence[ToolMessage]) -> tuple[str, float]:
    """The FAQ answer when one matched well, else the best passage with its citation; with a confidence
    that is low when nothing was found, so the bot's ai_confidence escalation rule can act on it."""
    found: dict[str, Any] = {}
    for r in results:
        try:
            found[r.name or ""] = json.loads(str(r.content)) if r.status != "error" else {}
        except ValueError:
            found[r.name or ""] = {}
    faqs = found.get("faq_search", {}).get("results") or []
    if faqs and faqs[0].get("confidence_score", 0) >= _FAQ_CONFIDENT:
        return f"{faqs[0]['answer']} (Source: FAQ \u201c{faqs[0]['question']}\u201d)", 0.85
    passages = found.get("knowledge_search", {}).get("results") or []
    if passages:
        best = passages[0]
        text = " ".join(str(best["content"]).split())
        if len(text) > 600:
            text = text[:600].rsplit(" ", 1)[0] + " …"
        return f"Here is what our documentation says: {text} [{best['citation']}]", 0.75
    return "I couldn't find that in our help articles. Could you rephrase it?", 0.4


def _usage(messages: Sequence[BaseMessage], answer: AIMessage) -> Any:
    words_in = sum(len(str(m.content).split()) for m in messages)
    words_out = len(str(answer.content).split()) + 8 * len(answer.tool_calls)
    return {"input_tokens": words_in, "output_tokens": words_out, "total_tokens": words_in + words_out}
