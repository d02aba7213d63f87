"""Running one trial of a case against its target. A config at a version runs through the run engine (the
real compiled graph and checkpoints): the trial's thread is pinned to exactly that version before its first
run, so neither a deploy nor a new version changes it, and its user turns run one after another in that
thread. A config body not uploaded is compiled the same way and run in this process."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from langchain_core.messages import HumanMessage
from langchain_core.runnables import RunnableConfig

from chorus.agents.configs.environments import Serving
from chorus.agents.configs.models import BotConfig
from chorus.agents.tenancy.environments import DEFAULT_ENVIRONMENT
from chorus.evals.metrics_retrieval import conversation_context
from chorus.evals.observation import Observation, ToolCall
from chorus.graphs.checkpointer import ChorusCheckpointer
from chorus.graphs.nodes.tools import TOOL_MOCKS_KEY
from chorus.runs.engine import RunEngine
from chorus.runs.schemas import InputMessage, RunCreate, RunInput
from chorus.runs.serialization import jsonable
from chorus.runs.usage import UsageCollector

USAGE_WAIT_S = 2.0  # a run's token usage is stored just after its end is announced


class TrialFailed(Exception):
    """The bot's run did not succeed (an error, a timeout): the trial fails with this reason."""


def _text(content: Any) -> str:
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
            text = _text(m.get("content"))
            if text.strip():
                current = text
    if current is not None:
        answers.append(current)
    return answers, calls


class ConfigTarget:
    """A stored config at one version."""

    def __init__(self, engine: RunEngine, *, config_id: str, version: int) -> None:
        self.engine = engine
        self.config_id = config_id
        self.version = version

    async def run(
        self, tenant_id: str, *, turns: list[str], tool_mocks: dict[str, Any], metadata: dict[str, Any]
    ) -> Observation:
        engine = self.engine
        thread_id = str(uuid.uuid4())
        await engine.threads.create(tenant_id, thread_id=thread_id, metadata={"eval": metadata})
        await engine.threads.pin(thread_id, self.config_id, Serving(self.version, DEFAULT_ENVIRONMENT, 0))
        started = time.perf_counter()
        run_ids = []
        for turn in turns:
            req = RunCreate(
                assistant_id=self.config_id,
                input=RunInput(messages=[InputMessage(role="user", content=turn)]),
                metadata={"eval": metadata},
            )
            handle = await engine.submit(tenant_id, thread_id, req, tool_mocks=tool_mocks or None)
            run_ids.append(handle.run_id)
            outcome = await engine.join(tenant_id, thread_id, handle.run_id)
            if isinstance(outcome, dict) and "__error__" in outcome:
                error = outcome["__error__"]
                raise TrialFailed(str(error.get("message") if isinstance(error, dict) else error))
        latency_ms = (time.perf_counter() - started) * 1000
        thread = await engine.threads.get(tenant_id, thread_id)
        values = thread.get("values") or {}
        answers, calls = _answers(values.get("messages") or [])
        user_turns, retrieved = conversation_context(values.get("messages") or [])
        return Observation(
            output=answers[-1] if answers else "",
            answers=tuple(answers),
            tool_calls=tuple(calls),
            escalated=bool(values.get("escalated")),
            latency_ms=latency_ms,
            tokens=await self._tokens(thread_id, run_ids),
            user_turns=user_turns,
            retrieved=retrieved,
        )

    async def _tokens(self, thread_id: str, run_ids: list[str]) -> int | None:
        deadline = time.monotonic() + USAGE_WAIT_S
        while True:
            async with self.engine.db.connection() as conn:
                cur = await conn.execute(
                    "SELECT count(DISTINCT run_id) AS runs, coalesce(sum(input_tokens + output_tokens), 0) AS tokens"
                    " FROM token_usage WHERE thread_id = %s AND run_id = ANY(%s::uuid[])",
                    (thread_id, run_ids),
                )
                row = await cur.fetchone()
            if row is not None and row["runs"] == len(run_ids):
                return int(row["tokens"])
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
        graph = self.engine.cache.get(self.key, 0, self.config)
        thread_id = str(uuid.uuid4())
        usage = UsageCollector()
        started = time.perf_counter()
        checkpointer = self.engine.cache.deps.checkpointer
        try:
            for turn in turns:
                config: RunnableConfig = {
                    "configurable": {
                        "thread_id": thread_id,
                        "tenant_id": tenant_id,
                        "run_id": str(uuid.uuid4()),
                        TOOL_MOCKS_KEY: tool_mocks,
                    },
                    "metadata": {"eval": metadata},
                    "callbacks": [usage],
                }
                await graph.ainvoke(
                    {"messages": [HumanMessage(content=turn, id=str(uuid.uuid4()))]}, config, durability="sync"
                )
            latency_ms = (time.perf_counter() - started) * 1000
            state = await graph.aget_state({"configurable": {"thread_id": thread_id, "tenant_id": tenant_id}})
        finally:
            if isinstance(checkpointer, ChorusCheckpointer):
                await checkpointer.adelete_thread(thread_id)
        values = jsonable(state.values)
        answers, calls = _answers(values.get("messages") or [])
        user_turns, retrieved = conversation_context(values.get("messages") or [])
        tokens = sum(i + o for i, o in usage.by_model.values()) if usage.by_model else None
        return Observation(
            output=answers[-1] if answers else "",
            answers=tuple(answers),
            tool_calls=tuple(calls),
            escalated=bool(values.get("escalated")),
            latency_ms=latency_ms,
            tokens=tokens,
            user_turns=user_turns,
            retrieved=retrieved,
        )
