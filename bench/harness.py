"""Shared set-up for the benchmarks: a database, a tenant, and the example bot compiled two ways.

"chorus" is the bot as Chorus runs it (DeltaChannel messages, lock-free pooled checkpointer).
"stock" is the same nodes on stock LangGraph: add_messages state and the stock AsyncPostgresSaver.
Both use the offline model with no token delay, i.e. a zero-latency scripted model.

Every benchmark takes its sizes as flags (`--help`), and `--tiny` for the smoke test's sizes. One embedded
Postgres serves all the benchmarks of a process; `BENCH_DATABASE_URL` points them at another one instead.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypedDict

from langchain_core.messages import AnyMessage, HumanMessage
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph.graph import START, StateGraph
from langgraph.graph.message import add_messages

from chorus.agents.configs.models import BotConfig
from chorus.agents.providers.factory import build_chat_model
from chorus.agents.settings import Settings
from chorus.agents.storage.database import Database, open_database
from chorus.agents.storage.embedded import embedded_database_url
from chorus.agents.tenancy.keys import ensure_tenant
from chorus.agents.tools.builtins import build_registry
from chorus.graphs.checkpointer import ChorusCheckpointer
from chorus.graphs.compiler import CompiledBot, GraphDeps, bot_tools, compile_bot
from chorus.graphs.escalation import Escalator
from chorus.graphs.nodes.agent import make_agent, route_after_agent
from chorus.graphs.nodes.intake import make_intake
from chorus.graphs.nodes.tools import make_tools_node
from chorus.graphs.prompt import build_system_prompt
from chorus.graphs.state import _merge

ROOT = Path(__file__).resolve().parents[1]
ACME = json.loads((ROOT / "configs" / "examples" / "acme_support_bot.json").read_text())


class StockState(TypedDict, total=False):
    messages: Annotated[list[AnyMessage], add_messages]
    pii: Annotated[dict[str, str], _merge]
    escalated: bool
    escalation: dict[str, Any] | None
    suggest_handoff: bool


# The example bot without its knowledge block, for `langgraph dev`, which has no Chorus database: its FAQ
# auto-answer and knowledge tools need one. Both sides of bench.vs_langgraph_dev run this same config.
ACME_NO_KNOWLEDGE = {k: v for k, v in ACME.items() if k != "knowledge"}


def acme() -> BotConfig:
    return BotConfig.model_validate(ACME)


def compile_chorus(db: Database, checkpointer: BaseCheckpointSaver[Any] | None) -> CompiledBot:
    return compile_bot(acme(), GraphDeps(db=db, registry=build_registry(), checkpointer=checkpointer, offline=True))


def compile_stock(db: Database, checkpointer: BaseCheckpointSaver[Any] | None) -> CompiledBot:
    """The same nodes and edges as compile_bot, on stock LangGraph state."""
    cfg = acme()
    tools = bot_tools(cfg, build_registry())
    model = build_chat_model(cfg.llm_config, tools=[t.openai_schema() for t in tools.values()], offline=True)
    escalator = Escalator.from_config(cfg.workflow_features.human_escalation)
    pii = cfg.workflow_features.pii_collection
    graph = StateGraph(StockState)
    graph.add_node(
        "intake",
        make_intake(pii_fields=pii.fields if pii else [], escalator=escalator, knowledge=cfg.knowledge, db=db),
        destinations=("agent", "__end__"),
        input_schema=StockState,
    )
    graph.add_node(
        "agent",
        make_agent(model=model, system_prompt=build_system_prompt(cfg, tool_names=list(tools)), escalator=escalator),
        input_schema=StockState,
    )
    graph.add_node(
        "tools",
        make_tools_node(tools=tools, db=db, escalator=escalator),
        destinations=("agent", "__end__"),
        input_schema=StockState,
    )
    graph.add_edge(START, "intake")
    graph.add_conditional_edges(
        "agent", lambda state: route_after_agent(state), {"tools": "tools", "__end__": "__end__"}
    )
    return graph.compile(checkpointer=checkpointer)


_EMBEDDED: dict[str, str] = {}


def bench_database_url() -> str:
    """BENCH_DATABASE_URL, else this process's embedded Postgres (started on first use)."""
    url = os.environ.get("BENCH_DATABASE_URL")
    if url:
        return url
    if "url" not in _EMBEDDED:
        _EMBEDDED["url"] = embedded_database_url(Path(tempfile.mkdtemp(prefix="chorus-bench-")))
    return _EMBEDDED["url"]


async def open_bench_database() -> tuple[Database, str]:
    url = bench_database_url()
    settings = Settings(home=Path(tempfile.gettempdir()), database_url=url, offline=True, pool_max_size=40)
    db = await open_database(settings, url=url)
    return db, url


def parse_sizes(doc: str | None, defaults: dict[str, int], tiny: dict[str, int]) -> dict[str, int]:
    """A benchmark's sizes from its command line: `--<size> N` each, `--tiny` for the smoke test's."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true", help="the smoke test's sizes: seconds, not minutes")
    for name, value in defaults.items():
        flag = "--" + name.replace("_", "-")
        parser.add_argument(flag, dest=name, type=int, default=None, help=f"default {value}, tiny {tiny[name]}")
    args = parser.parse_args()
    base = tiny if args.tiny else defaults
    return {name: getattr(args, name) if getattr(args, name) is not None else base[name] for name in defaults}


async def stock_saver(url: str) -> tuple[AsyncPostgresSaver, Any]:
    manager = AsyncPostgresSaver.from_conn_string(url)
    saver = await manager.__aenter__()
    await saver.setup()
    return saver, manager


async def new_tenant(db: Database) -> str:
    return await ensure_tenant(db, f"bench-{uuid.uuid4().hex[:8]}")


def turn(text: str) -> dict[str, Any]:
    return {"messages": [HumanMessage(text, id=str(uuid.uuid4()))]}


# Alternating turns: a plain answer, then one with a tool call (agent -> tools -> agent).
SCRIPT = ["thanks for the help", "Where is my order ORD-1001?"]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def load_average() -> str:
    """The machine's 1, 5 and 15 minute load averages (/proc/loadavg): these 2 cores are shared."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def median(values: list[float]) -> float:
    return statistics.median(values)


@dataclass
class BenchRig:
    """A database with a tenant, and both checkpointers on it: Chorus's and the stock one."""

    db: Database
    tenant_id: str
    chorus_saver: ChorusCheckpointer
    stock_saver: AsyncPostgresSaver
    _stock_cm: Any

    async def close(self) -> None:
        await self._stock_cm.__aexit__(None, None, None)
        await self.db.close()


async def open_rig() -> BenchRig:
    db, url = await open_bench_database()
    tenant_id = await new_tenant(db)
    chorus = ChorusCheckpointer(db.pool)
    await chorus.setup()
    stock, manager = await stock_saver(url)
    return BenchRig(db, tenant_id, chorus, stock, manager)
