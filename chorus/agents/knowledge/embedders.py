"""Embedding models, chosen by name: the offline all-MiniLM-L6-v2 or OpenAI's text-embedding-3-small.

A namespace records the model (and width) its vectors were made with; queries and new documents in that
namespace always use the same model. Switching a namespace to another model is an explicit re-embed
(`chorus kb reembed`). The model new namespaces start with is CHORUS_EMBEDDING_MODEL.
"""

from __future__ import annotations

import asyncio
import os
from functools import cache
from typing import Protocol, cast

import numpy as np

from chorus.agents.errors import InvalidInput, ProviderUnavailable
from chorus.agents.knowledge.minilm import DIMENSION as MINILM_DIMENSION
from chorus.agents.knowledge.minilm import MODEL_NAME as MINILM
from chorus.agents.knowledge.minilm import Matrix, MiniLMEmbedder

OPENAI_SMALL = "text-embedding-3-small"
MODELS: dict[str, int] = {MINILM: MINILM_DIMENSION, OPENAI_SMALL: 1536}
DEFAULT_MODEL = MINILM


class Embedder(Protocol):
    name: str
    dimension: int

    def embed(self, texts: list[str]) -> Matrix: ...


class OpenAIEmbedder:
    """text-embedding-3-small through the official `openai` client (OPENAI_API_KEY, OPENAI_BASE_URL)."""

    dimension = 1536
    _BATCH = 256

    def __init__(self, name: str = OPENAI_SMALL) -> None:
        import openai

        if not os.environ.get("OPENAI_API_KEY"):
            raise ProviderUnavailable(f"embedding model '{name}' needs OPENAI_API_KEY in the server environment")
        self.name = name
        self.client = openai.OpenAI(max_retries=2, timeout=30)

    def embed(self, texts: list[str]) -> Matrix:
        rows: list[list[float]] = []
        for start in range(0, len(texts), self._BATCH):
            batch = [t or " " for t in texts[start : start + self._BATCH]]
            response = self.client.embeddings.create(model=self.name, input=batch)
            rows.extend(item.embedding for item in sorted(response.data, key=lambda d: d.index))
        out = np.asarray(rows, dtype=np.float32).reshape(len(texts), self.dimension)
        return cast(Matrix, out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12))


def check_model(name: str) -> str:
    if name not in MODELS:
        raise InvalidInput(f"unknown embedding model '{name}'; choose one of: {', '.join(sorted(MODELS))}")
    return name


def configured_model() -> str:
    return check_model(os.environ.get("CHORUS_EMBEDDING_MODEL", DEFAULT_MODEL))


@cache
def _minilm() -> MiniLMEmbedder:
    return MiniLMEmbedder()


def get_embedder(name: str) -> Embedder:
    """The process-wide embedder for `name` (the offline model is loaded once, ~0.1 s)."""
    check_model(name)
    if name == MINILM:
        return _minilm()
    return OpenAIEmbedder(name)


async def embed(embedder: Embedder, texts: list[str]) -> Matrix:
    """Embed off the event loop: the offline model is CPU-bound NumPy, the OpenAI client blocks."""
    return await asyncio.to_thread(embedder.embed, texts)


def to_pgvector(vector: Matrix) -> str:
    """pgvector's text form; 7 significant digits keep float32 exactly enough for cosine ranking."""
    return "[" + ",".join(f"{x:.7g}" for x in vector.tolist()) + "]"
