"""Each deterministic metric on observed trials: what passes, what fails, the score, negation, and values a
case may not be created with."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from chorus.evals.metrics_deterministic import measure
from chorus.evals.observation import Observation, ToolCall
from chorus.evals.schemas import Assertion

ANSWER = 'Your order ORD-1001 has shipped with UPS. {"x": 1}'
CALLS = (
    ToolCall("lookup_customer", {"email": "a@b.c"}),
    ToolCall("fetch_order_status", {"order_id": "ORD-1001", "verbose": True}),
    ToolCall("initiate_refund", {"order_id": "ORD-1001", "refund_amount": 20}),
)
OBS = Observation(output=ANSWER, tool_calls=CALLS, escalated=False, latency_ms=120.0, tokens=300)


@pytest.mark.parametrize(
    ("kind", "value", "threshold", "passed", "score"),
    [
        ("equals", ANSWER, None, True, 1.0),
        ("equals", "Your order", None, False, 0.0),
        ("contains", "shipped", None, True, 1.0),
        ("contains", "SHIPPED", None, False, 0.0),
        ("icontains", "SHIPPED", None, True, 1.0),
        ("contains-any", ["FedEx", "UPS"], None, True, 1.0),
        ("contains-any", ["FedEx", "DHL"], None, False, 0.0),
        ("contains-all", ["UPS", "ORD-1001", "FedEx"], None, False, 2 / 3),
        ("icontains-all", ["ups", "ord-1001"], None, True, 1.0),
        ("regex", r"ORD-\d{4}", None, True, 1.0),
        ("regex", r"^\d+$", None, False, 0.0),
        ("starts-with", "Your order", None, True, 1.0),
        ("starts-with", "order", None, False, 0.0),
        ("tool_called", "fetch_order_status", None, True, 1.0),
        ("tool_called", {"name": "fetch_order_status", "arguments": {"order_id": "ORD-1001"}}, None, True, 1.0),
        ("tool_called", {"name": "fetch_order_status", "arguments": {"order_id": "ORD-9"}}, None, False, 0.0),
        ("tool_called", "escalate", None, False, 0.0),
        ("tool_sequence", ["lookup_customer", "initiate_refund"], None, True, 1.0),
        ("tool_sequence", ["initiate_refund", "lookup_customer"], None, False, 0.5),
        ("tool_correctness", ["fetch_order_status"], None, True, 1.0),
        ("tool_correctness", ["fetch_order_status", "escalate"], None, True, 0.5),  # DeepEval's default 0.5
        ("tool_correctness", ["fetch_order_status", "escalate"], 0.8, False, 0.5),
        ("tool_correctness", {"tools": ["fetch_order_status"], "exact_match": True}, None, False, 0.0),
        (
            "tool_correctness",
            {"tools": ["initiate_refund", "lookup_customer", "fetch_order_status"], "consider_ordering": True},
            None,
            True,
            2 / 3,
        ),
        ("escalated", None, None, False, 0.0),
        ("not-escalated", None, None, True, 1.0),
        ("latency", 500, None, True, 1.0),
        ("latency", 100, None, False, 0.0),
        ("token_budget", 300, None, True, 1.0),
        ("token_budget", 299, None, False, 0.0),
        ("not-contains", "refund", None, True, 1.0),
        ("not-contains-all", ["UPS", "FedEx"], None, True, 1 / 2),
    ],
)
def test_metric(kind: str, value: Any, threshold: float | None, passed: bool, score: float) -> None:
    Assertion(type=kind, value=value, threshold=threshold)  # a case may be created with it
    got = measure(kind, value, threshold, OBS)
    assert (got.passed, got.score) == (passed, pytest.approx(score)), got.reasoning
    assert got.reasoning


def test_json_metrics() -> None:
    good = Observation(output='{"order_id": "ORD-1", "status": "shipped"}')
    schema = {"type": "object", "required": ["order_id", "status"], "properties": {"status": {"enum": ["shipped"]}}}
    assert measure("is-json", None, None, good).passed is True
    assert measure("is-json", None, None, OBS).passed is False
    assert measure("json-schema", schema, None, good).passed is True
    bad = measure("json-schema", schema, None, Observation(output='{"status": "lost"}'))
    assert bad.passed is False and "order_id" in bad.reasoning and "'lost' is not one of" in bad.reasoning
    assert measure("is-json", schema, None, good).passed is True  # is-json with a schema checks it too


def test_levenshtein_passes_within_the_distance() -> None:
    obs = Observation(output="Your refund is on its way")
    near = measure("levenshtein", "Your refund is on it's way", None, obs)
    assert near.passed is True and "edit distance 1" in near.reasoning
    assert near.score == pytest.approx(1 - 1 / 26)
    far = measure("levenshtein", "We cannot refund this order", 3, obs)
    assert far.passed is False


def test_rouge_l_is_the_lcs_f_measure() -> None:
    obs = Observation(output="the cat sat on the mat")
    got = measure("rouge-l", "the cat lay on the mat", None, obs)
    # LCS "the cat on the mat" = 5 of 6 tokens each side: P = R = F = 5/6.
    assert got.score == pytest.approx(5 / 6) and got.passed is True
    assert measure("rouge-l", "a dog barked", None, obs).passed is False


def test_no_token_usage_is_unmeasured_even_negated() -> None:
    obs = Observation(output="hi", tokens=None)
    for kind in ("token_budget", "not-token_budget"):
        got = measure(kind, 100, None, obs)
        assert (got.score, got.passed) == (None, None) and "unmeasured" in got.reasoning


@pytest.mark.parametrize(
    ("kind", "value", "message"),
    [
        ("contians", "x", "unknown assertion type 'contians'"),
        ("contains", None, "non-empty string"),
        ("contains-any", "x", "list of strings"),
        ("regex", "(unclosed", "not a valid regular expression"),
        ("json-schema", {"type": "nonsense"}, "not a valid JSON Schema"),
        ("tool_called", {"nom": "x"}, "a tool is a name"),
        ("tool_correctness", [], "non-empty list of tools"),
        ("latency", -1, "number ≥ 0"),
        ("escalated", "yes", "takes no value"),
    ],
)
def test_a_bad_assertion_is_refused_saying_why(kind: str, value: Any, message: str) -> None:
    with pytest.raises(ValidationError) as refused:
        Assertion(type=kind, value=value)
    assert message in str(refused.value)


def test_cost_budget_prices_each_model_and_never_guesses() -> None:
    from chorus.agents.configs.version_metrics import price
    from chorus.evals.observation import ModelUsage

    mini = ModelUsage("gpt-4o-mini", 10_000, 2_000)
    expected = float(price("gpt-4o-mini", 10_000, 2_000) or 0)
    assert expected > 0
    obs = Observation(output="x", usage=(mini, ModelUsage("offline:openai/gpt-4o", 500, 80)))
    within = measure("cost_budget", expected * 1.01, None, obs)
    assert within.passed is True and f"{expected:.6f}" in within.reasoning  # the offline model costs nothing
    assert measure("cost_budget", expected * 0.5, None, obs).passed is False
    unknown = Observation(output="x", usage=(mini, ModelUsage("my-private-llm", 10, 10)))
    unpriced = measure("cost_budget", 100, None, unknown)
    assert unpriced.passed is None and "my-private-llm" in unpriced.reasoning
    assert measure("cost_budget", 100, None, Observation(output="x")).passed is None
    with pytest.raises(ValidationError, match="number"):
        Assertion(type="cost_budget", value="cheap")


def test_transferred_reads_the_voicebots_transfer_call() -> None:
    to_desk = Observation(
        output="Transferring you now.", tool_calls=(ToolCall("transfer_call", {"destination": "front_desk"}),)
    )
    assert measure("transferred", None, None, to_desk).passed is True
    assert measure("transferred", "front_desk", None, to_desk).passed is True
    wrong = measure("transferred", "emergency_line", None, to_desk)
    assert wrong.passed is False and "expected emergency_line" in wrong.reasoning
    assert measure("transferred", None, None, OBS).passed is False
    assert measure("not-transferred", None, None, OBS).passed is True
    with pytest.raises(ValidationError):
        Assertion(type="transferred", value=["front_desk"])
