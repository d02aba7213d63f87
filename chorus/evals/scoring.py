"""From metric results to verdicts: a trial's score and pass, a case's pass rate over its trials (with a
Wilson interval, flaky when it both passed and failed), a suite's summary per metric and per case.

"Unmeasured" (a metric with no score: a skipped judge, no token usage) is never a pass and never averaged:
a trial with an unmeasured metric is unmeasured itself, and counts as not passed in every rate."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from chorus.evals.metrics_deterministic import Measured, measure
from chorus.evals.metrics_judged import MODEL_METRICS, SKIPPED, MetricError, evaluator_threshold, request_key
from chorus.evals.observation import Observation
from chorus.evals.schemas import Assertion, AssertionSet

Z95 = 1.959964


@dataclass(frozen=True)
class Evaluation:
    metric: str
    type: str
    score: float | None
    passed: bool | None
    reasoning: str
    weight: float = 1.0
    error: bool = False  # the metric could not be measured because something failed (a judge, an embedder)

    def to_dict(self) -> dict[str, Any]:
        unmeasured = "error" if self.error else "unmeasured"
        return {
            "metric": self.metric,
            "type": self.type,
            "score": self.score,
            "passed": self.passed,
            "status": unmeasured if self.passed is None else ("passed" if self.passed else "failed"),
            "reasoning": self.reasoning,
            "weight": self.weight,
        }


def combine(
    parts: list[tuple[float | None, bool | None, float]], threshold: float | None
) -> tuple[float | None, bool | None]:
    """Weighted score and pass of (score, passed, weight) parts: with `threshold`, passes when the weighted
    score reaches it; without, when every part passes. Any unmeasured part: unmeasured."""
    if any(p is None or s is None for s, p, _ in parts):
        return None, None
    total = sum(w for _, _, w in parts)
    score = sum((s or 0.0) * w for s, _, w in parts) / total if total else (1.0 if all(p for _, p, _ in parts) else 0.0)
    if threshold is not None:
        return score, score >= threshold
    return score, all(bool(p) for _, p, _ in parts)


def evaluate(
    assertion: Assertion | AssertionSet, obs: Observation, measured: dict[str, Measured] | None = None
) -> Evaluation:
    """An assertion's evaluation; `measured` holds the model metrics measured beforehand (ModelMetrics.measure:
    judged, embedding, retrieval), keyed by `request_key`."""
    if isinstance(assertion, AssertionSet):
        inner = [evaluate(a, obs, measured) for a in assertion.assertions]
        score, passed = combine([(e.score, e.passed, e.weight) for e in inner], assertion.threshold)
        why = "; ".join(f"{e.metric}: {e.reasoning}" for e in inner)
        return Evaluation(assertion.metric or "assert-set", "assert-set", score, passed, why, assertion.weight)
    got: Measured
    if assertion.type.removeprefix("not-") in MODEL_METRICS:
        key = request_key(assertion.type, assertion.value, assertion.threshold)
        got = (measured or {}).get(key) or Measured(None, None, SKIPPED)
    else:
        got = measure(assertion.type, assertion.value, assertion.threshold, obs)
    return Evaluation(
        assertion.metric or assertion.type,
        assertion.type,
        got.score,
        got.passed,
        got.reasoning,
        assertion.weight,
        error=isinstance(got, MetricError),
    )


def model_requests(
    assertions: list[Assertion | AssertionSet],
    evaluator_types: list[str],
    expected_values: dict[str, Any] | None = None,
) -> list[tuple[str, Any, float | None]]:
    """What ModelMetrics.measure must measure for a case: its model-metric assertions (in sets too) and its
    evaluator types (no value; the threshold its `expected_values` gives it, else the metric's default)."""
    found = [(t, None, evaluator_threshold(t, expected_values)) for t in evaluator_types]
    for a in assertions:
        if isinstance(a, AssertionSet):
            found += model_requests(list(a.assertions), [])
        elif a.type.removeprefix("not-") in MODEL_METRICS:
            found.append((a.type, a.value, a.threshold))
    return found


def judged_evaluations(
    types: list[str], measured: dict[str, Measured] | None = None, expected_values: dict[str, Any] | None = None
) -> list[Evaluation]:
    """A case's evaluator types: measured beforehand, or "skipped: no judge model" (reported, never scored)."""
    out = []
    for t in types:
        key = request_key(t, None, evaluator_threshold(t, expected_values))
        got = (measured or {}).get(key) or Measured(None, None, SKIPPED)
        out.append(Evaluation(t, t, got.score, got.passed, got.reasoning, error=isinstance(got, MetricError)))
    return out


def judged_skipped(types: list[str]) -> list[Evaluation]:
    """LLM-judged metrics with no judge configured: reported, never scored."""
    return judged_evaluations(types)


def wilson(passes: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    """The Wilson score interval of a pass rate (95 %); None with no trials."""
    if n == 0:
        return None
    p = passes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def summarize(cases: list[dict[str, Any]], trials: list[dict[str, Any]], *, min_pass_rate: float) -> dict[str, Any]:
    """The summary of an execution: `cases` ({id, name, repeat}), `trials` (result rows: eval_id and result)."""
    by_case: dict[int, list[dict[str, Any]]] = {c["id"]: [] for c in cases}
    for row in trials:
        by_case.setdefault(row["eval_id"], []).append(row["result"] or {})
    per_case = []
    per_metric: dict[str, dict[str, list[Any]]] = {}
    total_pass = total_n = 0
    for case in cases:
        results = by_case.get(case["id"], [])
        passes = sum(1 for r in results if r.get("passed") is True)
        fails = sum(1 for r in results if r.get("passed") is False)
        unmeasured = sum(1 for r in results if r.get("passed") is None)
        n = len(results)
        total_pass, total_n = total_pass + passes, total_n + n
        interval = wilson(passes, n)
        per_case.append(
            {
                "eval_id": case["id"],
                "name": case.get("name"),
                "trials": n,
                "passed": passes,
                "failed": fails,
                "unmeasured": unmeasured,
                "errored": sum(1 for r in results if r.get("error")),
                "pass_rate": passes / n if n else None,
                "pass_rate_interval": list(interval) if interval else None,
                "flaky": passes > 0 and fails > 0,
                "mean_score": _mean([r["score"] for r in results if isinstance(r.get("score"), int | float)]),
            }
        )
        for r in results:
            for e in r.get("evaluations", []):
                m = per_metric.setdefault(e["metric"], {"scores": [], "passes": [], "unmeasured": []})
                if e.get("passed") is None:
                    m["unmeasured"].append(1)
                else:
                    m["passes"].append(bool(e["passed"]))
                    if isinstance(e.get("score"), int | float):
                        m["scores"].append(float(e["score"]))
    metrics = {
        name: {
            "mean": _mean(m["scores"]),
            "pass_rate": (sum(m["passes"]) / len(m["passes"])) if m["passes"] else None,
            "measured": len(m["passes"]),
            "unmeasured": len(m["unmeasured"]),
        }
        for name, m in sorted(per_metric.items())
    }
    rate = total_pass / total_n if total_n else None
    interval = wilson(total_pass, total_n)
    return {
        "total_trials": total_n,
        "passed_trials": total_pass,
        "pass_rate": rate,
        "pass_rate_interval": list(interval) if interval else None,
        "min_pass_rate": min_pass_rate,
        "passed": rate is not None and rate >= min_pass_rate,
        "flaky_cases": [c["eval_id"] for c in per_case if c["flaky"]],
        "metrics": metrics,
        "cases": per_case,
    }
