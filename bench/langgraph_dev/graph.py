"""The example support bot, compiled for `langgraph dev` (which brings its own in-memory checkpointer).

Without its knowledge block (no Chorus database here); the run passes the `tenant_id` the nodes expect.
"""

from __future__ import annotations

from typing import Any

from bench.harness import ACME_NO_KNOWLEDGE
from chorus.agents.configs.models import BotConfig
from chorus.agents.tools.builtins import build_registry
from chorus.graphs.compiler import GraphDeps, compile_bot

# No tool runs on the benchmark's turn ("hello") and no knowledge is configured, so no database is needed.
graph = compile_bot(
    BotConfig.model_validate(ACME_NO_KNOWLEDGE),
    GraphDeps(db=None, registry=build_registry(), checkpointer=None, offline=True),  # type: ignore[arg-type]
)
__all__: list[Any] = ["graph"]
