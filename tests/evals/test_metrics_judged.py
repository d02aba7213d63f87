"""Each LLM-judged metric's formula, computed by Chorus from the verdicts of a scripted judge (a real
langchain-openai client against tests/fakes.py's judge_api: 'no' for an item holding WRONG, 'idk' for UNSURE,
'yes' otherwise), and what is unmeasured rather than scored."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import jsonschema
import pytest
import yaml
from pydantic import ValidationError

from chorus.agents.errors import InvalidInput
from chorus.evals.judge import Judge, JudgeConfig
from chorus.evals.metrics_deterministic import Measured
from chorus.evals.metrics_judged import ModelMetrics, request_key
from chorus.evals.observation import Observation, Retrieved, ToolCall
from chorus.evals.runner import judge_trial, measure_model_metrics
from chorus.evals.schemas import Assertion, CaseCreate, EvaluatorConfig
from chorus.evals.scoring import summarize
from chorus.evals.suite_files import parse
from tests.conftest import ROOT
from tests.fakes import judge_api, serve


@pytest.fixture
async def judge_url() -> AsyncIterator[str]:
    app = judge_api()
    async with serve(app) as url:
        app.state.url = url
        yield f"{url}/v1"


def judge_of(url: str, **config: Any) -> Judge:
    return Judge(
        JudgeConfig(provider="openai_compatible", model="scripted-judge", base_url=url, **config),
        tenant_id="00000000-0000-0000-0000-000000000000",
        cache=None,
    )


def case(**fields: Any) -> dict[str, Any]:
    return {"user_input": "Where is my order?", "expected_values": None, "conversation_context": None, **fields}


async def measure(
    url: str | None, kind: str, obs: Observation, value: Any = None, threshold: float | None = None, **case_fields: Any
) -> Measured:
    Assertion(type=kind, value=value, threshold=threshold)  # a case may be created with it
    metrics = ModelMetrics(judge=judge_of(url) if url else None)
    got = await metrics.measure(case(**case_fields), obs, [(kind, value, threshold)])
    return got[request_key(kind, value, threshold)]


ANSWER = Observation(output="Your order shipped. WRONG I like turtles. UNSURE Have a nice day.")


@pytest.mark.parametrize(
    ("kind", "value", "threshold", "obs", "fields", "score", "passed"),
    [
        # hallucination: contradicted contexts / contexts, passes at or below the threshold (0.5)
        (
            "hallucination",
            ["Opens at 9.", "WRONG closed on Sundays.", "30 days.", "WRONG free"],
            None,
            ANSWER,
            {},
            0.5,
            True,
        ),
        (
            "hallucination",
            ["Opens at 9.", "WRONG closed on Sundays.", "30 days.", "WRONG free"],
            0.3,
            ANSWER,
            {},
            0.5,
            False,
        ),
        ("not-hallucination", ["Opens at 9.", "WRONG closed on Sundays."], 0.3, ANSWER, {}, 0.5, True),
        (
            "hallucination",
            None,
            None,
            ANSWER,
            {"conversation_context": {"context": ["WRONG a", "b", "c"]}},
            1 / 3,
            True,
        ),
        # answer_relevancy: relevant statements (idk counts) / statements
        ("answer_relevancy", None, None, ANSWER, {}, 2 / 3, True),
        ("answer_relevancy", None, 0.7, ANSWER, {}, 2 / 3, False),
        # faithfulness: claims not contradicted by the retrieval context / claims
        (
            "faithfulness",
            None,
            None,
            Observation(output="Refunds take 30 days. WRONG Shipping is free. Returns are easy. UNSURE Call us."),
            {"conversation_context": {"retrieval_context": ["Refunds take 30 days."]}},
            0.75,
            True,
        ),
        # contextual_precision: weighted cumulative precision of the ranked nodes judged useful
        (
            "contextual_precision",
            "Refunds take 30 days.",
            None,
            Observation(
                output="x",
                retrieved=(
                    Retrieved("d1", "Shipping", "WRONG shipping"),
                    Retrieved("d2", "Refunds", "refunds"),
                    Retrieved("d3", "Hours", "WRONG hours"),
                    Retrieved("d4", "Returns", "returns"),
                ),
            ),
            {},
            (1 / 2 + 2 / 4) / 2,
            True,
        ),
        (
            "contextual_precision",
            None,
            None,
            Observation(output="x", retrieved=(Retrieved("d2", "Refunds", "refunds"), Retrieved("d3", "H", "WRONG"))),
            {"expected_values": {"expected_output": "Refunds take 30 days."}},
            1.0,
            True,
        ),
        (
            "contextual_precision",
            "Refunds.",
            None,
            Observation(output="x", retrieved=(Retrieved("d3", "H", "WRONG a"), Retrieved("d4", "H", "WRONG b"))),
            {},
            0.0,
            False,
        ),
        # contextual_recall: expected sentences attributable to the retrieval context / expected sentences
        (
            "contextual_recall",
            "Refunds take 30 days. WRONG Shipping is free. Returns need a receipt.",
            None,
            Observation(output="x", retrieved=(Retrieved("d2", "Refunds", "Refunds take 30 days."),)),
            {},
            2 / 3,
            True,
        ),
        # role_adherence: replies in role / replies
        (
            "role_adherence",
            "A polite support agent of Acme.",
            None,
            Observation(
                output="b", answers=("Hello, how can I help?", "WRONG I am a pirate!"), user_turns=("hi", "who?")
            ),
            {},
            0.5,
            True,
        ),
        # knowledge_retention: replies without attrition / replies
        (
            "knowledge_retention",
            None,
            0.7,
            Observation(
                output="c",
                answers=("Noted, Ann.", "WRONG What is your name?", "Done."),
                user_turns=("I am Ann", "ok", "go"),
            ),
            {},
            2 / 3,
            False,
        ),
        # conversation_completeness: user intentions satisfied (idk counts) / intentions
        (
            "conversation_completeness",
            None,
            None,
            Observation(
                output="c",
                answers=("a", "b", "c"),
                user_turns=("Where is my order?", "WRONG cancel it", "UNSURE thanks"),
            ),
            {},
            2 / 3,
            True,
        ),
        # task_completion: criteria met (only yes) / criteria of the task
        (
            "task_completion",
            "Refund the order. WRONG Send a voucher. UNSURE Apologise.",
            None,
            Observation(output="Refunded.", answers=("Refunded.",), tool_calls=(ToolCall("initiate_refund", {}),)),
            {},
            1 / 3,
            False,
        ),
        (
            "task_completion",
            None,
            0.3,
            Observation(output="Refunded.", answers=("Refunded.",)),
            {"expected_values": {"expected_outcome": "Refund the order. WRONG Send a voucher. UNSURE Apologise."}},
            1 / 3,
            True,
        ),
    ],
)
async def test_formula(
    judge_url: str,
    kind: str,
    value: Any,
    threshold: float | None,
    obs: Observation,
    fields: dict[str, Any],
    score: float,
    passed: bool,
) -> None:
    got = await measure(judge_url, kind, obs, value, threshold, **fields)
    assert (got.score, got.passed) == (pytest.approx(score), passed), got.reasoning
    assert got.reasoning


@pytest.mark.parametrize(
    ("kind", "value", "obs", "why"),
    [
        ("hallucination", None, ANSWER, "no context"),
        ("answer_relevancy", None, Observation(output=""), "no statement"),
        ("faithfulness", None, ANSWER, "no retrieval context"),
        (
            "contextual_precision",
            None,
            Observation(output="x", retrieved=(Retrieved("d", "t", "c"),)),
            "no expected output",
        ),
        ("contextual_recall", "Refunds take 30 days.", ANSWER, "no retrieval context"),
        ("role_adherence", None, ANSWER, "no chatbot role"),
        ("knowledge_retention", None, Observation(output=""), "no answer"),
        ("task_completion", None, ANSWER, "no task"),
    ],
)
async def test_an_empty_denominator_is_unmeasured_never_a_score(
    judge_url: str, kind: str, value: Any, obs: Observation, why: str
) -> None:
    got = await measure(judge_url, kind, obs, value)
    assert (got.score, got.passed) == (None, None)
    assert why in got.reasoning


async def test_no_judge_skips_every_judged_metric() -> None:
    got = await measure(None, "answer_relevancy", ANSWER)
    assert (got.score, got.passed, got.reasoning) == (None, None, "skipped: no judge model")


async def test_an_invalid_answer_is_asked_again() -> None:
    app = judge_api(invalid_first=1)
    async with serve(app) as url:
        judge = judge_of(f"{url}/v1", max_retries=2)
        got = await ModelMetrics(judge=judge).measure(
            case(conversation_context={"context": ["WRONG a", "b"]}), ANSWER, [("hallucination", None, None)]
        )
    assert got[request_key("hallucination", None, None)].score == 0.5
    assert len(app.state.calls) == 2 and judge.model_calls == 2
    retry = app.state.calls[1]["messages"]
    assert retry[-2]["role"] == "assistant" and "not valid JSON" in retry[-1]["content"]
    assert all(c["temperature"] == 0 for c in app.state.calls)


async def test_a_judge_that_stays_invalid_errors_the_metric_with_the_reason() -> None:
    app = judge_api(invalid_first=100)
    async with serve(app) as url:
        metrics = ModelMetrics(judge=judge_of(f"{url}/v1", max_retries=1))
        got = await metrics.measure(case(), ANSWER, [("answer_relevancy", None, None)])
        # a wrong number of verdicts is as invalid as broken JSON
        short = judge_api(lambda system, prompt: {"verdicts": [{"verdict": "yes"}]})
        async with serve(short) as short_url:
            counted = await ModelMetrics(judge=judge_of(f"{short_url}/v1", max_retries=0)).measure(
                case(conversation_context={"context": ["a", "b"]}), ANSWER, [("hallucination", None, None)]
            )
    errored = got[request_key("answer_relevancy", None, None)]
    assert (errored.score, errored.passed) == (None, None)
    assert "no valid answer after 2 attempt(s)" in errored.reasoning and "not valid JSON" in errored.reasoning
    assert len(app.state.calls) == 2
    assert "1 verdicts for 2 items" in counted[request_key("hallucination", None, None)].reasoning
    trial = judge_trial(
        {
            **case(),
            "assertions": [{"type": "contains", "value": "order"}],
            "evaluator_types": ["answer_relevancy"],
            "threshold": None,
        },
        ANSWER,
        default_threshold=None,
        measured=got,
    )
    evaluation = next(e for e in trial["evaluations"] if e["metric"] == "answer_relevancy")
    assert evaluation["status"] == "error" and trial["passed"] is None  # never a pass


async def test_a_hanging_judge_times_out() -> None:
    app = judge_api(delay_s=30)
    async with serve(app) as url:
        metrics = ModelMetrics(judge=judge_of(f"{url}/v1", timeout_seconds=0.5, max_retries=3))
        got = await metrics.measure(case(), ANSWER, [("answer_relevancy", None, None)])
    errored = got[request_key("answer_relevancy", None, None)]
    assert errored.passed is None and "did not answer within timeout_seconds (0.5 s)" in errored.reasoning
    assert len(app.state.calls) == 1  # a timeout is not retried: a hung judge would multiply the wait


async def test_identical_calls_in_flight_share_one_model_call(judge_url: str) -> None:
    judge = judge_of(judge_url)
    metrics = ModelMetrics(judge=judge)
    requests = [("answer_relevancy", None, None)]
    await asyncio.gather(*(metrics.measure(case(), ANSWER, requests) for _ in range(5)))
    assert judge.model_calls == 2  # statements, then verdicts: once for the five trials


def test_unmeasured_is_never_averaged() -> None:
    skipped = judge_trial(
        {
            **case(),
            "assertions": [{"type": "contains", "value": "order"}],
            "evaluator_types": ["faithfulness"],
            "threshold": None,
        },
        ANSWER,
        default_threshold=None,
    )
    scored = judge_trial(
        {**case(), "assertions": [{"type": "contains", "value": "order"}], "evaluator_types": [], "threshold": None},
        ANSWER,
        default_threshold=None,
    )
    trials = [{"eval_id": 1, "result": skipped}, {"eval_id": 1, "result": scored}]
    summary = summarize([{"id": 1, "name": "c"}], trials, min_pass_rate=0.5)
    assert skipped["passed"] is None and skipped["score"] is None
    assert summary["metrics"]["faithfulness"] == {"mean": None, "pass_rate": None, "measured": 0, "unmeasured": 1}
    assert summary["cases"][0]["mean_score"] == 1.0 and summary["pass_rate"] == 0.5


def test_the_judge_and_the_types_are_validated() -> None:
    with pytest.raises(ValidationError, match="the offline model cannot judge"):
        EvaluatorConfig.model_validate({"judge": {"provider": "offline", "model": "chorus-offline"}})
    with pytest.raises(ValidationError, match="unknown judge provider 'gemini'"):
        EvaluatorConfig.model_validate({"judge": {"provider": "gemini", "model": "x"}})
    with pytest.raises(ValidationError, match="timeout_seconds"):
        EvaluatorConfig.model_validate({"judge": {"provider": "openai", "model": "x", "timeout_seconds": 0}})
    with pytest.raises(ValidationError, match="Extra inputs"):
        EvaluatorConfig.model_validate({"judge": {"provider": "openai", "model": "x", "temperature": 0.7}})
    with pytest.raises(ValidationError, match="unknown evaluator types \\['halucination'\\]"):
        CaseCreate(user_input="hi", evaluator_types=["halucination"])
    with pytest.raises(ValidationError, match="unknown assertion type 'not-faithfullness'"):
        Assertion(type="not-faithfullness")
    with pytest.raises(ValidationError, match="takes no value"):
        Assertion(type="faithfulness", value="x")
    with pytest.raises(ValidationError, match="list of texts"):
        Assertion(type="hallucination", value=42)
    ok = CaseCreate(user_input="hi", evaluator_types=["role_adherence", "task_completion", "semantic_similarity"])
    assert ok.evaluator_types == ["role_adherence", "task_completion", "semantic_similarity"]


JUDGED_SUITE = """name: judged
evaluator_config:
  judge: {provider: openai_compatible, model: m, base_url: "http://127.0.0.1:9/v1", max_retries: 1}
  embedding_model: all-MiniLM-L6-v2
cases:
  - user_input: Where is my order?
    evaluator_types: [answer_relevancy, knowledge_retention, retrieval_recall]
    expected_values: {expected_documents: [doc-1], expected_output: It shipped.}
    assertions:
      - {type: not-hallucination, value: [It shipped.], threshold: 0.2, weight: 2}
      - {type: assert-set, assert: [{type: semantic_similarity, threshold: 0.6}, {type: retrieval_precision}]}
      - {type: task_completion, value: Tell the customer where the order is.}
"""


def test_a_suite_file_takes_the_judge_and_the_model_metrics() -> None:
    schema = json.loads((ROOT / "configs" / "schema" / "eval-suite.schema.json").read_text())
    validator = jsonschema.Draft202012Validator(schema)
    validator.validate(yaml.safe_load(JUDGED_SUITE))
    suite, cases = parse(JUDGED_SUITE).suite.definition()
    assert suite.evaluator_config.judge is not None and suite.evaluator_config.judge.max_retries == 1
    assert [a.type for a in cases[0].assertions][:1] == ["not-hallucination"]
    for bad, path, message in (
        (JUDGED_SUITE.replace("not-hallucination", "not-halucination"), "$.cases[0].assertions[0].type", "unknown"),
        (
            JUDGED_SUITE.replace("provider: openai_compatible", "provider: offline"),
            "$.evaluator_config.judge.provider",
            "offline model cannot judge",
        ),
        (
            JUDGED_SUITE.replace("max_retries: 1", "max_retries: 1, temperature: 1"),
            "$.evaluator_config.judge.temperature",
            "Extra",
        ),
    ):
        assert not validator.is_valid(yaml.safe_load(bad))  # the published schema refuses it too
        with pytest.raises(InvalidInput) as refused:
            parse(bad).suite.definition()
        problems = refused.value.extra["errors"]
        assert any(p["path"] == path and message in p["message"] and p.get("line") for p in problems), problems


async def test_an_evaluator_type_takes_its_threshold_from_expected_values_as_the_seed(judge_url: str) -> None:
    seed_case = {
        **case(conversation_context={"context": ["WRONG a", "b", "c"]}),
        "expected_values": {"answer_relevancy": {"min_score": 0.7}, "hallucination": {"max_score": 0.2}},
        "evaluator_types": ["answer_relevancy", "hallucination"],
        "assertions": [],
        "threshold": None,
    }
    metrics = ModelMetrics(judge=judge_of(judge_url))
    measured = await measure_model_metrics(metrics, seed_case, ANSWER)
    trial = judge_trial(seed_case, ANSWER, default_threshold=None, measured=measured)
    by_metric = {e["metric"]: e for e in trial["evaluations"]}
    assert by_metric["answer_relevancy"]["score"] == pytest.approx(2 / 3)
    assert by_metric["answer_relevancy"]["passed"] is False and "≥ 0.7" in by_metric["answer_relevancy"]["reasoning"]
    assert by_metric["hallucination"]["score"] == pytest.approx(1 / 3)
    assert by_metric["hallucination"]["passed"] is False and "≤ 0.2" in by_metric["hallucination"]["reasoning"]
    with pytest.raises(ValidationError, match=r"expected_values\.faithfulness\.min_score must be a number from 0 to 1"):
        CaseCreate(
            user_input="hi", evaluator_types=["faithfulness"], expected_values={"faithfulness": {"min_score": 8}}
        )
