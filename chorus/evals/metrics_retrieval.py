"""Retrieval metrics of the knowledge base, deterministic: the documents the bot's knowledge tools retrieved in
a trial against the case's labelled expected documents (ids or titles). Also where a trial's retrieval context
is read from its conversation (every knowledge_search / faq_search result, in order)."""

from __future__ import annotations

import json
from typing import Any

from chorus.agents.knowledge.bot_tools import FAQ_SEARCH, KNOWLEDGE_SEARCH
from chorus.evals.metrics_deterministic import Measured
from chorus.evals.observation import Observation, Retrieved


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") if isinstance(p, dict) else str(p) for p in content)
    return str(content or "")


def _passages(name: str, content: str) -> list[Retrieved]:
    try:
        body = json.loads(content)
    except ValueError:
        return []  # an error message, not results
    results = body.get("results") if isinstance(body, dict) else body if isinstance(body, list) else None
    found = []
    for r in results or []:
        if not isinstance(r, dict):
            continue
        if name == FAQ_SEARCH:
            doc = r.get("faq_id")
            title = r.get("question") or ""
            text = f"{r.get('question') or ''}\n{r.get('answer') or ''}".strip()
        else:
            doc = r.get("document_id")
            title = r.get("source") or r.get("title") or ""
            text = str(r.get("content") or "")
        found.append(Retrieved(document_id="" if doc is None else str(doc), title=str(title), content=text))
    return found


def conversation_context(messages: list[dict[str, Any]]) -> tuple[tuple[str, ...], tuple[Retrieved, ...]]:
    """The user's turns and every knowledge tool result (knowledge_search, faq_search) of a thread's messages,
    in order."""
    users: list[str] = []
    retrieved: list[Retrieved] = []
    for m in messages:
        if m.get("type") == "human":
            users.append(_text(m.get("content")))
        elif m.get("type") == "tool" and m.get("name") in (KNOWLEDGE_SEARCH, FAQ_SEARCH) and m.get("status") != "error":
            retrieved.extend(_passages(str(m["name"]), _text(m.get("content"))))
    return tuple(users), tuple(retrieved)


def labels(value: Any, expected_values: dict[str, Any] | None) -> list[str]:
    """The expected documents: the assertion's value (a list, or {documents: [...]}) or the case's
    expected_values.expected_documents."""
    if isinstance(value, dict):
        value = value.get("documents")
    if value is None and expected_values:
        value = expected_values.get("expected_documents")
    return list(dict.fromkeys(str(v) for v in value)) if isinstance(value, list) else []


def check_labels(value: Any) -> None:
    if value is None:
        return  # taken from the case's expected_values.expected_documents
    docs = value.get("documents") if isinstance(value, dict) else value
    if isinstance(value, dict) and set(value) - {"documents"}:
        raise ValueError("value takes only `documents` (a list of expected document ids or titles)")
    if not isinstance(docs, list) or not docs or not all(isinstance(d, str | int) and str(d) for d in docs):
        raise ValueError("value must be a non-empty list of expected document ids or titles (or {documents: [...]})")


def _relevant(doc: Retrieved, wanted: list[str]) -> str | None:
    for label in wanted:
        if doc.document_id == label or doc.title.casefold() == label.casefold():
            return label
    return None


def weighted_cumulative_precision(relevant: list[bool]) -> float | None:
    """DeepEval's contextual precision over ranked nodes: (1 / R) · Σ_k (relevant in the top k / k) · r_k, where
    r_k is 1 when node k is relevant and R the number of relevant nodes; 0 when none is; None with no node."""
    if not relevant:
        return None
    hits, total = 0, 0.0
    for k, r in enumerate(relevant, 1):
        if r:
            hits += 1
            total += hits / k
    return total / hits if hits else 0.0


def retrieval_precision(
    value: Any, threshold: float | None, obs: Observation, expected_values: dict[str, Any] | None
) -> Measured:
    wanted = labels(value, expected_values)
    if not wanted:
        return Measured(None, None, "no expected documents: give a list of document ids or titles")
    score = weighted_cumulative_precision([_relevant(d, wanted) is not None for d in obs.retrieved])
    if score is None:
        return Measured(None, None, "the bot retrieved nothing from the knowledge base: nothing to rank")
    bar = 0.5 if threshold is None else threshold
    ranks = [i for i, d in enumerate(obs.retrieved, 1) if _relevant(d, wanted) is not None]
    return Measured(
        score,
        score >= bar,
        f"weighted cumulative precision {score:.3f} (passes at ≥ {bar:g}); expected documents at ranks "
        f"{ranks or 'none'} of {len(obs.retrieved)} retrieved",
    )


def retrieval_recall(
    value: Any, threshold: float | None, obs: Observation, expected_values: dict[str, Any] | None
) -> Measured:
    wanted = labels(value, expected_values)
    if not wanted:
        return Measured(None, None, "no expected documents: give a list of document ids or titles")
    found = {label for d in obs.retrieved if (label := _relevant(d, wanted)) is not None}
    score = len(found) / len(wanted)
    bar = 0.5 if threshold is None else threshold
    missing = [w for w in wanted if w not in found]
    return Measured(
        score,
        score >= bar,
        f"{len(found)} of {len(wanted)} expected documents retrieved (passes at ≥ {bar:g})"
        + (f"; missing {missing}" if missing else ""),
    )
