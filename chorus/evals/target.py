"""Running one trial of a case against its target. A config at a version runs through the run engine (the
real compiled graph and checkpoints): the trial's thread is pinned to exactly that version before its first
run, so neither a deploy nor a new version changes it, and its user turns run one after another in that
thread. A config body not uploaded is compiled the same way and run in this process."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any, Protocol

from langchain_core.messages import HumanMessage
from langchain_core.runnables import RunnableConfig

from chorus.agents.configs.environments import Serving
from chorus.agents.configs.models import BotConfig
from chorus.agents.tenancy.environments import DEFAULT_ENVIRONMENT
from chorus.evals.metrics_retrieval import conversation_context
from chorus.evals.observation import ModelUsage, Observation, ToolCall
from chorus.graphs.checkpointer import ChorusCheckpointer
from chorus.graphs.compiler import CompiledBot
from chorus.graphs.nodes.tools import TOOL_MOCKS_KEY
from chorus.runs.engine import RunEngine
from chorus.runs.executor import RETRY_AFTER_DB_FAULT_S
from chorus.runs.schemas import InputMessage, RunCreate, RunInput
from chorus.runs.serialization import jsonable
from chorus.runs.usage import UsageCollector

USAGE_WAIT_S = 2.0  # a run's token usage is stored just after its end is announced


class TrialFailed(Exception):
    """The bot's run did not succeed (an error, a timeout): the trial fails with this reason."""


def message_text(content: Any) -> str:
    """A message's text, whether its content is a string or a list of parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") if isinstance(p, dict) else str(p) for p in content)
    return str(content or "")


def _answers(messages: list[dict[str, Any]]) -> tuple[list[str], list[ToolCall]]:
    """The bot's answer to each user turn (its last AI text after it) and every tool call, in order."""
    answers: list[str] = []
    calls: list[ToolCall] = []
    current: str | None = None
    for m in messages:
        kind = m.get("type")
        if kind == "human":
            if current is not None:
                answers.append(current)
            current = ""
        elif kind == "ai":
            for c in m.get("tool_calls") or []:
                calls.append(ToolCall(str(c.get("name")), dict(c.get("args") or {})))
            text = message_text(m.get("content"))
            if text.strip():
                current = text
    if current is not None:
        answers.append(current)
    return answers, calls


class Conversation(Protocol):
    """One trial's conversation with the bot, a user turn at a time (scripted turns, or a simulated user's)."""

    async def say(self, turn: str) -> None: ...

    async def state(self) -> dict[str, Any]: ...

    async def observe(self) -> Observation: ...

    async def close(self) -> None: ...


def _observation(values: dict[str, Any], *, latency_ms: float, usage: tuple[ModelUsage, ...] | None) -> Observation:
    answers, calls = _answers(values.get("messages") or [])
    user_turns, retrieved = conversation_context(values.get("messages") or [])
    return Observation(
        output=answers[-1] if answers else "",
        answers=tuple(answers),
        tool_calls=tuple(calls),
        escalated=bool(values.get("escalated")),
        latency_ms=latency_ms,
        tokens=None if usage is None else sum(u.input_tokens + u.output_tokens for u in usage),
        usage=usage,
        user_turns=user_turns,
        retrieved=retrieved,
    )


async def run_turns(conversation: Conversation, turns: list[str]) -> Observation:
    try:
        for turn in turns:
            await conversation.say(turn)
        return await conversation.observe()
    finally:
        await conversation.close()


class ConfigTarget:
    """A stored config at one version."""

    def __init__(self, engine: RunEngine, *, config_id: str, version: int) -> None:
        self.engine = engine
        self.config_id = config_id
        self.version = version

    async def run(
        self, tenant_id: str, *, turns: list[str], tool_mocks: dict[str, Any], metadata: dict[str, Any]
    ) -> Observation:
        return await run_turns(await self.open(tenant_id, tool_mocks=tool_mocks, metadata=metadata), turns)

    async def open(self, tenant_id: str, *, tool_mocks: dict[str, Any], metadata: dict[str, Any]) -> Conversation:
        thread_id = str(uuid.uuid4())
        await self.engine.threads.create(tenant_id, thread_id=thread_id, metadata={"eval": metadata})
        await self.engine.threads.pin(thread_id, self.config_id, Serving(self.version, DEFAULT_ENVIRONMENT, 0))
        return _EngineConversation(self, tenant_id, thread_id, tool_mocks, metadata)


class _EngineConversation:
    def __init__(
        self,
        target: ConfigTarget,
        tenant_id: str,
        thread_id: str,
        tool_mocks: dict[str, Any],
        metadata: dict[str, Any],
    ) -> None:
        self.target, self.engine = target, target.engine
        self.tenant_id, self.thread_id = tenant_id, thread_id
        self.tool_mocks, self.metadata = tool_mocks, metadata
        self.run_ids: list[str] = []
        self.busy_s = 0.0

    async def say(self, turn: str) -> None:
        started = time.perf_counter()
        req = RunCreate(
            assistant_id=self.target.config_id,
            input=RunInput(messages=[InputMessage(role="user", content=turn)]),
            metadata={"eval": self.metadata},
        )
        try:
            handle = await self.engine.submit(self.tenant_id, self.thread_id, req, tool_mocks=self.tool_mocks or None)
            self.run_ids.append(handle.run_id)
            while True:
                outcome = await self.engine.join(self.tenant_id, self.thread_id, handle.run_id)
                error = outcome.get("__error__") if isinstance(outcome, dict) else None
                if isinstance(error, dict) and error.get("error") == "database_unavailable":
                    # Not the bot's failure: the queue resumes the run from its last step; follow it again.
                    await asyncio.sleep(RETRY_AFTER_DB_FAULT_S)
                    continue
                break
        finally:
            self.busy_s += time.perf_counter() - started
        if error is not None:
            raise TrialFailed(str(error.get("message") if isinstance(error, dict) else error))

    async def state(self) -> dict[str, Any]:
        thread = await self.engine.threads.get(self.tenant_id, self.thread_id)
        return dict(thread.get("values") or {})

    async def observe(self) -> Observation:
        values = await self.state()
        return _observation(values, latency_ms=self.busy_s * 1000, usage=await self._usage())

    async def close(self) -> None:
        return None

    async def _usage(self) -> tuple[ModelUsage, ...] | None:
        """The runs' token usage by model, once every run's is stored (None: some run reported none)."""
        deadline = time.monotonic() + USAGE_WAIT_S
        while True:
            async with self.engine.db.connection() as conn:
                cur = await conn.execute(
                    "SELECT run_id, model, sum(input_tokens) AS input, sum(output_tokens) AS output FROM token_usage"
                    " WHERE thread_id = %s AND run_id = ANY(%s::uuid[]) GROUP BY run_id, model",
                    (self.thread_id, self.run_ids),
                )
                rows = await cur.fetchall()
            if len({row["run_id"] for row in rows}) == len(self.run_ids):
                by_model: dict[str, tuple[int, int]] = {}
                for row in rows:
                    i, o = by_model.get(row["model"], (0, 0))
                    by_model[row["model"]] = (i + int(row["input"]), o + int(row["output"]))
                return tuple(ModelUsage(m, i, o) for m, (i, o) in sorted(by_model.items()))
            if time.monotonic() > deadline:
                return None
            await asyncio.sleep(0.05)


class UnsavedTarget:
    """A config body that was not uploaded: compiled like any version (the same compiler, checkpointer and
    tools) and run in this process on threads of its own, which are deleted with their checkpoints after
    the trial. It has no assistant, so it does not go through the run engine's queue."""

    def __init__(self, engine: RunEngine, *, body: dict[str, Any], key: str) -> None:
        self.engine = engine
        self.config = BotConfig.model_validate(body)
        self.key = key

    async def run(
        self, tenant_id: str, *, turns: list[str], tool_mocks: dict[str, Any], metadata: dict[str, Any]
    ) -> Observation:
        return await run_turns(await self.open(tenant_id, tool_mocks=tool_mocks, metadata=metadata), turns)

    async def open(self, tenant_id: str, *, tool_mocks: dict[str, Any], metadata: dict[str, Any]) -> Conversation:
        graph = self.engine.cache.get(self.key, 0, self.config)
        return GraphConversation(
            graph, self.engine.cache.deps.checkpointer, tenant_id, tool_mocks=tool_mocks, metadata=metadata
        )


class GraphConversation:
    """A conversation with a compiled graph run in this process, on a thread of its own whose checkpoints are
    deleted when it closes (an unsaved config under test; the user simulator)."""

    def __init__(
        self,
        graph: CompiledBot,
        checkpointer: Any,
        tenant_id: str,
        *,
        tool_mocks: dict[str, Any],
        metadata: dict[str, Any],
    ) -> None:
        self.graph, self.checkpointer = graph, checkpointer
        self.tenant_id, self.thread_id = tenant_id, str(uuid.uuid4())
        self.tool_mocks, self.metadata = tool_mocks, metadata
        self.usage = UsageCollector()
        self.busy_s = 0.0

    async def say(self, turn: str) -> None:
        config: RunnableConfig = {
            "configurable": {
                "thread_id": self.thread_id,
                "tenant_id": self.tenant_id,
                "run_id": str(uuid.uuid4()),
                TOOL_MOCKS_KEY: self.tool_mocks,
            },
            "metadata": {"eval": self.metadata},
            "callbacks": [self.usage],
        }
        started = time.perf_counter()
        try:
            await self.graph.ainvoke(
                {"messages": [HumanMessage(content=turn, id=str(uuid.uuid4()))]}, config, durability="sync"
            )
        finally:
            self.busy_s += time.perf_counter() - started

    async def state(self) -> dict[str, Any]:
        state = await self.graph.aget_state(
            {"configurable": {"thread_id": self.thread_id, "tenant_id": self.tenant_id}}
        )
        values: dict[str, Any] = jsonable(state.values)
        return values

    async def observe(self) -> Observation:
        by_model = self.usage.by_model
        usage = tuple(ModelUsage(m, i, o) for m, (i, o) in sorted(by_model.items())) if by_model else None
        return _observation(await self.state(), latency_ms=self.busy_s * 1000, usage=usage)

    async def close(self) -> None:
        if isinstance(self.checkpointer, ChorusCheckpointer):
            await self.checkpointer.adelete_thread(self.thread_id)
