"""Bots use the knowledge base: bound tools, cited answers, FAQ auto-answers, the offline model's fallback."""

from __future__ import annotations

import copy
from typing import Any

from langgraph_sdk.client import LangGraphClient

from chorus.agents.configs.models import BotConfig
from chorus.agents.knowledge.faq_import import submit_import
from chorus.agents.knowledge.local_files import ingest_path
from chorus.agents.knowledge.service import KnowledgeBase
from chorus.agents.storage.database import Database
from chorus.agents.tools.builtins import build_registry
from chorus.graphs.compiler import bot_tools
from tests.conftest import Tenant
from tests.knowledge.conftest import CORPUS, FAQ_FILE


async def load_example_knowledge(kb: KnowledgeBase, tenant: Tenant) -> None:
    outcomes = await ingest_path(kb, tenant.tenant_id, CORPUS, namespace="acme_support")
    assert all(o.status == "completed" for o in outcomes)
    job = await submit_import(
        kb.faqs,
        kb.jobs,
        tenant.tenant_id,
        "acme_support_faq",
        FAQ_FILE.name,
        FAQ_FILE.read_bytes(),
        mode="merge",
        mapping=None,
        actor=None,
    )
    assert (await kb.jobs.finished(tenant.tenant_id, job["job_id"]))["status"] == "completed"


async def turn(
    sdk: LangGraphClient, assistant_id: str, text: str, thread_id: str | None = None
) -> tuple[str, list[Any]]:
    if thread_id is None:
        thread_id = (await sdk.threads.create())["thread_id"]
    result = await sdk.runs.wait(thread_id, assistant_id, input={"messages": [{"role": "user", "content": text}]})
    assert isinstance(result, dict)
    return thread_id, result["messages"]


def test_knowledge_block_binds_tools_to_its_namespaces(acme_config: dict[str, Any]) -> None:
    tools = bot_tools(BotConfig.model_validate(acme_config), build_registry())
    assert {"knowledge_search", "faq_search", "fetch_order_status"} <= set(tools)
    assert set(tools["knowledge_search"].input_schema["properties"]) == {"query", "top_k"}  # namespace is bound
    no_kb = copy.deepcopy(acme_config)
    no_kb.pop("knowledge")
    assert "knowledge_search" not in bot_tools(BotConfig.model_validate(no_kb), build_registry())


async def test_answers_from_documents_with_a_citation(
    kb: KnowledgeBase, tenant: Tenant, sdk: LangGraphClient, assistant_id: str
) -> None:
    await load_example_knowledge(kb, tenant)
    _, messages = await turn(sdk, assistant_id, "Can my partner use my membership too?")
    calls = [c["name"] for m in messages if m["type"] == "ai" for c in m.get("tool_calls", [])]
    assert "knowledge_search" in calls
    answer = messages[-1]["content"]
    assert "household" in answer.lower() and "[Acme+ membership, lines" in answer, answer


async def test_faq_auto_answer_skips_the_model(
    kb: KnowledgeBase, tenant: Tenant, sdk: LangGraphClient, assistant_id: str, db: Database
) -> None:
    await load_example_knowledge(kb, tenant)
    thread_id, messages = await turn(sdk, assistant_id, "I forgot my password")
    reply = messages[-1]
    assert reply["content"].startswith("On the sign-in page choose **Forgot password**")
    assert "Source: FAQ" in reply["content"] and reply["response_metadata"]["source"] == "faq"
    assert not any(m.get("tool_calls") for m in messages if m["type"] == "ai")
    async with db.connection() as conn:
        cur = await conn.execute(
            "SELECT matched_via, conversation_id FROM faq_search_logs WHERE tenant_id = %s AND conversation_id = %s",
            (tenant.tenant_id, thread_id),
        )
        logged = await cur.fetchall()
    assert logged and logged[0]["matched_via"] == "alternate_question"


async def test_order_questions_still_use_order_tools(
    kb: KnowledgeBase, tenant: Tenant, sdk: LangGraphClient, assistant_id: str
) -> None:
    await load_example_knowledge(kb, tenant)
    _, messages = await turn(sdk, assistant_id, "What is the status of order ORD-1001?")
    calls = [c["name"] for m in messages if m["type"] == "ai" for c in m.get("tool_calls", [])]
    assert calls == ["fetch_order_status"]


async def test_without_knowledge_the_bot_says_so_and_offers_a_human(sdk: LangGraphClient, assistant_id: str) -> None:
    _, messages = await turn(sdk, assistant_id, "Do you sell replacement blender jars?")
    ai = [m["content"] for m in messages if m["type"] == "ai" and m["content"]]
    assert "couldn't find that" in ai[-2]  # low confidence: the bot's ai_confidence rule suggests a handoff
    assert "connect you with a human" in ai[-1]
