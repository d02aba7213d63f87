"""Agent: calls the bot's model (tools bound, fallbacks chained) on the system prompt and history."""

from __future__ import annotations

import uuid
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, SystemMessage
from langchain_core.runnables import RunnableConfig

from chorus.agents.observability.metrics import ESCALATIONS
from chorus.graphs.escalation import SUGGEST_HANDOFF, Escalator, escalation_record
from chorus.graphs.repair import model_view
from chorus.graphs.state import BotState


def make_agent(*, model: Any, system_prompt: str, escalator: Escalator | None) -> Any:
    system = SystemMessage(content=system_prompt)

    async def agent(state: BotState, config: RunnableConfig) -> dict[str, Any]:
        history: list[BaseMessage] = [system, *model_view(state.get("messages", []))]
        answer = await model.ainvoke(history, config)
        if not isinstance(answer, AIMessage):
            answer = AIMessage(content=str(answer.content))
        if not answer.id:
            answer.id = str(uuid.uuid4())
        out: list[BaseMessage] = [answer]
        update: dict[str, Any] = {}
        if escalator is not None and not answer.tool_calls:
            confidence = answer.response_metadata.get("confidence")
            rule = escalator.check_confidence(confidence if isinstance(confidence, (int, float)) else None)
            if rule is not None and rule.immediate:
                ESCALATIONS.labels(rule.kind).inc()
                update["escalated"] = True
                update["escalation"] = escalation_record(
                    f"model confidence {confidence} below {rule.threshold}",
                    rule.source,
                    "immediate_handoff",
                    escalator.unavailable_action,
                )
                out.append(AIMessage(content=escalator.handoff_text(), id=str(uuid.uuid4())))
            elif rule is not None or state.get("suggest_handoff"):
                out.append(AIMessage(content=SUGGEST_HANDOFF, id=str(uuid.uuid4())))
        return {"messages": out, **update}

    return agent


def route_after_agent(state: BotState) -> str:
    messages = state.get("messages", [])
    last = messages[-1] if messages else None
    if isinstance(last, AIMessage) and last.tool_calls:
        return "tools"
    return "__end__"
