"""The voice session's model: a LiveKit `llm.LLM` whose brain is the config's compiled graph.

Each LLM request sends only the newest user turn to the graph (the call is the thread, on the same
checkpointer as chat) and streams back only the text of the AI messages the graph adds: tool calls and tool
results stay inside the graph and are never spoken. LiveKit cancels the stream on barge-in, which cancels the
graph run in flight. When a speech ends interrupted, LiveKit knows how much of it the caller heard (the
assistant message it adds to its own chat context holds the text up to where playback stopped); `record_speech`
writes that text into the thread in place of the answer the graph produced, so the checkpoint holds what the
caller actually heard, as LiveKit does for its own chat context.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage, RemoveMessage
from langchain_core.runnables import RunnableConfig
from langgraph.types import Durability
from livekit.agents import AgentSession, llm
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS, NOT_GIVEN, APIConnectOptions, NotGivenOr
from livekit.agents.voice.events import SpeechCreatedEvent
from livekit.agents.voice.speech_handle import SpeechHandle

from chorus.graphs.compiler import CompiledBot
from chorus.voice.call_actions import CallAction, call_actions_in

try:  # which speech an LLM request belongs to (private to LiveKit: without it, turns are matched by order)
    from livekit.agents.voice.agent_activity import _SpeechHandleContextVar
except ImportError:  # pragma: no cover - a LiveKit version without it
    _SpeechHandleContextVar = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

# A cancelled run must leave every finished step in Postgres, as chat runs do (the run engine's default).
DURABILITY: Durability = "sync"
FALLBACK = "I'm sorry, something went wrong on my side. Could you say that again?"


@dataclass(frozen=True)
class CallThread:
    """Where a call's turns go: the tenant, the thread (one per call) and the environment whose secrets its
    tools use."""

    tenant_id: str
    thread_id: str
    environment: str = "production"

    def runnable_config(self) -> RunnableConfig:
        return {
            "configurable": {
                "thread_id": self.thread_id,
                "tenant_id": self.tenant_id,
                "environment": self.environment,
            },
            "recursion_limit": 25,
        }


@dataclass
class _Turn:
    human: HumanMessage
    speech_id: str | None  # the LiveKit speech this run answers
    spoken: str = ""  # what this run streamed to TTS
    capped: bool = False  # the answer was cut at max_tokens


def newest_user_message(chat_ctx: llm.ChatContext) -> llm.ChatMessage | None:
    for item in reversed(chat_ctx.items):
        if isinstance(item, llm.ChatMessage) and item.role == "user":
            return item
    return None


class GraphLLM(llm.LLM[Any]):
    """One call's model. `max_tokens` caps the spoken answer (streamed model chunks, about one token each)."""

    def __init__(self, graph: CompiledBot, thread: CallThread, *, max_tokens: int | None = None) -> None:
        super().__init__()
        self.graph = graph
        self.thread = thread
        self.max_tokens = max_tokens
        self._turns: dict[str | None, _Turn] = {}  # unsettled turns by speech id (None: speech unknown)
        self._last_user_item: str | None = None  # LiveKit's id of the caller message last sent to the graph
        self._writes: asyncio.Task[None] | None = None  # the last write of heard text, awaited before a run
        self._lock = asyncio.Lock()
        # Told a step's call actions (end, transfer, escalate) and the speech that answers it (call_control.py).
        self.on_actions: Callable[[list[CallAction], SpeechHandle | None], None] | None = None

    @property
    def model(self) -> str:
        return self.graph.name or "chorus-graph"

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
    ) -> GraphLLMStream:
        # A graph run is not idempotent (it checkpoints, its tools act): never retried by LiveKit.
        once = APIConnectOptions(max_retry=0, retry_interval=0, timeout=conn_options.timeout)
        return GraphLLMStream(self, chat_ctx=chat_ctx, tools=tools or [], conn_options=once)

    # -- what the caller heard ------------------------------------------------------------------

    def record_speech(
        self, *, source: str, heard: str, interrupted: bool, speech_id: str | None = None
    ) -> asyncio.Task[None] | None:
        """A speech of the session ended. `say` speeches (the first message, reprompts) are added to the thread
        as what the bot said; an interrupted or capped answer replaces the graph's answer with what was heard.
        Runs in the background; the next turn waits for it."""
        if source == "say":
            if not heard:
                return None
            coro = self._append_said(heard)
        else:
            turn = self._turns.pop(speech_id, None)
            if turn is None and speech_id is not None:
                turn = self._turns.pop(None, None)
            if turn is None or not (interrupted or turn.capped):
                return None
            coro = self._write_heard(turn, heard if interrupted else turn.spoken)
        self._writes = asyncio.ensure_future(self._serialised(coro))
        return self._writes

    async def settled(self) -> None:
        """Wait until what the caller heard is in the thread."""
        if self._writes is not None:
            await asyncio.shield(self._writes)

    async def _serialised(self, coro: Any) -> None:
        async with self._lock:
            try:
                await coro
            except Exception:
                log.exception("could not record what the caller heard in thread %s", self.thread.thread_id)

    async def _append_said(self, text: str) -> None:
        await self.graph.aupdate_state(
            self.thread.runnable_config(),
            {"messages": [AIMessage(content=text, id=str(uuid.uuid4()))]},
            as_node="agent",
        )

    async def _write_heard(self, turn: _Turn, heard: str) -> None:
        config = self.thread.runnable_config()
        messages: list[BaseMessage] = (await self.graph.aget_state(config)).values.get("messages", [])
        at = next((i for i, m in enumerate(messages) if m.id == turn.human.id), None)
        if at is None:  # cancelled before the graph stored the caller's words: store them with the answer
            update: list[BaseMessage] = [turn.human]
            if heard:
                update.append(AIMessage(content=heard, id=str(uuid.uuid4())))
            await self.graph.aupdate_state(config, {"messages": update}, as_node="agent")
            return
        answers = [m for m in messages[at + 1 :] if isinstance(m, AIMessage) and not m.tool_calls and m.content]
        changes: list[BaseMessage] = []
        if answers and heard:
            first, rest = answers[0], answers[1:]
            changes.append(AIMessage(content=heard, id=first.id, response_metadata={"interrupted": True}))
            changes += [RemoveMessage(id=str(m.id)) for m in rest]
        elif answers:  # nothing of the answer reached the caller
            changes += [RemoveMessage(id=str(m.id)) for m in answers]
        elif heard:
            changes.append(AIMessage(content=heard, id=str(uuid.uuid4()), response_metadata={"interrupted": True}))
        if changes:
            await self.graph.aupdate_state(config, {"messages": changes}, as_node="agent")


def _spoken_text(chunk: Any) -> str:
    """The text of a streamed message the caller may hear: AI text, never a tool call or a tool result."""
    if not isinstance(chunk, AIMessage | AIMessageChunk):
        return ""
    if getattr(chunk, "tool_call_chunks", None) or chunk.tool_calls:
        return ""
    content = chunk.content
    if isinstance(content, str):
        return content
    return "".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")


class GraphLLMStream(llm.LLMStream):
    def __init__(
        self,
        graph_llm: GraphLLM,
        *,
        chat_ctx: llm.ChatContext,
        tools: list[llm.Tool],
        conn_options: APIConnectOptions,
    ) -> None:
        # The speech this request answers, as LiveKit's reply task knows it (read before the stream's own task
        # starts; the task inherits the context anyway). Private to LiveKit, hence the fallback to None.
        handle = _SpeechHandleContextVar.get(None) if _SpeechHandleContextVar is not None else None
        self._speech_id: str | None = handle.id if handle is not None else None
        self._speech: SpeechHandle | None = handle
        super().__init__(graph_llm, chat_ctx=chat_ctx, tools=tools, conn_options=conn_options)
        self._graph_llm = graph_llm

    async def _run(self) -> None:
        owner = self._graph_llm
        item = newest_user_message(self._chat_ctx)
        text = (item.text_content or "") if item is not None else ""
        if item is None or not text.strip() or item.id == owner._last_user_item:
            # Nothing new from the caller (LiveKit asked for a reply on its own, e.g. after a false
            # interruption): the graph is not sent the same words twice; nothing is said.
            return
        owner._last_user_item = item.id
        await owner.settled()
        turn = _Turn(human=HumanMessage(text, id=str(uuid.uuid4())), speech_id=self._speech_id)
        owner._turns[turn.speech_id] = turn
        while len(owner._turns) > 8:  # turns whose speech never reported back (the session closed)
            owner._turns.pop(next(iter(owner._turns)))
        request_id = f"chorus-{uuid.uuid4().hex[:12]}"
        try:
            await self._stream_graph(turn, request_id)
        except Exception:  # a failed turn is a spoken apology, never a hung call
            log.exception("the graph failed a voice turn in thread %s", owner.thread.thread_id)
            self._send(request_id, FALLBACK if not turn.spoken else " " + FALLBACK)

    def _send(self, request_id: str, text: str) -> None:
        self._event_ch.send_nowait(llm.ChatChunk(id=request_id, delta=llm.ChoiceDelta(role="assistant", content=text)))

    async def _stream_graph(self, turn: _Turn, request_id: str) -> None:
        owner = self._graph_llm
        budget = owner.max_tokens
        streamed_ids: set[str] = set()
        async for mode, item in owner.graph.astream(
            {"messages": [turn.human]},
            owner.thread.runnable_config(),
            stream_mode=["messages", "updates"],
            durability=DURABILITY,
        ):
            if mode == "updates":
                # Handed over as soon as a step is checkpointed, so a barge-in that cancels the rest of the run
                # does not lose what the thread already says was done; CallControl waits for this speech.
                if (actions := call_actions_in(item)) and owner.on_actions is not None:
                    owner.on_actions(actions, self._speech)
                continue
            chunk = cast(tuple[Any, dict[str, Any]], item)[0]
            piece = _spoken_text(chunk)
            if not piece:
                continue
            # A message is streamed token by token, then emitted once whole by the node that returns it: the
            # whole one (same id) is not spoken twice.
            if not isinstance(chunk, AIMessageChunk):
                if chunk.id in streamed_ids:
                    continue
            elif chunk.id:
                streamed_ids.add(chunk.id)
            if turn.spoken and not turn.spoken.endswith((" ", "\n")) and not isinstance(chunk, AIMessageChunk):
                piece = " " + piece
            if budget is not None:
                if budget <= 0:
                    turn.capped = True
                    break
                budget -= 1
            turn.spoken += piece
            self._send(request_id, piece)


def follow_speeches(session: AgentSession[Any], brain: GraphLLM) -> None:
    """Record, at the end of each of the session's speeches, what the caller heard of it (LiveKit puts the
    played-out text, truncated where playback stopped, in the speech's assistant chat item)."""

    def on_created(ev: SpeechCreatedEvent) -> None:
        source = ev.source

        def on_done(handle: SpeechHandle) -> None:
            heard = " ".join(
                (item.text_content or "")
                for item in handle.chat_items
                if isinstance(item, llm.ChatMessage) and item.role == "assistant"
            ).strip()
            brain.record_speech(source=source, heard=heard, interrupted=handle.interrupted, speech_id=handle.id)

        ev.speech_handle.add_done_callback(on_done)

    session.on("speech_created", on_created)
