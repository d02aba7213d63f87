"""Compile a bot config into a LangGraph StateGraph: intake -> agent <-> tools.

workflow_features become behaviour: human_escalation (triggers, the escalate tool, the handoff),
pii_collection (fields captured into state). Compiled graphs are cached per (config_id, version).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from chorus.agents.configs.models import BotConfig
from chorus.agents.knowledge.bot_tools import KNOWLEDGE_TOOLS, bound_tools
from chorus.agents.providers.factory import build_chat_model
from chorus.agents.storage.database import Database
from chorus.agents.tools.builtin_call import call_tools
from chorus.agents.tools.http_tool import build_http_tool
from chorus.agents.tools.registry import RegisteredTool, SecretResolver, ToolRegistry
from chorus.graphs.escalation import Escalator
from chorus.graphs.nodes.agent import make_agent, route_after_agent
from chorus.graphs.nodes.intake import make_intake
from chorus.graphs.nodes.tools import make_tools_node
from chorus.graphs.prompt import build_system_prompt
from chorus.graphs.state import BotState

CompiledBot = CompiledStateGraph[Any, Any, Any, Any]


@dataclass
class GraphDeps:
    db: Database
    registry: ToolRegistry
    checkpointer: BaseCheckpointSaver[Any] | None
    offline: bool
    secrets: SecretResolver | None = None  # the tenant vault HTTP tools reveal header secrets from


def bot_tools(cfg: BotConfig, registry: ToolRegistry) -> dict[str, RegisteredTool]:
    """The tools a bot can call: implemented ones, HTTP declarations taking precedence over built-ins, and
    the knowledge tools its `knowledge` block binds, and a voicebot's call-control tools (end_call, transfer_call)."""
    tools: dict[str, RegisteredTool] = {}
    knowledge = bound_tools(cfg.knowledge)
    for name in cfg.implemented_tools():
        spec = cfg.tool_needed(name)
        if name in KNOWLEDGE_TOOLS:
            continue
        if spec is not None and spec.http is not None:
            tools[name] = build_http_tool(spec)
        elif name in registry:
            tools[name] = registry.get(name)
    return {**tools, **knowledge, **call_tools(cfg)}


def _opaque(node: Callable[..., Any]) -> Callable[..., Any]:
    """A node as LangGraph compiles it fastest. LangGraph looks for subgraphs a node may run by walking the
    bytecode of the node function and of everything its closure holds (the model, the tools, the database):
    half the time of compiling a bot. A Chorus node never runs a subgraph, and a `partial` is not a function,
    so LangGraph does not look inside (nor infer input and output types, which the graph states itself: the
    state schema and each node's `destinations`). A node that ever runs a subgraph must be added as it is."""
    return partial(node)


def compile_bot(cfg: BotConfig, deps: GraphDeps) -> CompiledBot:
    tools = bot_tools(cfg, deps.registry)
    model = build_chat_model(cfg.llm_config, tools=[t.openai_schema() for t in tools.values()], offline=deps.offline)
    escalator = Escalator.from_config(cfg.workflow_features.human_escalation)
    pii = cfg.workflow_features.pii_collection
    pii_fields = pii.fields if pii and pii.enabled else []

    graph = StateGraph(BotState)
    graph.add_node(
        "intake",
        _opaque(make_intake(pii_fields=pii_fields, escalator=escalator, knowledge=cfg.knowledge, db=deps.db)),
        destinations=("agent", "__end__"),
    )
    graph.add_node(
        "agent",
        _opaque(
            make_agent(model=model, system_prompt=build_system_prompt(cfg, tool_names=list(tools)), escalator=escalator)
        ),
    )
    graph.add_edge(START, "intake")
    if tools:
        graph.add_node(
            "tools",
            _opaque(make_tools_node(tools=tools, db=deps.db, escalator=escalator, secrets=deps.secrets)),
            destinations=("agent", "__end__"),
        )
        graph.add_conditional_edges("agent", route_after_agent, {"tools": "tools", "__end__": "__end__"})
    else:
        graph.add_edge("agent", "__end__")
    return graph.compile(checkpointer=deps.checkpointer, name=cfg.display_name)


CHATBOT_NODES = ("intake", "agent", "tools")  # every node a chatbot's graph can have (`tools` if it has tools)


@dataclass
class GraphCache:
    """Compiled graphs per (config_id, version, variant): a config version never changes, nor does an
    environment's overrides revision (the variant), so entries never go stale."""

    deps: GraphDeps
    capacity: int = 256
    _entries: OrderedDict[tuple[str, int, tuple[object, ...]], CompiledBot] = field(default_factory=OrderedDict)

    def get(self, config_id: str, version: int, cfg: BotConfig, *, variant: tuple[object, ...] = ()) -> CompiledBot:
        key = (config_id, version, variant)
        graph = self._entries.get(key)
        if graph is None:
            graph = compile_bot(cfg, self.deps)
            self._entries[key] = graph
            if len(self._entries) > self.capacity:
                self._entries.popitem(last=False)
        else:
            self._entries.move_to_end(key)
        return graph
