"""Simulated users: a case's `simulated_user` plays the user against the bot under test.

The simulator is itself a Chorus bot (configs/system/user-simulator.json), compiled by the same compiler and
run with the same checkpointer as any bot, on a thread of its own per trial: its first message is the case's
brief, and each of the bot's replies is fed to it as its next user turn; what it answers is sent to the bot.
The conversation stops when the simulator says it is done (`[END]`), when the bot escalates or ends (answers
nothing), or after `max_turns` user turns. Its transcript is stored with the trial's result.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg_pool import PoolTimeout

from chorus.agents.configs.models import BotConfig
from chorus.agents.errors import DatabaseUnavailable, ServerBusy
from chorus.agents.providers.offline_user_simulator import BRIEF_MARK, END_MARK
from chorus.evals.metrics_deterministic import Measured
from chorus.evals.metrics_judged import SKIPPED, MetricError, request_key
from chorus.evals.observation import Observation
from chorus.evals.schemas import SimulatedUser, render
from chorus.evals.scoring import Evaluation, evaluate, model_requests
from chorus.evals.target import Conversation, GraphConversation, TrialFailed, message_text
from chorus.runs.engine import RunEngine

SIMULATOR_CONFIG = Path(__file__).resolve().parents[2] / "configs" / "system" / "user-simulator.json"
_CACHE_KEY = "__chorus_user_simulator"  # never an assistant id (those are UUIDs)
# The database failing is nobody's answer: the runner puts the execution back on the queue (runner.py).
_DATABASE_FAULTS = (psycopg.OperationalError, PoolTimeout, DatabaseUnavailable, ServerBusy)


class SimulationFailed(TrialFailed):
    """The bot or the simulator failed mid-conversation: the trial errors with this reason and the transcript
    so far."""

    def __init__(self, reason: str, simulation: Simulation) -> None:
        super().__init__(reason)
        self.simulation = simulation


@dataclass
class Simulation:
    """What happened: the conversation as the bot saw it, and why it stopped."""

    max_turns: int
    transcript: list[dict[str, str]] = field(default_factory=list)
    stop_reason: str = "running"
    closing: str | None = None  # the simulator's last words when it ended (not sent to the bot)
    duration_ms: float = 0.0

    @property
    def user_turns(self) -> int:
        return sum(1 for t in self.transcript if t["role"] == "user")

    def to_dict(self) -> dict[str, Any]:
        return {
            "transcript": self.transcript,
            "user_turns": self.user_turns,
            "max_turns": self.max_turns,
            "stop_reason": self.stop_reason,
            "closing": self.closing,
            "duration_ms": round(self.duration_ms, 1),
        }


def brief(spec: SimulatedUser, variables: dict[str, Any]) -> str:
    """The simulator's first message: the case in words (for a real model) and as JSON (for the offline one)."""
    persona = spec.persona
    script: list[str] | dict[str, Any] | None = persona.script
    if isinstance(script, list):
        script = [render(line, variables) for line in script]
    elif isinstance(script, dict):
        script = {k: render(v, variables) if isinstance(v, str) else v for k, v in script.items()}
    data = {
        "persona": render(persona.description, variables),
        "name": persona.name,
        "scenario": render(spec.scenario, variables),
        "opening": render(persona.opening, variables) if persona.opening else None,
        "script": script,
    }
    lines = [f"You are {data['name'] or 'the customer'}: {data['persona']}", f"Scenario: {data['scenario']}"]
    if data["opening"]:
        lines.append(f"Start with: {data['opening']}")
    if isinstance(script, list):
        lines.append("Say these lines, in order, one per message: " + " | ".join(script))
    elif isinstance(script, dict):
        lines.append("Facts you give when asked: " + "; ".join(f"{k}: {v}" for k, v in script.items()))
    lines += ["Write your first message to the bot now.", "", BRIEF_MARK + " " + json.dumps(data, ensure_ascii=False)]
    return "\n".join(lines)


class UserSimulator:
    """The simulator bot, compiled once per process (cached with the engine's graphs)."""

    def __init__(self, engine: RunEngine, *, config: Path = SIMULATOR_CONFIG) -> None:
        self.engine = engine
        self.config = BotConfig.model_validate(json.loads(config.read_text(encoding="utf-8")))

    def open(self, tenant_id: str, metadata: dict[str, Any]) -> GraphConversation:
        graph = self.engine.cache.get(_CACHE_KEY, 0, self.config)
        meta = {**metadata, "role": "user_simulator"}
        return GraphConversation(graph, self.engine.cache.deps.checkpointer, tenant_id, tool_mocks={}, metadata=meta)


async def _last_reply(conversation: Conversation) -> tuple[str, bool]:
    """The newest AI text of a conversation (empty if its last turn produced none) and whether it escalated."""
    values = await conversation.state()
    text = ""
    for m in reversed(values.get("messages") or []):
        if m.get("type") == "human":
            break
        if m.get("type") == "ai" and message_text(m.get("content")).strip():
            text = message_text(m.get("content")).strip()
            break
    return text, bool(values.get("escalated"))


async def simulate(
    simulator: UserSimulator,
    bot: Conversation,
    tenant_id: str,
    *,
    spec: SimulatedUser,
    variables: dict[str, Any],
    metadata: dict[str, Any],
) -> tuple[Observation, Simulation]:
    """Play the simulated user against the bot; the bot's observation and the simulation. Closes both."""
    sim = Simulation(max_turns=spec.max_turns)
    try:
        user = simulator.open(tenant_id, metadata)
    except Exception as exc:  # e.g. the simulator's model has no key here
        await bot.close()
        sim.stop_reason = "error"
        raise SimulationFailed(f"the user simulator cannot start: {_detail(exc)}", sim) from None
    started = time.perf_counter()
    try:
        line = await _simulator_says(user, brief(spec, variables), sim)
        while True:
            if END_MARK in line:
                sim.stop_reason, sim.closing = "simulator_done", line.replace(END_MARK, "").strip() or None
                break
            if sim.user_turns >= spec.max_turns:
                sim.stop_reason = "max_turns"
                break
            sim.transcript.append({"role": "user", "content": line})
            try:
                await bot.say(line)
            except _DATABASE_FAULTS:
                raise  # not the bot's fault: the execution goes back to the queue
            except Exception as exc:  # the bot's run failed: the trial errors, with the transcript so far
                sim.stop_reason = "error"
                raise SimulationFailed(f"the bot's run failed: {_detail(exc)}", sim) from None
            reply, escalated = await _last_reply(bot)
            sim.transcript.append({"role": "assistant", "content": reply})
            if escalated:
                sim.stop_reason = "escalated"
                break
            if not reply:
                sim.stop_reason = "bot_ended"
                break
            line = await _simulator_says(user, reply, sim)
        sim.duration_ms = (time.perf_counter() - started) * 1000
        return await bot.observe(), sim
    finally:
        try:
            await user.close()
        finally:
            await bot.close()


async def _simulator_says(user: GraphConversation, heard: str, sim: Simulation) -> str:
    try:
        await user.say(heard)
        said, _ = await _last_reply(user)
    except _DATABASE_FAULTS:
        raise
    except Exception as exc:  # its model failed (a provider error, no key): the trial errors, saying so
        sim.stop_reason = "error"
        raise SimulationFailed(f"the user simulator failed: {_detail(exc)}", sim) from None
    if not said:
        return END_MARK  # a simulator that says nothing is done
    return said


def _detail(exc: Exception) -> str:
    return str(getattr(exc, "detail", None) or f"{type(exc).__name__}: {exc}")


def goal_completion(
    description: str,
    sim: Simulation | None,
    *,
    weight: float = 1.0,
    measured: dict[str, Measured] | None = None,
) -> Evaluation:
    """Whether the conversation met the expected outcome's description: the LLM-judged task_completion with
    the description as the task (chorus/evals/metrics_judged_conversation.py), measured beforehand into
    `measured`; with no judge model configured it is reported, never scored."""
    got = (measured or {}).get(request_key("task_completion", description, None)) or Measured(None, None, SKIPPED)
    error = isinstance(got, MetricError)
    return Evaluation("goal_completion", "goal_completion", got.score, got.passed, got.reasoning, weight, error=error)


def outcome_requests(simulated_user: dict[str, Any]) -> list[tuple[str, Any, float | None]]:
    """What the expected outcome needs measured by a model (ModelMetrics.measure) before it is scored."""
    spec = SimulatedUser.model_validate(simulated_user)
    found = model_requests(list(spec.expected_outcome.assertions), [])
    if spec.expected_outcome.description:
        found.append(("task_completion", spec.expected_outcome.description, None))
    return found


def outcome_evaluations(
    simulated_user: dict[str, Any],
    obs: Observation,
    sim: Simulation | None,
    measured: dict[str, Measured] | None = None,
) -> list[Evaluation]:
    """The expected outcome's checks: its assertions on the whole conversation, and goal completion when it
    describes the outcome in words."""
    spec = SimulatedUser.model_validate(simulated_user)
    found = [evaluate(a, obs, measured) for a in spec.expected_outcome.assertions]
    if spec.expected_outcome.description:
        found.append(goal_completion(spec.expected_outcome.description, sim, measured=measured))
    return found
