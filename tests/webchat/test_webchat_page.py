"""The webchat page in headless Chromium: lists bots, streams an answer with a tool call, shows escalation."""

from __future__ import annotations

from pathlib import Path

from playwright.async_api import Browser, expect

from tests.conftest import RunningServer, Tenant


async def test_chat_in_the_browser(
    browser: Browser, server: RunningServer, tenant: Tenant, assistant_id: str, tmp_path: Path
) -> None:
    page = await browser.new_page()
    await page.goto(f"{server.url}/?key={tenant.key}")
    await expect(page.locator("#bot option")).to_have_count(1)
    assert "key=" not in page.url  # the key moves to localStorage, out of the address bar
    await expect(page.locator(".msg.ai").first).to_contain_text("Acme's support assistant")  # first_message

    await page.fill("#message", "Where is my order ORD-1001?")
    await page.click("#send")
    await expect(page.locator(".msg.tool").first).to_contain_text("fetch_order_status")
    await expect(page.locator(".msg.ai").last).to_contain_text("shipped")
    await expect(page.locator("#status")).to_have_text("ready")

    await page.fill("#message", "I want to talk to a human")
    await page.click("#send")
    await expect(page.locator("#escalated-banner")).to_be_visible()
    await page.screenshot(path=str(tmp_path / "webchat.png"))

    # Reloading the page resumes the same conversation, from the server's state.
    await page.reload()
    await expect(page.locator(".msg.user")).to_have_count(2)
    await expect(page.locator(".msg.ai").nth(1)).to_contain_text("shipped")
    await expect(page.locator("#escalated-banner")).to_be_visible()
    await page.click("#new-thread")
    await expect(page.locator(".msg.user")).to_have_count(0)
    await expect(page.locator("#escalated-banner")).to_be_hidden()


async def test_page_asks_for_a_key(browser: Browser, server: RunningServer) -> None:
    page = await browser.new_page()
    await page.goto(server.url + "/")
    await expect(page.locator("#key-panel")).to_be_visible()
    await page.fill("#key-input", "chorus_wrong")
    await page.click("#key-form button")
    await expect(page.locator("#status")).to_contain_text("unknown API key")
