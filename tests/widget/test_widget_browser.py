"""The embeddable widget in headless Chromium, on a shop's page served from another origin than Chorus: a chat
with a tool call, screenshots at desktop and phone widths, a hostile answer neutralised, the key refused where
it does not belong, and an answer that survives a network drop and a reload."""

from __future__ import annotations

import asyncio
import copy
import json
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, Locator, Page, Request, expect

from chorus.agents.knowledge.service import KnowledgeBase
from tests.browser import artifact
from tests.conftest import RunningServer, Tenant, slow_bot
from tests.knowledge.test_bot_knowledge import load_example_knowledge
from tests.widget.conftest import create_key, make_assistant
from tests.widget.host_site import HostSite, Relay, host_site, relay

ORDER_QUESTION = "Where is my order ORD-1001?"
HOSTILE = (
    "**Good news!** Your refund is on its way.\n\n"
    "<script>window.__pwned = 'script'</script>\n"
    '<img src="x" onerror="window.__pwned = \'img\'">\n\n'
    "[Click here](javascript:window.__pwned='link') or see [our policy](https://shop.example.com/refunds).\n\n"
    "Refunds take 5 days [Returns policy, lines 3-5]. Press [Enter] to see order [ORD-1001]."
)


@dataclass
class Shop:
    server: RunningServer
    admin: httpx.AsyncClient
    site: HostSite
    relay: Relay
    assistant_id: str

    async def page_for(
        self,
        browser: Browser,
        assistants: list[str],
        *,
        width: int = 1280,
        csp: str | None = None,
        style: str | None = None,
        **data: str,
    ) -> Page:
        """A page of the shop with the widget, for a new publishable key of these bots (a new visitor)."""
        key = (await create_key(self.admin, assistants, allowed_origins=[self.site.origin]))["key"]
        path = self.site.add(f"/p/{uuid.uuid4().hex[:8]}", api=self.relay.url, key=key, csp=csp, style=style, **data)
        context = await browser.new_context(viewport={"width": width, "height": 800 if width > 500 else 844})
        page = await context.new_page()
        await page.goto(self.site.origin + path)
        return page


@pytest.fixture
async def shop(server: RunningServer, http: httpx.AsyncClient, acme_config: dict[str, Any]) -> AsyncIterator[Shop]:
    config = copy.deepcopy(acme_config)
    config["webchat"] = {"title": "Acme help", "colors": {"primary": "#0a6e4f"}, "greeting": "Hi! How can I help?"}
    assistant_id = await make_assistant(http, config)
    port = int(server.url.rsplit(":", 1)[1])
    with host_site() as site:
        async with relay(port) as proxy:
            yield Shop(server, http, site, proxy, assistant_id)


def widget(page: Page) -> Locator:
    return page.locator("#chorus-widget")  # Playwright's CSS locators reach into its open shadow root


async def send(page: Page, text: str) -> None:
    box = widget(page).get_by_label("Your message")
    await box.fill(text)
    await box.press("Enter")


async def open_chat(page: Page) -> None:
    await widget(page).get_by_role("button", name=re.compile("^Open chat")).click()
    await expect(widget(page).get_by_role("dialog")).to_be_visible()


async def record_activity(page: Page) -> None:
    """Keep every line the activity bar shows (tool status, typing) in window.__activity."""
    await page.evaluate(
        """() => {
            const bar = document.querySelector('#chorus-widget').shadowRoot.querySelector('.activity');
            window.__activity = [];
            new MutationObserver(() => { if (bar.textContent) window.__activity.push(bar.textContent); })
                .observe(bar, {childList: true, subtree: true, characterData: true});
        }"""
    )


async def test_a_visitor_chats_on_the_shop_page(browser: Browser, shop: Shop) -> None:
    # A shop with a strict Content-Security-Policy: scripts and requests to Chorus only, no inline styles.
    csp = f"default-src 'self'; script-src {shop.relay.url}; connect-src {shop.relay.url}; style-src 'self'"
    page = await shop.page_for(browser, [shop.assistant_id], csp=csp)
    violations: list[str] = []
    page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
    await open_chat(page)
    w = widget(page)
    await expect(w.get_by_role("dialog", name="Acme help")).to_be_visible()
    await expect(w.get_by_role("textbox", name="Your message")).to_be_focused()
    await expect(w.locator(".msg.ai").first).to_have_text("Hi! How can I help?")
    await record_activity(page)

    await send(page, ORDER_QUESTION)
    answer = w.locator(".msg.ai").nth(1)
    await expect(answer).to_contain_text("shipped")
    await expect(w.locator(".send")).to_be_enabled()
    seen = await page.evaluate("window.__activity")
    assert "Looking up your order…" in seen, seen  # the tool's human status line, not its name
    panel_text = await w.locator(".panel").inner_text()
    for internal in ("fetch_order_status", "tool_call", "{", "[citation]"):
        assert internal not in panel_text, f"{internal!r} shown to the visitor"
    # Screen readers hear whole messages: the announcer got the answer once, not token by token.
    announced = await w.locator("[data-role=announcer] p").all_inner_texts()
    assert len(announced) == 1 and "shipped" in announced[0], announced
    # The launcher's colour comes from the bot's webchat block.
    color = await w.locator(".launcher").evaluate("b => getComputedStyle(b).backgroundColor")
    assert color == "rgb(10, 110, 79)", color
    await page.screenshot(path=str(artifact("widget-desktop.png")))
    assert not violations, violations

    # Escalation is said plainly.
    await send(page, "I want to talk to a human")
    await expect(w.get_by_role("status").filter(has_text="member of our team")).to_be_visible()

    # Keyboard: Escape closes the panel and gives the focus back to the launcher.
    await page.keyboard.press("Escape")
    await expect(w.locator(".panel")).to_be_hidden()
    await expect(w.locator(".launcher")).to_be_focused()

    # A reload finds the conversation (from the server, for this visitor's token).
    await page.reload()
    await open_chat(page)
    await expect(w.locator(".msg.human")).to_have_text([ORDER_QUESTION, "I want to talk to a human"])
    await expect(w.locator(".escalated")).to_be_visible()
    await expect(w.locator(".msg.ai").nth(1)).to_contain_text("shipped")


# A host page's own styles that have broken embedded widgets: a transform on body (it would carry
# position:fixed along), a small root font size, content-box sizing, a tall page.
HOSTILE_PAGE_STYLE = (
    "html { font-size: 10px; } body { transform: translateZ(0); min-height: 4000px; } "
    "* { box-sizing: content-box; } div { position: relative; z-index: 1; }"
)


@pytest.mark.parametrize("width", [390, 360])
async def test_on_a_phone_nothing_overflows(browser: Browser, shop: Shop, width: int) -> None:
    page = await shop.page_for(browser, [shop.assistant_id], width=width, style=HOSTILE_PAGE_STYLE)
    launcher = await widget(page).locator(".launcher").bounding_box()
    assert launcher is not None and launcher["y"] + launcher["height"] <= 844, launcher  # in view, bottom right
    await open_chat(page)
    await send(page, ORDER_QUESTION + " " + "x" * 120)  # a long unbroken word too
    await expect(widget(page).locator(".msg.ai").nth(1)).to_contain_text("shipped")
    page_width = await page.evaluate("document.documentElement.scrollWidth")
    assert page_width <= width, f"the page scrolls sideways at {width} px ({page_width})"
    box = await widget(page).locator(".panel").bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width, box
    header = await widget(page).locator("header").evaluate("h => h.scrollWidth <= h.clientWidth")
    assert header, "the panel's header overflows"
    await page.screenshot(path=str(artifact(f"widget-{width}px.png")))


async def test_a_hostile_answer_is_neutralised(browser: Browser, shop: Shop, acme_config: dict[str, Any]) -> None:
    faq = f"faq-{uuid.uuid4().hex[:6]}"
    question = "How do refunds work?"
    created = await shop.admin.post("/api/v1/rag/faq", json={"namespace": faq, "question": question, "answer": HOSTILE})
    assert created.status_code == 201, created.text
    config = copy.deepcopy(acme_config)
    config["knowledge"] = {"faq_namespace": faq, "auto_answer_threshold": 0.8}
    config["tools_available"] = [
        *config.get("tools_available", []),
        {"tool_name": "faq_search", "status": "implemented"},
    ]
    bot = await make_assistant(shop.admin, config)
    page = await shop.page_for(browser, [bot])
    await open_chat(page)
    await send(page, question)
    answer = widget(page).locator(".msg.ai").nth(1)
    await expect(answer.locator("strong")).to_have_text("Good news!")
    await expect(widget(page).locator(".send")).to_be_enabled()
    assert await answer.locator("script, img, [onerror]").count() == 0
    assert await page.evaluate("window.__pwned") is None
    # The javascript: link lost its href; the real one opens safely in a new tab.
    links = await answer.locator("a:not(sup a)").evaluate_all(
        "links => links.map(a => [a.textContent, a.getAttribute('href'), a.getAttribute('rel')])"
    )
    assert ["Click here", None, "noopener noreferrer nofollow"] in links, links
    assert ["our policy", "https://shop.example.com/refunds", "noopener noreferrer nofollow"] in links, links
    await answer.get_by_text("Click here").click()
    assert await page.evaluate("window.__pwned") is None
    # The citation is a numbered footnote link, its source listed under the answer.
    await expect(answer.locator("sup.cite a")).to_have_text("1")
    await expect(answer.locator(".footnotes li")).to_have_text(["Returns policy, lines 3-5"])
    assert "[Returns policy" not in await answer.inner_text()
    assert "[Enter]" in await answer.inner_text() and "[ORD-1001]" in await answer.inner_text()  # not sources


async def test_an_answer_from_the_knowledge_base_cites_its_source(
    browser: Browser,
    shop: Shop,
    kb: KnowledgeBase,
    tenant: Tenant,
) -> None:
    await load_example_knowledge(kb, tenant)
    page = await shop.page_for(browser, [shop.assistant_id])
    await open_chat(page)
    await record_activity(page)
    await send(page, "Can my partner use my membership too?")
    answer = widget(page).locator(".msg.ai").nth(1)
    await expect(answer.locator(".footnotes li").first).to_contain_text("Acme+ membership, lines")
    await expect(answer.locator("sup.cite a").first).to_have_text("1")
    assert "Searching our help articles…" in await page.evaluate("window.__activity")
    text = await widget(page).locator(".panel").inner_text()
    assert "cite them" not in text and "[citation]" not in text and "[Acme+" not in text, text
    await answer.locator("sup.cite a").first.click()
    await expect(answer.locator(".footnotes li").first).to_be_focused()


async def test_the_key_is_refused_where_it_does_not_belong(browser: Browser, shop: Shop) -> None:
    other_bot = await make_assistant(shop.admin, slow_bot(copy.deepcopy(await _config(shop)), 1))
    key = (await create_key(shop.admin, [shop.assistant_id], allowed_origins=[shop.site.origin]))["key"]
    context = await browser.new_context()

    async def refused(url: str, *, origin: str, query: str = "") -> None:
        page = await context.new_page()
        await page.goto(url)
        await expect(page.locator("h1")).to_have_text("Acme shop")
        await page.wait_for_function(
            "() => performance.getEntriesByType('resource').some(e => e.name.includes('/widget/v1/config'))"
        )
        await expect(widget(page).locator(".launcher")).to_have_count(0)  # no widget at all
        # What the browser was told (a refused origin cannot even read the answer: no CORS grant).
        headers = {"Origin": origin, "X-Publishable-Key": key}
        async with httpx.AsyncClient(base_url=shop.server.url, headers=headers) as client:
            answer = await client.get(f"/widget/v1/config{query}")
        assert answer.status_code == 403, answer.text
        assert "access-control-allow-origin" not in answer.headers or origin == shop.site.origin

    # From an origin the key does not list (same page, other host name).
    await refused(
        shop.site.other_origin + shop.site.add("/elsewhere", api=shop.relay.url, key=key), origin=shop.site.other_origin
    )
    # For a bot the key does not serve.
    path = shop.site.add("/other-bot", api=shop.relay.url, key=key, assistant=other_bot)
    await refused(shop.site.origin + path, origin=shop.site.origin, query=f"?assistant_id={other_bot}")
    # On the management API the publishable key is no API key.
    async with httpx.AsyncClient(base_url=shop.server.url, headers={"Origin": shop.site.origin}) as client:
        for path in ("/assistants/search", "/threads/search", "/api/v1/configs"):
            for headers in ({"X-Api-Key": key}, {"X-Publishable-Key": key}):
                resp = await client.post(path, headers=headers, json={})
                assert resp.status_code == 401, (path, headers, resp.status_code)


async def _config(shop: Shop) -> dict[str, Any]:
    found = (await shop.admin.get(f"/assistants/{shop.assistant_id}")).json()
    config: dict[str, Any] = found["context"]
    return config


async def _slow_page(browser: Browser, shop: Shop) -> tuple[Page, list[Request]]:
    bot = await make_assistant(shop.admin, slow_bot(await _config(shop), 60))
    page = await shop.page_for(browser, [bot])
    joins: list[Request] = []
    page.on("request", lambda r: joins.append(r) if r.method == "GET" and r.url.endswith("/stream") else None)
    return page, joins


async def _final_answer(shop: Shop, page: Page) -> str:
    """The answer as the server stored it once the run is over, read through the widget API with the page's
    own visitor token."""
    saved = await page.evaluate("Object.entries(localStorage).find(([k]) => k.startsWith('chorus-widget:'))[1]")
    state = json.loads(saved)
    headers = {"Authorization": f"Bearer {state['token']}", "Origin": shop.site.origin}
    async with httpx.AsyncClient(base_url=shop.server.url, headers=headers) as client:
        for _ in range(600):
            body = (await client.get(f"/widget/v1/threads/{state['thread']}/state")).json()
            if body["active_run"] is None:
                return str(body["messages"][-1]["content"])
            await asyncio.sleep(0.05)
    raise AssertionError("the run did not end")


async def test_a_network_drop_mid_answer_resumes_it(browser: Browser, shop: Shop) -> None:
    page, joins = await _slow_page(browser, shop)
    await open_chat(page)
    await send(page, ORDER_QUESTION)
    answer = widget(page).locator(".msg.ai").nth(1)
    await expect(answer).to_contain_text("found")  # the answer is streaming
    shop.relay.cut()  # the network drops mid-answer
    final = await _final_answer(shop, page)
    await expect(answer).to_have_text(final)  # nothing lost, nothing twice
    await expect(widget(page).locator("[role=log]")).to_have_attribute("aria-busy", "false")
    assert joins and all(j.headers.get("last-event-id") for j in joins), "rejoined after the last event seen"
    await expect(widget(page).locator(".notice")).to_have_count(0)


async def test_a_reload_mid_answer_finds_it(browser: Browser, shop: Shop) -> None:
    page, joins = await _slow_page(browser, shop)
    await open_chat(page)
    await send(page, ORDER_QUESTION)
    await expect(widget(page).locator(".msg.ai").nth(1)).to_contain_text("found")
    await page.reload()  # the panel opens again by itself, and the answer goes on
    final = await _final_answer(shop, page)
    await expect(widget(page).locator(".msg.ai")).to_have_count(2)  # greeting + the one answer
    await expect(widget(page).locator(".msg.ai").nth(1)).to_have_text(final)
    await expect(widget(page).locator("[role=log]")).to_have_attribute("aria-busy", "false")
    assert joins, "the reloaded page rejoined the run"


async def test_the_demo_page_embeds_the_widget(browser: Browser, shop: Shop) -> None:
    """/static/widget-demo.html (the page `make run` links to) puts the script tag on itself with ?key=."""
    key = (await create_key(shop.admin, [shop.assistant_id], allowed_origins=[shop.server.url]))["key"]
    page = await browser.new_page()
    await page.goto(f"{shop.server.url}/static/widget-demo.html?key={key}")
    await expect(page.locator("#tag")).to_contain_text(f'data-key="{key}"')
    await open_chat(page)
    await send(page, ORDER_QUESTION)
    await expect(widget(page).locator(".msg.ai").nth(1)).to_contain_text("shipped")
    without = await browser.new_page()
    await without.goto(f"{shop.server.url}/static/widget-demo.html")
    await expect(without.locator("#missing")).to_be_visible()


async def test_a_refused_token_is_renewed_and_the_message_goes_through(browser: Browser, shop: Shop) -> None:
    """A stored visitor token the server refuses (a changed vault key, a clock jump) is replaced, not taken
    for a network failure: the visitor sends as if nothing happened."""
    page = await shop.page_for(browser, [shop.assistant_id])
    await open_chat(page)
    await send(page, ORDER_QUESTION)
    await expect(widget(page).locator(".msg.ai").nth(1)).to_contain_text("shipped")
    await page.evaluate(
        """() => {
            const [name, value] = Object.entries(localStorage).find(([k]) => k.startsWith('chorus-widget:'));
            const saved = JSON.parse(value);
            localStorage.setItem(name, JSON.stringify({...saved, token: 'vt_chorus_forged.token'}));
        }"""
    )
    await page.reload()
    await send(page, "I want to talk to a human")
    await expect(widget(page).locator(".escalated")).to_be_visible()
    await expect(widget(page).locator(".notice.error")).to_have_count(0)
