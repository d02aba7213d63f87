"""The LangGraph names Chorus's checkpoints rely on that upstream may rename or drop in any release (private
helpers, and APIs new in the pinned minor versions), imported in one place. If one is gone, importing
Chorus fails here, naming it, the installed versions and the tested range, instead of deep inside a turn.

The tested range is the one pyproject.toml pins; docs/decisions.md says how to move it.
"""

from __future__ import annotations

import importlib
from importlib import metadata

from langgraph.constants import START

# What pyproject.toml pins, and so what the conformance suite and the benchmarks last ran against.
TESTED = {
    "langgraph": ">=1.2.0,<1.3",
    "langgraph-checkpoint": ">=4.3.0,<4.4",
    "langgraph-checkpoint-postgres": ">=3.2.0,<3.3",
}

# (module, name, distribution that ships it)
NAMES = [
    ("langgraph.checkpoint.serde.types", "_DeltaSnapshot", "langgraph-checkpoint"),
    ("langgraph.checkpoint.base", "DeltaChannelHistory", "langgraph-checkpoint"),
    ("langgraph.checkpoint.base", "WRITES_IDX_MAP", "langgraph-checkpoint"),
    ("langgraph.graph.message", "_messages_delta_reducer", "langgraph"),
    ("langgraph.channels.binop", "_get_overwrite", "langgraph"),
    ("langgraph.channels.delta", "DeltaChannel", "langgraph"),
    ("langgraph._internal._constants", "PULL", "langgraph"),
    ("langgraph.pregel._algo", "task_path_str", "langgraph"),
]
# Methods of the stock saver that ChorusCheckpointer calls or overrides (private ones included).
SAVER_METHODS = [
    "aget_delta_channel_history",
    "_load_checkpoint_tuple",
    "_load_blobs",
    "_load_writes",
    "_dump_blobs",
    "_dump_writes",
]


class UpstreamMismatch(ImportError):
    """The installed LangGraph lacks a name Chorus relies on: install the tested versions."""


def installed_versions() -> str:
    found = []
    for dist in TESTED:
        try:
            found.append(f"{dist} {metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            found.append(f"{dist} (not installed)")
    return ", ".join(found)


def mismatch(missing: list[str]) -> UpstreamMismatch:
    tested = ", ".join(f"{dist}{spec}" for dist, spec in TESTED.items())
    return UpstreamMismatch(
        f"Chorus's checkpointer relies on {'; '.join(missing)}, missing from the installed LangGraph "
        f"({installed_versions()}). Chorus is tested with {tested}: install the locked versions "
        "(`make env`, or `uv sync --frozen`), or see 'Upstream pins' in docs/decisions.md to move the range."
    )


def _missing_names() -> list[str]:
    missing = []
    for module, name, dist in NAMES:
        try:
            found = hasattr(importlib.import_module(module), name)
        except ImportError:
            found = False
        if not found:
            missing.append(f"`{name}` from `{module}` ({dist})")
    return missing


try:
    from langgraph._internal._constants import PULL
    from langgraph.channels.binop import _get_overwrite
    from langgraph.channels.delta import DeltaChannel
    from langgraph.checkpoint.base import WRITES_IDX_MAP, DeltaChannelHistory
    from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
    from langgraph.checkpoint.serde.types import _DeltaSnapshot
    from langgraph.graph.message import _messages_delta_reducer
    from langgraph.pregel._algo import task_path_str
except ImportError as exc:
    raise mismatch(_missing_names() or [str(exc)]) from exc

# The task path LangGraph stores with the writes of a graph's `__start__` step (it maps the input to state).
START_TASK_PATH = task_path_str((PULL, START))

_missing_methods = [m for m in SAVER_METHODS if not hasattr(AsyncPostgresSaver, m)]
if _missing_methods:
    raise mismatch([f"`AsyncPostgresSaver.{m}` (langgraph-checkpoint-postgres)" for m in _missing_methods])

__all__ = [
    "START_TASK_PATH",
    "WRITES_IDX_MAP",
    "AsyncPostgresSaver",
    "DeltaChannel",
    "DeltaChannelHistory",
    "UpstreamMismatch",
    "_DeltaSnapshot",
    "_get_overwrite",
    "_messages_delta_reducer",
]
