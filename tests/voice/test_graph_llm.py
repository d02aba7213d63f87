"""The voice session's brain is the compiled graph: text-mode LiveKit sessions on the real checkpointer."""

from __future__ import annotations

from typing import Any

from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from livekit.agents import Agent, AgentSession

from chorus.graphs.compiler import CompiledBot
from chorus.voice.graph_llm import CallThread, GraphLLM, follow_speeches


async def thread_messages(graph: CompiledBot, call: CallThread) -> list[Any]:
    return list((await graph.aget_state(call.runnable_config())).values.get("messages", []))


async def test_a_plain_answer_is_spoken_and_checkpointed(scheduler_graph: CompiledBot, call: CallThread) -> None:
    brain = GraphLLM(scheduler_graph, call)
    async with AgentSession(llm=brain) as session:
        follow_speeches(session, brain)
        await session.start(Agent(instructions="(the graph holds the prompt)"))
        result = await session.run(user_input="hello")
        msg = result.expect.next_event().is_message(role="assistant")
        result.expect.no_more_events()
    said = msg.event().item.text_content or ""
    assert "How can I help you today?" in said
    messages = await thread_messages(scheduler_graph, call)
    assert [type(m) for m in messages] == [HumanMessage, AIMessage]
    assert messages[0].content == "hello"
    assert messages[1].content == said


async def test_a_tool_call_is_answered_from_its_result_never_spoken_raw(
    scheduler_graph: CompiledBot, call: CallThread
) -> None:
    brain = GraphLLM(scheduler_graph, call)
    async with AgentSession(llm=brain) as session:
        await session.start(Agent(instructions=""))
        result = await session.run(user_input="Is there appointment availability on 2030-01-07?")
        msg = result.expect.next_event().is_message(role="assistant")
        result.expect.no_more_events()
    said = msg.event().item.text_content or ""
    assert "available slots: 09:00" in said  # the tool's result, put in words by the answering node
    assert "{" not in said and "available_slots" not in said  # not the raw JSON of the tool message
    messages = await thread_messages(scheduler_graph, call)
    kinds = [type(m) for m in messages]
    assert kinds == [HumanMessage, AIMessage, ToolMessage, AIMessage]
    assert messages[1].tool_calls[0]["name"] == "check_appointment_availability"
    assert '"available_slots"' in messages[2].content
    assert messages[3].content == said


async def test_turns_accumulate_in_the_call_thread(scheduler_graph: CompiledBot, call: CallThread) -> None:
    brain = GraphLLM(scheduler_graph, call)
    async with AgentSession(llm=brain) as session:
        await session.start(Agent(instructions=""))
        await session.run(user_input="hello")
        await session.run(user_input="thanks for the help")
    humans = [m.content for m in await thread_messages(scheduler_graph, call) if isinstance(m, HumanMessage)]
    assert humans == ["hello", "thanks for the help"]  # only the newest user turn was sent each time
