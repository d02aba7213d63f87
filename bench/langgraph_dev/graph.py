"""The example support bot, compiled for `langgraph dev` (which brings its own in-memory checkpointer)."""

from __future__ import annotations

from typing import Any

from bench.harness import acme
from chorus.agents.tools.builtins import build_registry
from chorus.graphs.compiler import GraphDeps, compile_bot

# No tool runs on the benchmark's turn ("hello"), so no database is needed here.
graph = compile_bot(acme(), GraphDeps(db=None, registry=build_registry(), checkpointer=None, offline=True))  # type: ignore[arg-type]
__all__: list[Any] = ["graph"]
