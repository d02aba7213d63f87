"""The offline development model: tool calls with arguments from the conversation, follow-ups, answers."""

from __future__ import annotations

import json
from typing import Any

from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage

from chorus.agents.providers.offline import PENDING_ARGUMENTS_KEY, OfflineChatModel
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
    assert call["args"]["order_id"] == "1003"  # as the user wrote it: the tool accepts every spelling
    assert call["args"]["refund_amount"] == 25.5
    assert "broken" in call["args"]["reason"]


def test_asks_for_missing_argument_by_name_then_continues() -> None:
    m = model()
    first = m.invoke([SYSTEM, HumanMessage("I need to check my order status")])
    assert not first.tool_calls
    assert "order id" in str(first.content)
    assert first.additional_kwargs[PENDING_ARGUMENTS_KEY] == ["order_id"]
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


# -- any bot's tools, not only the examples' -----------------------------------------------------------------

RESTAURANT_TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "lookup_reservation",
            "description": "Look up a table reservation.",
            "parameters": {
                "type": "object",
                "properties": {"confirmation": {"type": "string"}},
                "required": ["confirmation"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "book_table",
            "description": "Book a table.",
            "parameters": {
                "type": "object",
                "properties": {
                    "guest": {"type": "string"},
                    "party_size": {"type": "integer"},
                    "seating": {"type": "string", "enum": ["indoor", "terrace", "bar"]},
                    "high_chair": {"type": "boolean"},
                    "deposit": {"type": "number"},
                },
                "required": ["guest", "party_size", "seating", "high_chair", "deposit"],
            },
        },
    },
]


def restaurant() -> OfflineChatModel:
    bound = OfflineChatModel().bind_tools(RESTAURANT_TOOLS)
    assert isinstance(bound, OfflineChatModel)
    return bound


def test_identifiers_are_passed_as_the_user_wrote_them() -> None:
    for said, expected in [("look up reservation 4417", "4417"), ("my reservation is AB-77x, look it up", "AB-77x")]:
        answer = restaurant().invoke([HumanMessage(said)])
        assert answer.tool_calls[0]["args"] == {"confirmation": expected}
    order = model().invoke([SYSTEM, HumanMessage("where is order 4417?")])
    assert order.tool_calls[0]["args"] == {"order_id": "4417"}  # never rewritten into ORD-4417


def test_a_plain_string_argument_is_filled_from_the_answer_to_its_question() -> None:
    m = restaurant()
    history: list[Any] = [HumanMessage("I'd like to look up my reservation")]
    asked = m.invoke(history)
    assert not asked.tool_calls and "confirmation" in str(asked.content)
    history += [asked, HumanMessage("It's Smith-Tuesday.")]
    answer = m.invoke(history)
    assert answer.tool_calls[0]["name"] == "lookup_reservation"
    assert answer.tool_calls[0]["args"] == {"confirmation": "Smith-Tuesday"}


def test_the_question_is_read_back_from_its_words_when_its_metadata_was_lost() -> None:
    m = restaurant()
    asked = m.invoke([HumanMessage("look up my reservation please")])
    text_only = AIMessage(str(asked.content))  # e.g. a client that replays the transcript as text
    answer = m.invoke([HumanMessage("look up my reservation please"), text_only, HumanMessage("golden goose")])
    assert answer.tool_calls[0]["args"] == {"confirmation": "golden goose"}


def test_every_type_is_filled_from_the_answer_one_part_per_argument() -> None:
    m = restaurant()
    history: list[Any] = [HumanMessage("book a table")]
    asked = m.invoke(history)
    assert asked.additional_kwargs[PENDING_ARGUMENTS_KEY] == ["guest", "party_size", "seating", "high_chair", "deposit"]
    history += [asked, HumanMessage("Ada Lovelace, four, the terrace, yes, 20.5")]
    call = m.invoke(history).tool_calls[0]
    assert call["name"] == "book_table"
    assert call["args"] == {
        "guest": "Ada Lovelace",
        "party_size": 4,
        "seating": "terrace",
        "high_chair": True,
        "deposit": 20.5,
    }


def test_an_answer_naming_another_tool_switches_to_it() -> None:
    m = restaurant()
    asked = m.invoke([HumanMessage("book a table")])
    switched = m.invoke([HumanMessage("book a table"), asked, HumanMessage("actually, look up reservation Q-19 first")])
    assert switched.tool_calls[0]["name"] == "lookup_reservation"
    assert switched.tool_calls[0]["args"] == {"confirmation": "Q-19"}


# -- as the simulated user of eval cases (configs/system/user-simulator.json) ----------------------------------

SIMULATOR = SystemMessage("Role: user simulator\n\nYou play a customer.")


def simulator_says(brief: dict[str, Any], heard: list[str]) -> str:
    messages: list[Any] = [SIMULATOR, HumanMessage(f"You are...\n\nSIMULATION BRIEF: {json.dumps(brief)}")]
    for text in heard:  # each of its own lines so far, then what the bot answered
        messages += [AIMessage("(its line)"), HumanMessage(text)]
    return str(OfflineChatModel().invoke(messages).content)


def test_the_simulator_says_its_script_in_order_then_ends() -> None:
    brief = {"scenario": "s", "opening": "hello", "script": ["first", "second"]}
    assert simulator_says(brief, []) == "hello"
    assert simulator_says(brief, ["bot"]) == "first"
    assert simulator_says(brief, ["bot", "bot"]) == "second"
    assert simulator_says(brief, ["bot", "bot", "bot"]).endswith("[END]")


def test_the_simulator_gives_the_facts_asked_for_in_the_order_asked() -> None:
    brief = {"scenario": "I need a table", "script": {"party size": 4, "guest name": "Ada", "order id": "X-1"}}
    assert simulator_says(brief, []) == "I need a table"  # no opening: the scenario
    asked = "To book table, I need your guest name and party size. Could you share them?"
    assert simulator_says(brief, [asked]) == "Ada, 4"
    assert simulator_says(brief, ["What colour is your car?"]) == "I don't know that."
    assert simulator_says(brief, ["Your table is booked for 4."]).endswith("[END]")  # answered, nothing asked


def test_without_a_brief_the_simulator_ends_at_once() -> None:
    answer = OfflineChatModel().invoke([SIMULATOR, HumanMessage("no brief here")])
    assert str(answer.content).endswith("[END]")
