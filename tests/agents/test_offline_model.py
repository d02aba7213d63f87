"""The offline development model: tool calls with arguments from the conversation, follow-ups, answers."""

from __future__ import annotations

import json

from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage

from chorus.agents.providers.offline import OfflineChatModel
from chorus.agents.tools.builtins import build_registry

TOOLS = [t.openai_schema() for t in build_registry().all()]
SYSTEM = SystemMessage("Role: support\n\nTone: friendly professional")


def model() -> OfflineChatModel:
    bound = OfflineChatModel().bind_tools(TOOLS)
    assert isinstance(bound, OfflineChatModel)
    return bound


def test_calls_matching_tool_with_arguments_from_the_message() -> None:
    answer = model().invoke([SYSTEM, HumanMessage("Where is my order ORD-1001?")])
    assert answer.tool_calls == [
        {
            "name": "fetch_order_status",
            "args": {"order_id": "ORD-1001"},
            "id": answer.tool_calls[0]["id"],
            "type": "tool_call",
        }
    ]


def test_takes_several_argument_types() -> None:
    answer = model().invoke([SYSTEM, HumanMessage("Please refund $25.50 on order ord 1003, it arrived broken")])
    call = answer.tool_calls[0]
    assert call["name"] == "initiate_refund"
    assert call["args"]["order_id"] == "ORD-1003"
    assert call["args"]["refund_amount"] == 25.5
    assert "broken" in call["args"]["reason"]


def test_asks_for_missing_argument_by_name_then_continues() -> None:
    m = model()
    first = m.invoke([SYSTEM, HumanMessage("I need to check my order status")])
    assert not first.tool_calls
    assert "order id" in str(first.content)
    second = m.invoke([SYSTEM, HumanMessage("I need to check my order status"), first, HumanMessage("ORD-1002")])
    assert second.tool_calls[0]["name"] == "fetch_order_status"
    assert second.tool_calls[0]["args"] == {"order_id": "ORD-1002"}


def test_answers_from_tool_result() -> None:
    call = {"name": "fetch_order_status", "args": {"order_id": "ORD-1001"}, "id": "c1", "type": "tool_call"}
    result = ToolMessage(
        json.dumps({"order_id": "ORD-1001", "status": "shipped", "carrier": "UPS"}),
        tool_call_id="c1",
        name="fetch_order_status",
    )
    answer = model().invoke([SYSTEM, HumanMessage("Where is ORD-1001?"), AIMessage("", tool_calls=[call]), result])
    assert not answer.tool_calls
    assert "shipped" in str(answer.content) and "UPS" in str(answer.content)


def test_tool_error_is_explained() -> None:
    call = {"name": "fetch_order_status", "args": {"order_id": "ORD-9"}, "id": "c1", "type": "tool_call"}
    result = ToolMessage("no order 'ORD-9' was found", tool_call_id="c1", name="fetch_order_status", status="error")
    answer = model().invoke([SYSTEM, HumanMessage("ORD-9?"), AIMessage("", tool_calls=[call]), result])
    assert "couldn't" in str(answer.content) and "ORD-9" in str(answer.content)


def test_plain_answer_in_tone_with_confidence() -> None:
    greeting = model().invoke([SYSTEM, HumanMessage("hello there")])
    assert str(greeting.content).startswith("Thanks!")
    assert greeting.response_metadata["confidence"] >= 0.5
    empathetic = OfflineChatModel().invoke([SystemMessage("Tone: empathetic professional"), HumanMessage("zzz")])
    assert str(empathetic.content).startswith("I understand.")
    assert empathetic.response_metadata["confidence"] < 0.5


def test_streams_token_by_token_with_usage() -> None:
    chunks = list(OfflineChatModel().stream([SYSTEM, HumanMessage("hello")]))
    texts = [c.content for c in chunks if c.content]
    assert len(texts) > 3
    assert any(c.usage_metadata for c in chunks)


def test_streams_tool_calls() -> None:
    chunks = list(model().stream([SYSTEM, HumanMessage("status of ORD-1001 please")]))
    merged = chunks[0]
    for c in chunks[1:]:
        merged += c
    assert merged.tool_calls[0]["args"] == {"order_id": "ORD-1001"}
