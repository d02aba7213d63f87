"""The embedding metric: semantic similarity (cosine) of the bot's answer to an expected answer, with the
knowledge base's embedder (CHORUS_EMBEDDING_MODEL: the offline all-MiniLM-L6-v2 by default, or the configured
one; a suite may name another in evaluator_config.embedding_model)."""

from __future__ import annotations

from typing import Any

import numpy as np

from chorus.agents.knowledge.embedders import Embedder, embed
from chorus.evals.metrics_deterministic import Measured

DEFAULT_THRESHOLD = 0.75  # promptfoo's `similar` default


def expected_text(value: Any, expected_values: dict[str, Any] | None) -> str | None:
    if isinstance(value, str) and value.strip():
        return value
    if expected_values and isinstance(expected_values.get("expected_output"), str):
        text: str = expected_values["expected_output"]
        return text if text.strip() else None
    return None


def check_expected(value: Any) -> None:
    if value is not None and (not isinstance(value, str) or not value.strip()):
        raise ValueError("value must be the expected answer (a non-empty string), or none to use expected_output")


def cosine(a: np.ndarray[Any, Any], b: np.ndarray[Any, Any]) -> float:
    norms = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(np.dot(a, b) / norms) if norms > 0 else 0.0


async def semantic_similarity(
    embedder: Embedder, *, output: str, value: Any, expected_values: dict[str, Any] | None, threshold: float | None
) -> Measured:
    expected = expected_text(value, expected_values)
    if expected is None:
        return Measured(None, None, "no expected answer: give one as the value or as expected_values.expected_output")
    if not output.strip():
        return Measured(0.0, False, "the bot gave no answer")
    vectors = await embed(embedder, [output, expected])
    score = max(0.0, min(1.0, cosine(vectors[0], vectors[1])))
    bar = DEFAULT_THRESHOLD if threshold is None else threshold
    return Measured(score, score >= bar, f"cosine similarity {score:.3f} with {embedder.name} (passes at ≥ {bar:g})")
