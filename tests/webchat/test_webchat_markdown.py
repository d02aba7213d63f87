"""The operator's page at / renders answers as sanitised markdown, shows tool results without the notes they
carry for the model, and fits a phone's width."""

from __future__ import annotations

import copy
import uuid
from typing import Any

import httpx
from playwright.async_api import expect

from chorus.agents.knowledge.service import KnowledgeBase
from tests.browser import artifact, chromium
from tests.conftest import RunningServer, Tenant
from tests.knowledge.test_bot_knowledge import load_example_knowledge
from tests.widget.test_widget_browser import HOSTILE


async def test_the_operator_page_renders_markdown_and_hides_prompt_notes(
    server: RunningServer,
    tenant: Tenant,
    http: httpx.AsyncClient,
    acme_config: dict[str, Any],
    kb: KnowledgeBase,
) -> None:
    await load_example_knowledge(kb, tenant)
    faq = f"faq-{uuid.uuid4().hex[:6]}"
    created = await http.post(
        "/api/v1/rag/faq", json={"namespace": faq, "question": "How do refunds work?", "answer": HOSTILE}
    )
    assert created.status_code == 201, created.text
    config = copy.deepcopy(acme_config)
    config["knowledge"] = {**config["knowledge"], "faq_namespace": faq}
    resp = await http.post("/assistants", json={"graph_id": "chatbot", "context": config})
    assert resp.status_code == 200, resp.text

    async with chromium() as browser:
        page = await (await browser.new_context(viewport={"width": 390, "height": 844})).new_page()
        await page.goto(f"{server.url}/?key={tenant.key}")
        await expect(page.locator("#status")).to_have_text("ready")
        await page.fill("#message", "Can my partner use my membership too?")
        await page.click("#send")
        await expect(page.locator(".msg.ai").last).to_contain_text("Acme+ membership")
        await expect(page.locator(".msg.tool").last).to_contain_text("knowledge_search")
        assert "cite them" not in await page.locator("#log").inner_text()  # the note for the model stays out

        await page.fill("#message", "How do refunds work?")
        await page.click("#send")
        answer = page.locator(".msg.ai").last
        await expect(answer.locator("strong")).to_have_text("Good news!")
        assert await answer.locator("script, img").count() == 0
        assert await page.evaluate("window.__pwned") is None
        assert await page.evaluate("document.documentElement.scrollWidth") <= 390
        await page.screenshot(path=str(artifact("operator-page-390px.png")))
