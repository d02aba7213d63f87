"""The retrieval metrics (the knowledge tools' documents against labelled expected ones), the embedding metric
(cosine similarity with the knowledge base's embedder), and the retrieval context a trial carries: read from
the knowledge tool calls of its run, end to end through an execution with mocked knowledge results."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from chorus.evals.metrics_judged import ModelMetrics, request_key
from chorus.evals.metrics_retrieval import conversation_context, retrieval_precision, retrieval_recall
from chorus.evals.observation import Observation, Retrieved
from chorus.evals.schemas import Assertion
from tests.evals.conftest import make_suite, wait_done
from tests.fakes import judge_api, serve

RANKED = Observation(
    output="x",
    retrieved=(
        Retrieved("doc-shipping", "Shipping policy", "Orders ship in two days."),
        Retrieved("doc-returns", "Returns policy", "Returns are accepted within 30 days."),
        Retrieved("doc-hours", "Opening hours", "We open at 9."),
        Retrieved("faq-7", "How do refunds work?", "How do refunds work?\nRefunds take 5 days."),
    ),
)


@pytest.mark.parametrize(
    ("measure", "value", "threshold", "score", "passed"),
    [
        # weighted cumulative precision: relevant at ranks 2 and 4 -> (1/2 + 2/4) / 2
        (retrieval_precision, ["doc-returns", "faq-7"], None, 0.5, True),
        (retrieval_precision, {"documents": ["Shipping policy"]}, None, 1.0, True),  # a title, any case
        (retrieval_precision, ["shipping POLICY", "doc-hours"], 0.9, (1 + 2 / 3) / 2, False),
        (retrieval_precision, ["doc-missing"], None, 0.0, False),
        # recall: expected documents retrieved / expected documents
        (retrieval_recall, ["doc-returns", "doc-missing"], None, 0.5, True),
        (retrieval_recall, ["doc-returns", "doc-missing", "doc-other"], None, 1 / 3, False),
        (retrieval_recall, ["doc-returns", "doc-returns"], None, 1.0, True),  # a label counts once
    ],
)
def test_retrieval_metrics(measure: Any, value: Any, threshold: float | None, score: float, passed: bool) -> None:
    Assertion(type=measure.__name__, value=value, threshold=threshold)
    got = measure(value, threshold, RANKED, None)
    assert (got.score, got.passed) == (pytest.approx(score), passed), got.reasoning


def test_retrieval_metrics_without_labels_or_documents_are_unmeasured() -> None:
    assert retrieval_recall(None, None, RANKED, None).passed is None
    labelled = retrieval_recall(None, None, RANKED, {"expected_documents": ["doc-hours"]})
    assert labelled.score == 1.0  # the case's expected_values.expected_documents
    nothing = retrieval_precision(["doc-returns"], None, Observation(output="x"), None)
    assert (nothing.score, nothing.passed) == (None, None) and "retrieved nothing" in nothing.reasoning
    with pytest.raises(ValidationError, match="list of expected document ids"):
        Assertion(type="retrieval_recall", value=[])
    with pytest.raises(ValidationError, match="only `documents`"):
        Assertion(type="retrieval_recall", value={"documents": ["a"], "k": 3})


def test_the_retrieval_context_is_read_from_the_knowledge_tool_calls() -> None:
    messages = [
        {"type": "human", "content": "How do refunds work?"},
        {"type": "ai", "content": "", "tool_calls": [{"name": "knowledge_search", "args": {"query": "refunds"}}]},
        {
            "type": "tool",
            "name": "knowledge_search",
            "content": json.dumps(
                {"results": [{"content": "Refunds take 5 days.", "source": "Refunds", "document_id": 12}]}
            ),
        },
        {"type": "tool", "name": "knowledge_search", "status": "error", "content": "no knowledge namespace 'x'"},
        {
            "type": "tool",
            "name": "faq_search",
            "content": json.dumps({"results": [{"faq_id": 3, "question": "Q?", "answer": "A."}]}),
        },
        {
            "type": "tool",
            "name": "fetch_order_status",
            "content": json.dumps({"results": [{"content": "not knowledge"}]}),
        },
        {"type": "human", "content": [{"type": "text", "text": "thanks"}]},
    ]
    users, retrieved = conversation_context(messages)
    assert users == ("How do refunds work?", "thanks")
    assert retrieved == (Retrieved("12", "Refunds", "Refunds take 5 days."), Retrieved("3", "Q?", "Q?\nA."))


async def test_semantic_similarity_with_the_offline_embedder() -> None:
    metrics = ModelMetrics(judge=None, embedding_model="all-MiniLM-L6-v2")
    obs = Observation(output="Your refund will arrive within five business days.")
    requests: list[tuple[str, Any, float | None]] = [
        ("semantic_similarity", "The refund takes about five working days.", None),
        ("semantic_similarity", "Our store in Paris sells bicycles.", 0.5),
        ("not-semantic_similarity", "Our store in Paris sells bicycles.", 0.5),
    ]
    got = await metrics.measure({"expected_values": None}, obs, requests)
    similar, unrelated, negated = (got[request_key(*r)] for r in requests)
    assert similar.passed is True and similar.score is not None and similar.score >= 0.75, similar.reasoning
    assert unrelated.passed is False and unrelated.score is not None and unrelated.score < 0.5
    assert negated.passed is True and negated.score == pytest.approx(1 - unrelated.score)
    assert "all-MiniLM-L6-v2" in similar.reasoning
    from_case = await metrics.measure(
        {"expected_values": {"expected_output": "The refund takes about five working days."}},
        obs,
        [("semantic_similarity", None, None)],
    )
    assert from_case[request_key("semantic_similarity", None, None)].score == pytest.approx(similar.score)
    missing = await metrics.measure({"expected_values": None}, obs, [("semantic_similarity", None, None)])
    assert missing[request_key("semantic_similarity", None, None)].passed is None


async def test_an_unavailable_embedder_errors_the_metric(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    metrics = ModelMetrics(judge=None, embedding_model="text-embedding-3-small")
    got = await metrics.measure(
        {"expected_values": None}, Observation(output="a"), [("semantic_similarity", "b", None)]
    )
    errored = got[request_key("semantic_similarity", "b", None)]
    assert errored.passed is None and "OPENAI_API_KEY" in errored.reasoning


KNOWLEDGE_MOCKS = {
    "knowledge_search": {
        "results": [
            {
                "content": "Returns are accepted within 30 days of delivery.",
                "source": "Returns policy",
                "citation": "Returns policy, p. 1",
                "document_id": "doc-returns",
                "namespace": "acme_support",
                "score": 0.9,
                "similarity": 0.8,
            },
            {
                "content": "Our offices are closed on public holidays.",
                "source": "Holidays",
                "citation": "Holidays, p. 1",
                "document_id": "doc-holidays",
                "namespace": "acme_support",
                "score": 0.5,
                "similarity": 0.4,
            },
        ],
        "note": "answer only from these passages",
    },
    "faq_search": {"results": [], "recommended_answer": None},
}


async def test_an_execution_measures_retrieval_from_the_knowledge_tool_calls(
    http: httpx.AsyncClient, assistant_id: str
) -> None:
    app = judge_api()
    async with serve(app) as url:
        case = {
            "name": "returns window",
            "user_input": "How many days do I have to send something back?",
            "tool_mocks": KNOWLEDGE_MOCKS,
            "expected_values": {
                "expected_output": "Returns are accepted within 30 days of delivery.",
                "expected_documents": ["doc-returns"],
            },
            "evaluator_types": ["faithfulness", "contextual_precision"],
            "assertions": [
                {"type": "retrieval_recall"},
                {"type": "retrieval_precision", "value": ["doc-holidays"], "threshold": 0.9},
                {"type": "semantic_similarity", "threshold": 0.5},
            ],
        }
        judge = {"provider": "openai_compatible", "model": "scripted-judge", "base_url": f"{url}/v1"}
        suite_id = await make_suite(http, [case], judge=judge, embedding_model="all-MiniLM-L6-v2")
        started = await http.post(f"/api/v1/evaluation/suites/{suite_id}/execute", json={"config_id": assistant_id})
        done = await wait_done(http, started.json()["id"])
        summary = (await http.get(f"/api/v1/evaluation/executions/{done['id']}/summary")).json()
    result = summary["results"][0]["result"]
    by_metric = {e["metric"]: e for e in result["evaluations"]}
    assert [c["name"] for c in result["tool_calls"]][:1] in (["knowledge_search"], ["faq_search"]), result
    assert by_metric["retrieval_recall"]["score"] == 1.0
    assert by_metric["retrieval_precision"]["score"] == 0.5 and by_metric["retrieval_precision"]["passed"] is False
    assert by_metric["semantic_similarity"]["passed"] is True, by_metric["semantic_similarity"]
    assert by_metric["faithfulness"]["status"] == "passed", by_metric["faithfulness"]
    assert by_metric["contextual_precision"]["score"] == 1.0  # both passages judged useful, in rank order
    # the judge saw the passages the knowledge tool returned
    prompts = " ".join(m["content"] for call in app.state.calls for m in call["messages"])
    assert "Returns are accepted within 30 days of delivery." in prompts and "closed on public holidays" in prompts
