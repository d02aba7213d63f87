"""The compiler: both examples compile; escalation, PII capture and tool errors behave as configured."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.runnables import RunnableConfig

from chorus.agents.configs.models import BotConfig
from chorus.agents.storage.database import Database
from chorus.agents.tools.builtins import build_registry
from chorus.graphs.checkpointer import ChorusCheckpointer
from chorus.graphs.compiler import CompiledBot, GraphDeps, bot_tools, compile_bot
from chorus.graphs.repair import CANCELLED, dangling_tool_calls, model_view
from tests.conftest import Tenant, example


@pytest.fixture
async def checkpointer(db: Database) -> ChorusCheckpointer:
    saver = ChorusCheckpointer(db.pool)
    await saver.setup()
    return saver


def compile_example(name: str, db: Database, checkpointer: ChorusCheckpointer, **overrides: Any) -> CompiledBot:
    raw = example(name)
    raw.update(overrides)
    cfg = BotConfig.model_validate(raw)
    return compile_bot(cfg, GraphDeps(db=db, registry=build_registry(), checkpointer=checkpointer, offline=True))


def conf(tenant: Tenant) -> RunnableConfig:
    return {"configurable": {"thread_id": str(uuid.uuid4()), "tenant_id": tenant.tenant_id}}


async def say(graph: CompiledBot, config: RunnableConfig, text: str) -> dict[str, Any]:
    out: dict[str, Any] = await graph.ainvoke({"messages": [HumanMessage(text, id=str(uuid.uuid4()))]}, config)
    return out


@pytest.mark.parametrize("name", ["acme_support_bot", "healthcare_scheduler"])
async def test_examples_compile_to_intake_agent_tools(
    name: str, db: Database, checkpointer: ChorusCheckpointer
) -> None:
    graph = compile_example(name, db, checkpointer)
    assert {"intake", "agent", "tools"} <= set(graph.get_graph().nodes)


def test_only_implemented_tools_are_bound() -> None:
    """Implemented tools, plus the knowledge tools its `knowledge` block binds; never the missing ones."""
    cfg = BotConfig.model_validate(example("acme_support_bot"))
    assert sorted(bot_tools(cfg, build_registry())) == [
        "escalate_to_human",
        "faq_search",
        "fetch_order_status",
        "initiate_refund",
        "knowledge_search",
        "update_shipping_address",
    ]


async def test_tool_turn_and_pii_capture(db: Database, checkpointer: ChorusCheckpointer, tenant: Tenant) -> None:
    graph = compile_example("acme_support_bot", db, checkpointer)
    config = conf(tenant)
    out = await say(graph, config, "Hi, I'm Jane Doe, jane@example.com. Where is my order ORD-1001?")
    kinds = [m.type for m in out["messages"]]
    assert kinds == ["human", "ai", "tool", "ai"]
    assert "shipped" in str(out["messages"][-1].content)
    assert out["pii"] == {"email": "jane@example.com", "name": "Jane Doe", "order_id": "ORD-1001"}


async def test_tool_error_becomes_a_tool_message(
    db: Database, checkpointer: ChorusCheckpointer, tenant: Tenant
) -> None:
    graph = compile_example("acme_support_bot", db, checkpointer)
    out = await say(graph, conf(tenant), "Where is my order ORD-4242?")
    tool_msg = next(m for m in out["messages"] if isinstance(m, ToolMessage))
    assert tool_msg.status == "error"
    assert "ORD-4242" in str(out["messages"][-1].content)


async def test_user_asking_for_human_stops_the_bot(
    db: Database, checkpointer: ChorusCheckpointer, tenant: Tenant
) -> None:
    graph = compile_example("acme_support_bot", db, checkpointer)
    config = conf(tenant)
    out = await say(graph, config, "Can I speak to a real person please")
    assert out["escalated"] is True
    assert out["escalation"]["trigger"] == "user_requests_human"
    assert "callback" in str(out["messages"][-1].content)  # unavailable_action: queue_callback
    # From now on the bot does not answer; no tool runs, no model call.
    after = await say(graph, config, "Where is my order ORD-1001?")
    assert not any(isinstance(m, ToolMessage) for m in after["messages"])
    assert "human agent has this conversation" in str(after["messages"][-1].content)


async def test_negative_sentiment_escalates(db: Database, checkpointer: ChorusCheckpointer, tenant: Tenant) -> None:
    graph = compile_example("acme_support_bot", db, checkpointer)
    out = await say(graph, conf(tenant), "This is awful. Worst service ever, I am furious and disgusted!")
    assert out["escalated"] is True
    assert "sentiment" in out["escalation"]["reason"]


async def test_low_confidence_suggests_handoff(db: Database, checkpointer: ChorusCheckpointer, tenant: Tenant) -> None:
    graph = compile_example("acme_support_bot", db, checkpointer)
    out = await say(graph, conf(tenant), "qwxz blorp")
    assert not out.get("escalated")
    assert "connect you with a human" in str(out["messages"][-1].content)


async def test_emergency_transfers_voicebot(db: Database, checkpointer: ChorusCheckpointer, tenant: Tenant) -> None:
    graph = compile_example("healthcare_scheduler", db, checkpointer)
    out = await say(graph, conf(tenant), "My father has chest pain right now")
    assert out["escalated"] is True
    assert "voicemail" in str(out["messages"][-1].content)  # unavailable_action: take_voicemail


async def test_escalate_tool_marks_thread(db: Database, checkpointer: ChorusCheckpointer, tenant: Tenant) -> None:
    raw_features = example("acme_support_bot")["workflow_features"]
    raw_features["human_escalation"]["triggers"] = []  # only the tool can escalate now
    graph = compile_example("acme_support_bot", db, checkpointer, workflow_features=raw_features)
    out = await say(graph, conf(tenant), "please escalate this to a human agent")
    assert any(isinstance(m, ToolMessage) and m.name == "escalate_to_human" for m in out["messages"])
    assert out["escalated"] is True


async def test_dangling_tool_call_is_repaired_for_the_model(
    db: Database, checkpointer: ChorusCheckpointer, tenant: Tenant
) -> None:
    graph = compile_example("acme_support_bot", db, checkpointer)
    config = conf(tenant)
    call = {"name": "fetch_order_status", "args": {"order_id": "ORD-1001"}, "id": "call-x", "type": "tool_call"}
    # A run that died after the model asked for a tool, before the tool answered:
    await graph.aupdate_state(
        config,
        {"messages": [HumanMessage("ORD-1001?", id="h1"), AIMessage("", tool_calls=[call], id="a1")]},
        as_node="agent",
    )
    before = await graph.aget_state(config)
    repairs = dangling_tool_calls(before.values["messages"])
    assert [(r.tool_call_id, r.status) for r in repairs] == [("call-x", "error")]
    # Even unrepaired, the next turn works: the model sees the call answered as cancelled.
    out = await say(graph, config, "hello again")
    assert isinstance(out["messages"][-1], AIMessage) and out["messages"][-1].content
    view = model_view(out["messages"])
    assert any(isinstance(m, ToolMessage) and m.content == CANCELLED for m in view)
