"""POST /api/v1/evaluation/turn-conversation: judge one turn at once, with a case's checks, without a suite.

The turn is either a stored conversation's (`thread_id` and `turn`, the index of a user turn: 0 the first, -1
the last) — its user message, the bot's answer and the tool calls in between, read from the thread's state —
or given outright (`user_input`, `system_response`, `tool_calls`). A stored turn has no latency or token
figures of its own, so latency and token budgets are unmeasured there (never a pass)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from chorus.agents.errors import InvalidInput
from chorus.agents.storage.database import Database
from chorus.agents.tools.registry import SecretResolver
from chorus.evals.observation import Observation, ToolCall
from chorus.evals.runner import judge_trial, measure_model_metrics, model_metrics_of
from chorus.evals.schemas import MAX_TEXT, Checks, EvaluatorConfig
from chorus.evals.target import message_text
from chorus.runs.threads_repository import ThreadRepository


class GivenToolCall(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=128)
    arguments: dict[str, Any] = Field(default_factory=dict)


class TurnEvaluationRequest(Checks):
    """A case's checks (`assertions`, `evaluator_types`, `expected_values`, `threshold`, …) and the turn they
    judge: `thread_id` (with `turn`), or `user_input` with `system_response` (and `tool_calls`, `escalated`)."""

    user_input: str | None = Field(default=None, min_length=1, max_length=MAX_TEXT)
    thread_id: str | None = Field(default=None, max_length=64, description="a stored conversation of the tenant")
    turn: int = Field(default=-1, ge=-1000, le=1000, description="which user turn: 0 the first, -1 the last")
    system_response: str | None = Field(default=None, max_length=MAX_TEXT)
    tool_calls: list[GivenToolCall] = Field(default_factory=list, max_length=100)
    escalated: bool = False
    evaluator_config: EvaluatorConfig | None = Field(
        default=None, description="the judge (and embedding model) of the judged metrics, as a suite's"
    )

    @model_validator(mode="after")
    def _one_turn(self) -> TurnEvaluationRequest:
        if (self.thread_id is None) == (self.system_response is None):
            raise ValueError(
                "give either thread_id (a stored conversation, with an optional turn) or system_response (with"
                " user_input) to judge"
            )
        if self.thread_id is not None and (self.user_input or self.tool_calls or self.escalated):
            raise ValueError("user_input, tool_calls and escalated come from the thread when thread_id is given")
        if self.system_response is not None and not self.user_input:
            raise ValueError("user_input is needed with system_response: the user message the response answers")
        if not self.has_checks():
            raise ValueError("a turn needs at least one assertion (or an evaluator type) to be judged by")
        return self


def given_observation(req: TurnEvaluationRequest) -> Observation:
    assert req.system_response is not None
    return Observation(
        output=req.system_response,
        answers=(req.system_response,),
        tool_calls=tuple(ToolCall(c.name, c.arguments) for c in req.tool_calls),
        escalated=req.escalated,
        latency_ms=None,
        tokens=None,
    )


def stored_turn(values: dict[str, Any], turn: int) -> tuple[str, Observation]:
    """The user message of user turn `turn` of a thread's state and what the bot did in answer to it."""
    messages: list[dict[str, Any]] = list(values.get("messages") or [])
    starts = [i for i, m in enumerate(messages) if m.get("type") == "human"]
    if not starts:
        raise InvalidInput(
            "the conversation has no user turn yet", errors=[{"path": "$.thread_id", "message": "no user message"}]
        )
    if not -len(starts) <= turn < len(starts):
        raise InvalidInput(
            f"turn {turn} does not exist: the conversation has {len(starts)} user turn(s) (0 to {len(starts) - 1},"
            " or -1 for the last)",
            errors=[{"path": "$.turn", "message": f"out of range (0..{len(starts) - 1})"}],
        )
    index = turn % len(starts)
    begin = starts[index]
    end = starts[index + 1] if index + 1 < len(starts) else len(messages)
    answer = ""
    calls: list[ToolCall] = []
    for m in messages[begin + 1 : end]:
        if m.get("type") != "ai":
            continue
        calls += [ToolCall(str(c.get("name")), dict(c.get("args") or {})) for c in m.get("tool_calls") or []]
        text = message_text(m.get("content"))
        if text.strip():
            answer = text
    last = index == len(starts) - 1
    observation = Observation(
        output=answer,
        answers=(answer,),
        tool_calls=tuple(calls),
        escalated=bool(values.get("escalated")) and last,
        latency_ms=None,
        tokens=None,
    )
    return message_text(messages[begin].get("content")), observation


async def evaluate_turn(
    req: TurnEvaluationRequest,
    *,
    tenant_id: str,
    threads: ThreadRepository,
    db: Database,
    secrets: SecretResolver | None,
) -> dict[str, Any]:
    """The turn's verdict: every check's evaluation, the weighted score and the pass, as a trial's result."""
    if req.thread_id is not None:
        thread = await threads.get(tenant_id, req.thread_id)  # 404: unknown, or another tenant's
        user_input, obs = stored_turn(thread.get("values") or {}, req.turn)
    else:
        assert req.user_input is not None
        user_input, obs = req.user_input, given_observation(req)
    case = req.model_dump(mode="json", by_alias=True)
    # The request's evaluator_config names the judge (as a suite's does); without one, judged metrics are skipped.
    settings = req.evaluator_config or EvaluatorConfig()
    metrics = model_metrics_of(settings, tenant_id=tenant_id, db=db, secrets=secrets)
    # Each judge call has its own hard timeout and bounded retries: a judge that fails errors its metric.
    measured = await measure_model_metrics(metrics, {**case, "user_input": user_input}, obs)
    result = judge_trial(case, obs, default_threshold=settings.default_threshold, measured=measured)
    return {"thread_id": req.thread_id, "turn": req.turn if req.thread_id else None, "user_input": user_input, **result}
