"""Intake: first node of every turn. Captures PII, fires the escalation triggers of the user turn, and
answers straight from an FAQ when auto-answer is on and one matches with enough confidence."""

from __future__ import annotations

import uuid
from typing import Any

from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.runnables import RunnableConfig
from langgraph.graph import END
from langgraph.types import Command

from chorus.agents.configs.models import KnowledgeConfig
from chorus.agents.knowledge.bot_tools import faq_auto_answer
from chorus.agents.observability.metrics import ESCALATIONS
from chorus.agents.pii import extract_pii
from chorus.agents.storage.database import Database
from chorus.agents.tools.registry import ToolContext
from chorus.graphs.escalation import Escalator, escalation_record
from chorus.graphs.state import BotState


def make_intake(
    *, pii_fields: list[str], escalator: Escalator | None, knowledge: KnowledgeConfig | None, db: Database
) -> Any:
    async def answer_from_faq(text: str, update: dict[str, Any], config: RunnableConfig) -> Command[Any]:
        conf = config.get("configurable", {})
        ctx = ToolContext(
            tenant_id=conf["tenant_id"],
            db=db,
            thread_id=conf.get("thread_id"),
            environment=conf.get("environment", "production"),
        )
        faq = await faq_auto_answer(ctx, knowledge, text) if text and not update["suggest_handoff"] else None
        if faq is None:
            return Command(update=update, goto="agent")
        reply = AIMessage(
            content=f"{faq['answer']}\n\n(Source: FAQ \u201c{faq['question']}\u201d)",
            id=str(uuid.uuid4()),
            response_metadata={
                "source": "faq",
                "faq_id": faq["faq_id"],
                "confidence": faq["confidence_score"],
                "matched_via": faq["matched_via"],
            },
        )
        return Command(update={**update, "messages": [reply]}, goto=END)

    async def intake(state: BotState, config: RunnableConfig) -> Command[Any]:
        messages = state.get("messages", [])
        last = messages[-1] if messages else None
        text = str(last.content) if isinstance(last, HumanMessage) else ""
        update: dict[str, Any] = {"suggest_handoff": False}
        if pii_fields and text and (found := extract_pii(text, pii_fields)):
            update["pii"] = found
        if escalator is None:
            return await answer_from_faq(text, update, config)
        if state.get("escalated"):
            reply = AIMessage(content=escalator.after_handoff_text(), id=str(uuid.uuid4()))
            return Command(update={**update, "messages": [reply]}, goto=END)
        fired = escalator.check_user_turn(text) if text else None
        if fired is not None:
            rule, reason = fired
            if rule.immediate:
                ESCALATIONS.labels(rule.kind).inc()
                record = escalation_record(reason, rule.source, "immediate_handoff", escalator.unavailable_action)
                reply = AIMessage(content=escalator.handoff_text(), id=str(uuid.uuid4()))
                return Command(
                    update={**update, "escalated": True, "escalation": record, "messages": [reply]}, goto=END
                )
            update["suggest_handoff"] = True
        return await answer_from_faq(text, update, config)

    return intake
