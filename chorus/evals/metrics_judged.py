"""The metrics measured with a model: the LLM-judged ones (DeepEval's definitions and formulas; the judge gives
structured verdicts, the score is computed here), the embedding metric and the retrieval metrics. They are
measured before a trial is scored (`ModelMetrics.measure`), because they are asynchronous; scoring then reads
their results. Formulas: docs/evals.md, "LLM-judged metrics". No judge configured: every judged metric is
"skipped: no judge model" (unmeasured), never scored."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg_pool import PoolTimeout

from chorus.agents.errors import ChorusError, DatabaseUnavailable, ServerBusy
from chorus.agents.knowledge.embedders import Embedder, configured_model, get_embedder
from chorus.evals import metrics_judged_conversation as conversation
from chorus.evals.judge import Judge, JudgeFailed
from chorus.evals.metrics_deterministic import Measured
from chorus.evals.metrics_embedding import check_expected, semantic_similarity
from chorus.evals.metrics_retrieval import check_labels, retrieval_precision, retrieval_recall
from chorus.evals.metrics_retrieval import weighted_cumulative_precision as wcp
from chorus.evals.observation import Observation

log = logging.getLogger(__name__)
DEFAULT_THRESHOLD = 0.5  # DeepEval's default for each judged metric
SKIPPED = "skipped: no judge model"
# The judge cache and the vault are in Postgres: their faults are the database's, not a metric's.
DATABASE_FAULTS = (psycopg.Error, PoolTimeout, DatabaseUnavailable, ServerBusy)


@dataclass(frozen=True)
class MetricError(Measured):
    """A metric that could not be measured because something failed (the judge, the embedder): unmeasured,
    reported with status "error" and the reason."""


@dataclass(frozen=True)
class CaseInputs:
    """What the judged metrics read of a trial and its case."""

    input: str  # the last user turn
    output: str  # the bot's answer to it
    user_turns: list[str]
    answers: list[str]
    retrieval_context: list[str]  # the knowledge tools' passages, then conversation_context.retrieval_context
    context: list[str]  # conversation_context.context (the ground truth of hallucination)
    expected_values: dict[str, Any]
    conversation_context: dict[str, Any]
    obs: Observation

    @staticmethod
    def of(case: dict[str, Any], obs: Observation) -> CaseInputs:
        ctx = case.get("conversation_context") or {}
        users = list(obs.user_turns) or [case.get("user_input") or ""]
        return CaseInputs(
            input=users[-1] if users else "",
            output=obs.output,
            user_turns=users,
            answers=list(obs.answers),
            retrieval_context=[r.content for r in obs.retrieved if r.content] + _texts(ctx.get("retrieval_context")),
            context=_texts(ctx.get("context")),
            expected_values=case.get("expected_values") or {},
            conversation_context=ctx,
            obs=obs,
        )

    def expected_output(self, value: Any) -> str | None:
        text = value if isinstance(value, str) else self.expected_values.get("expected_output")
        return text if isinstance(text, str) and text.strip() else None


def _texts(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value] if value.strip() else []
    if isinstance(value, list):
        return [str(v) for v in value if str(v).strip()]
    return []


def sentences(text: str) -> list[str]:
    """A text's sentences (split after . ! ? and at line breaks)."""
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+|\n+", text) if s.strip()]


def _bounded(name: str, score: float, bar: float, passed: bool, detail: str) -> Measured:
    return Measured(
        score, passed, f"{name} {score:.3f} (passes at {'≤' if name == 'hallucination' else '≥'} {bar:g}); {detail}"
    )


def _failing(verdicts: list[Any], bad: tuple[str, ...]) -> str:
    reasons = [f"#{i}: {v.reason or v.verdict}" for i, v in enumerate(verdicts, 1) if v.verdict in bad][:3]
    return "; ".join(reasons)


async def hallucination(judge: Judge, inp: CaseInputs, value: Any, threshold: float | None) -> Measured:
    """Contexts the answer contradicts / contexts; passes at or BELOW the threshold (DeepEval)."""
    contexts = _texts(value) or inp.context
    if not contexts:
        return Measured(None, None, "no context to check against: give conversation_context.context or a value")
    verdicts = await judge.verdicts(
        metric="hallucination",
        step="context_verdicts",
        prompt=(
            f"An assistant answered:\n<answer>\n{inp.output}\n</answer>\n\nFor each numbered context, answer 'no' "
            "if the answer contradicts that context, otherwise 'yes' (it agrees, or the context is about something "
            "the answer does not address). Judge only against the context, not your own knowledge. Give the "
            "reason of each 'no'."
        ),
        items=contexts,
    )
    contradicted = sum(1 for v in verdicts if v.verdict == "no")
    score = contradicted / len(verdicts)
    bar = DEFAULT_THRESHOLD if threshold is None else threshold
    detail = f"{contradicted} of {len(verdicts)} contexts contradicted"
    if contradicted:
        detail += f": {_failing(verdicts, ('no',))}"
    return _bounded("hallucination", score, bar, score <= bar, detail)


async def answer_relevancy(judge: Judge, inp: CaseInputs, value: Any, threshold: float | None) -> Measured:
    """Relevant statements of the answer / statements of the answer ('idk' counts as relevant, as DeepEval)."""
    statements = await judge.statements(
        metric="answer_relevancy",
        step="statements",
        prompt=(
            f"Break this text into its individual statements (short, self-contained sentences):\n<text>\n"
            f"{inp.output}\n</text>"
        ),
    )
    if not statements:
        return Measured(None, None, "nothing to judge: the answer holds no statement")
    verdicts = await judge.verdicts(
        metric="answer_relevancy",
        step="statement_verdicts",
        prompt=(
            f"A user asked:\n<input>\n{inp.input}\n</input>\n\nFor each numbered statement of the assistant's "
            "answer, answer 'yes' if it is relevant to what the user asked, 'no' if it is irrelevant, 'idk' if it "
            "is ambiguous or only supporting. Give the reason of each 'no'."
        ),
        items=statements,
    )
    relevant = sum(1 for v in verdicts if v.verdict != "no")
    score = relevant / len(verdicts)
    bar = DEFAULT_THRESHOLD if threshold is None else threshold
    detail = f"{relevant} of {len(verdicts)} statements relevant"
    if relevant < len(verdicts):
        detail += f": {_failing(verdicts, ('no',))}"
    return _bounded("answer relevancy", score, bar, score >= bar, detail)


async def faithfulness(judge: Judge, inp: CaseInputs, value: Any, threshold: float | None) -> Measured:
    """Claims of the answer not contradicted by the retrieval context / claims ('idk' counts as truthful, as
    DeepEval)."""
    if not inp.retrieval_context:
        return Measured(None, None, "no retrieval context: the bot retrieved nothing and the case gives none")
    claims = await judge.statements(
        metric="faithfulness",
        step="claims",
        prompt=(
            f"List every factual claim made in this text, each as one short sentence (leave out greetings and "
            f"questions):\n<text>\n{inp.output}\n</text>"
        ),
    )
    if not claims:
        return Measured(None, None, "nothing to judge: the answer makes no claim")
    context = "\n\n".join(f"[{i}] {c}" for i, c in enumerate(inp.retrieval_context, 1))
    verdicts = await judge.verdicts(
        metric="faithfulness",
        step="claim_verdicts",
        prompt=(
            f"The retrieval context:\n<context>\n{context}\n</context>\n\nFor each numbered claim, answer 'no' if "
            "the retrieval context contradicts it, 'yes' if the context supports it, 'idk' if the context says "
            "nothing about it. Judge only against the context. Give the reason of each 'no'."
        ),
        items=claims,
    )
    truthful = sum(1 for v in verdicts if v.verdict != "no")
    score = truthful / len(verdicts)
    bar = DEFAULT_THRESHOLD if threshold is None else threshold
    detail = f"{truthful} of {len(verdicts)} claims faithful to the retrieval context"
    if truthful < len(verdicts):
        detail += f": {_failing(verdicts, ('no',))}"
    return _bounded("faithfulness", score, bar, score >= bar, detail)


async def contextual_precision(judge: Judge, inp: CaseInputs, value: Any, threshold: float | None) -> Measured:
    """Weighted cumulative precision of the ranked retrieval context: (1/R)·Σ_k precision@k·r_k, where r_k is
    1 when node k was useful to reach the expected output (judge: 'yes') and R the useful nodes; 0 if none."""
    expected = inp.expected_output(value)
    if expected is None:
        return Measured(None, None, "no expected output: give it as the value or expected_values.expected_output")
    if not inp.retrieval_context:
        return Measured(None, None, "no retrieval context: the bot retrieved nothing and the case gives none")
    verdicts = await judge.verdicts(
        metric="contextual_precision",
        step="node_verdicts",
        prompt=(
            f"A user asked:\n<input>\n{inp.input}\n</input>\n\nThe expected answer:\n<expected>\n{expected}\n"
            "</expected>\n\nFor each numbered passage that was retrieved (in rank order), answer 'yes' if it was "
            "useful to arrive at the expected answer, otherwise 'no'."
        ),
        items=inp.retrieval_context,
    )
    relevant = [v.verdict == "yes" for v in verdicts]
    score = wcp(relevant) or 0.0
    bar = DEFAULT_THRESHOLD if threshold is None else threshold
    ranks = [k for k, r in enumerate(relevant, 1) if r]
    return _bounded(
        "contextual precision",
        score,
        bar,
        score >= bar,
        f"useful passages at ranks {ranks or 'none'} of {len(relevant)}",
    )


async def contextual_recall(judge: Judge, inp: CaseInputs, value: Any, threshold: float | None) -> Measured:
    """Sentences of the expected output attributable to the retrieval context / sentences of the expected
    output (its sentences are split by Chorus, so the denominator does not depend on the judge)."""
    expected = inp.expected_output(value)
    if expected is None:
        return Measured(None, None, "no expected output: give it as the value or expected_values.expected_output")
    if not inp.retrieval_context:
        return Measured(None, None, "no retrieval context: the bot retrieved nothing and the case gives none")
    parts = sentences(expected)
    context = "\n\n".join(f"[{i}] {c}" for i, c in enumerate(inp.retrieval_context, 1))
    verdicts = await judge.verdicts(
        metric="contextual_recall",
        step="sentence_verdicts",
        prompt=(
            f"The retrieval context:\n<context>\n{context}\n</context>\n\nFor each numbered sentence of the "
            "expected answer, answer 'yes' if it can be attributed to the retrieval context, otherwise 'no'."
        ),
        items=parts,
    )
    attributable = sum(1 for v in verdicts if v.verdict == "yes")
    score = attributable / len(verdicts)
    bar = DEFAULT_THRESHOLD if threshold is None else threshold
    return _bounded(
        "contextual recall",
        score,
        bar,
        score >= bar,
        f"{attributable} of {len(verdicts)} expected sentences attributable",
    )


async def _role(judge: Judge, inp: CaseInputs, value: Any, threshold: float | None) -> Measured:
    role = value if isinstance(value, str) else inp.conversation_context.get("chatbot_role")
    return await conversation.role_adherence(
        judge, user_turns=inp.user_turns, answers=inp.answers, role=role, threshold=threshold
    )


async def _retention(judge: Judge, inp: CaseInputs, value: Any, threshold: float | None) -> Measured:
    return await conversation.knowledge_retention(
        judge, user_turns=inp.user_turns, answers=inp.answers, threshold=threshold
    )


async def _completeness(judge: Judge, inp: CaseInputs, value: Any, threshold: float | None) -> Measured:
    return await conversation.conversation_completeness(
        judge, user_turns=inp.user_turns, answers=inp.answers, threshold=threshold
    )


async def _task(judge: Judge, inp: CaseInputs, value: Any, threshold: float | None) -> Measured:
    task = value if isinstance(value, str) else inp.expected_values.get("expected_outcome")
    return await conversation.task_completion(
        judge,
        user_turns=inp.user_turns,
        answers=inp.answers,
        tool_calls=list(inp.obs.tool_calls),
        task=task if isinstance(task, str) else None,
        threshold=threshold,
    )


JudgedMeasure = Callable[[Judge, CaseInputs, Any, float | None], Awaitable[Measured]]


def _text_or_none(what: str) -> Callable[[Any], None]:
    def check(value: Any) -> None:
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise ValueError(f"value must be {what} (a non-empty string), or none to take it from the case")

    return check


def _contexts(value: Any) -> None:
    if value is not None and not _texts(value):
        raise ValueError("value must be the contexts (a list of texts), or none to use conversation_context.context")


def _no_value(value: Any) -> None:
    if value not in (None, True):
        raise ValueError("takes no value")


# name -> (check of an assertion's value, measure)
JUDGED: dict[str, tuple[Callable[[Any], None], JudgedMeasure]] = {
    "hallucination": (_contexts, hallucination),
    "answer_relevancy": (_no_value, answer_relevancy),
    "faithfulness": (_no_value, faithfulness),
    "contextual_precision": (_text_or_none("the expected output"), contextual_precision),
    "contextual_recall": (_text_or_none("the expected output"), contextual_recall),
    "role_adherence": (_text_or_none("the chatbot's role"), _role),
    "knowledge_retention": (_no_value, _retention),
    "conversation_completeness": (_no_value, _completeness),
    "task_completion": (_text_or_none("the task"), _task),
}
EMBEDDING = {"semantic_similarity": check_expected}
RETRIEVAL = {
    "retrieval_precision": (check_labels, retrieval_precision),
    "retrieval_recall": (check_labels, retrieval_recall),
}
# Every metric measured here, with the check of its value (chorus/evals/schemas.py accepts them as assertion
# types and as evaluator_types).
MODEL_METRICS: dict[str, Callable[[Any], None]] = {
    **{name: check for name, (check, _m) in JUDGED.items()},
    **EMBEDDING,
    **{name: check for name, (check, _m) in RETRIEVAL.items()},
}


def evaluator_threshold(kind: str, expected_values: dict[str, Any] | None) -> float | None:
    """An evaluator type's threshold from the case's expected_values, as the seed writes it
    (`{"faithfulness": {"min_score": 0.8}}`; `threshold`, and for hallucination `max_score`, too)."""
    given = (expected_values or {}).get(kind)
    if not isinstance(given, dict):
        return None
    for name in ("threshold", "max_score" if kind == "hallucination" else "min_score"):
        value = given.get(name)
        if isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= 1:
            return float(value)
    return None


def request_key(kind: str, value: Any, threshold: float | None) -> str:
    """Which measurement an assertion (or an evaluator type: no value, no threshold) reads."""
    return json.dumps([kind, value, threshold], sort_keys=True, default=str)


def _negated(result: Measured) -> Measured:
    if result.passed is None:
        return result
    score = None if result.score is None else 1.0 - result.score
    return Measured(score, not result.passed, f"negated: {result.reasoning}")


class ModelMetrics:
    """One execution's means of measuring: its judge (None: judged metrics are skipped) and the embedder."""

    def __init__(self, *, judge: Judge | None, embedding_model: str | None = None) -> None:
        self.judge = judge
        self.embedding_model = embedding_model
        self._embedder: Embedder | None = None

    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = get_embedder(self.embedding_model or configured_model())
        return self._embedder

    async def measure(
        self, case: dict[str, Any], obs: Observation, requests: list[tuple[str, Any, float | None]]
    ) -> dict[str, Measured]:
        """Each requested (type, value, threshold) measured on the trial, keyed by `request_key`."""
        inputs = CaseInputs.of(case, obs)
        unique = {request_key(*r): r for r in requests}
        results = await asyncio.gather(*(self._one(k, v, t, inputs) for k, v, t in unique.values()))
        return dict(zip(unique, results, strict=True))

    async def _one(self, kind: str, value: Any, threshold: float | None, inp: CaseInputs) -> Measured:
        base = kind.removeprefix("not-")
        try:
            if base in JUDGED:
                if self.judge is None:
                    return Measured(None, None, SKIPPED)
                result = await JUDGED[base][1](self.judge, inp, value, threshold)
            elif base in EMBEDDING:
                result = await semantic_similarity(
                    self.embedder(),
                    output=inp.output,
                    value=value,
                    expected_values=inp.expected_values,
                    threshold=threshold,
                )
            elif base in RETRIEVAL:
                result = RETRIEVAL[base][1](value, threshold, inp.obs, inp.expected_values)
            else:
                return MetricError(None, None, f"unknown metric '{kind}'")
        except DATABASE_FAULTS:
            raise  # not the metric's fault: the execution goes back to the queue and resumes (runner.py)
        except JudgeFailed as exc:
            return MetricError(None, None, f"error: {exc}")
        except ChorusError as exc:  # the embedder could not be built or reached
            return MetricError(None, None, f"error: {exc.detail}")
        except Exception as exc:  # a remote embedder's failure: this metric errors, the trial goes on
            log.warning("a model metric failed", exc_info=True)
            return MetricError(None, None, f"error: {type(exc).__name__}: {exc}")
        return _negated(result) if kind.startswith("not-") else result
