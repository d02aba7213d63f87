"""Verdicts from metric results: weighted scores and thresholds, assertion sets, unmeasured metrics, pass
rates over repeated trials with Wilson intervals, flaky cases, the suite's minimum pass rate."""

from __future__ import annotations

import math
from typing import Any

import pytest

from chorus.evals.observation import Observation
from chorus.evals.runner import judge_trial
from chorus.evals.scoring import combine, summarize, wilson


def _case(
    assertions: list[dict[str, Any]], threshold: float | None = None, types: list[str] | None = None
) -> dict[str, Any]:
    return {"assertions": assertions, "threshold": threshold, "evaluator_types": types or []}


OBS = Observation(output="Your order has shipped", tokens=10)


def test_without_a_threshold_every_check_must_pass() -> None:
    result = judge_trial(
        _case([{"type": "contains", "value": "shipped"}, {"type": "contains", "value": "UPS"}]),
        OBS,
        default_threshold=None,
    )
    assert result["passed"] is False and result["score"] == 0.5
    assert "contains: the answer does not contain 'UPS'" in result["reasoning"]


def test_a_threshold_passes_on_the_weighted_score() -> None:
    checks = [{"type": "contains", "value": "shipped", "weight": 3}, {"type": "contains", "value": "UPS"}]
    assert judge_trial(_case(checks, threshold=0.7), OBS, default_threshold=None)["score"] == 0.75
    assert judge_trial(_case(checks, threshold=0.7), OBS, default_threshold=None)["passed"] is True
    assert judge_trial(_case(checks, threshold=0.8), OBS, default_threshold=None)["passed"] is False
    assert judge_trial(_case(checks), OBS, default_threshold=0.7)["passed"] is True  # the suite's default


def test_an_assertion_set_is_one_check() -> None:
    either = {
        "type": "assert-set",
        "threshold": 0.5,
        "assert": [{"type": "contains", "value": "shipped"}, {"type": "contains", "value": "UPS"}],
        "metric": "mentions shipping",
    }
    result = judge_trial(_case([either]), OBS, default_threshold=None)
    assert result["passed"] is True
    assert result["evaluations"][0]["metric"] == "mentions shipping" and result["evaluations"][0]["score"] == 0.5


def test_a_judged_metric_without_a_judge_is_skipped_never_a_pass() -> None:
    result = judge_trial(
        _case([{"type": "contains", "value": "shipped"}], types=["faithfulness"]), OBS, default_threshold=None
    )
    assert result["passed"] is None and result["score"] is None
    judged = result["evaluations"][1]
    assert judged == {**judged, "status": "unmeasured", "reasoning": "skipped: no judge model", "score": None}
    summary = summarize([{"id": 1, "name": "c"}], [{"eval_id": 1, "result": result}], min_pass_rate=0.0)
    metric = summary["metrics"]["faithfulness"]
    assert metric == {"mean": None, "pass_rate": None, "measured": 0, "unmeasured": 1}
    assert summary["cases"][0]["unmeasured"] == 1 and summary["passed_trials"] == 0
    assert not any(isinstance(v, float) and math.isnan(v) for v in metric.values())


def test_combine_with_no_weight_and_unmeasured() -> None:
    assert combine([(1.0, True, 0.0), (0.0, False, 0.0)], None) == (0.0, False)
    assert combine([(1.0, True, 1.0), (None, None, 1.0)], 0.1) == (None, None)


def test_wilson_interval() -> None:
    low, high = wilson(8, 10) or (0, 0)
    assert (low, high) == (pytest.approx(0.4902, abs=1e-4), pytest.approx(0.9433, abs=1e-4))
    assert wilson(0, 0) is None
    assert wilson(5, 5) == (pytest.approx(0.5655, abs=1e-4), 1.0)


def test_repeated_trials_flaky_cases_and_the_minimum_pass_rate() -> None:
    trials = [
        {"eval_id": 1, "result": {"passed": p, "score": float(p), "evaluations": []}} for p in (True, True, False)
    ]
    trials += [{"eval_id": 2, "result": {"passed": True, "score": 1.0, "evaluations": []}} for _ in range(3)]
    cases = [{"id": 1, "name": "sometimes"}, {"id": 2, "name": "always"}]
    summary = summarize(cases, trials, min_pass_rate=0.8)
    first = summary["cases"][0]
    assert (first["trials"], first["passed"], first["failed"], first["flaky"]) == (3, 2, 1, True)
    assert first["pass_rate"] == pytest.approx(2 / 3)
    assert summary["flaky_cases"] == [1] and summary["pass_rate"] == pytest.approx(5 / 6)
    assert summary["passed"] is True
    assert summarize(cases, trials, min_pass_rate=0.9)["passed"] is False
