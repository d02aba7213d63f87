"""The official React hook (`useStream` from @langchain/langgraph-sdk/react, npm) in Chromium against a live
server: a minimal page (tests/js/use_stream_page), bundled with esbuild and set up as agent-chat-ui sets it
up, streams an answer token by token, stops one, edits a question into a new branch, regenerates an
answer, and rejoins a running answer after a reload. The page is served from its own origin (another
port), so every API call is a real cross-origin request with its preflight."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from langgraph_sdk.client import LangGraphClient
from playwright.async_api import Browser, Page, expect

from chorus.agents.settings import Settings
from chorus.agents.storage.database import Database
from chorus.server import create_app
from tests.conftest import Tenant, slow_bot
from tests.fakes import serve

ORDER_QUESTION = "Where is my order ORD-1001?"
# Every text the page's answers show, in order: the test reads it to see tokens arrive one by one.
RECORD_ANSWERS = """
window.__answers = [];
new MutationObserver(() => {
  for (const el of document.querySelectorAll(".msg.ai .text")) {
    if (window.__answers.at(-1) !== el.textContent) window.__answers.push(el.textContent);
  }
}).observe(document, { subtree: true, childList: true, characterData: true });
"""
TIMEOUT_MS = 60_000


@pytest.fixture(scope="session")
def page_bundle(node_sdk: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The page and its bundle (app.jsx + React + the SDK, built by esbuild from the locked node_modules)."""
    out = tmp_path_factory.mktemp("use-stream-page")
    source = node_sdk / "use_stream_page"
    subprocess.run(
        [
            str(node_sdk / "node_modules" / ".bin" / "esbuild"),
            str(source / "app.jsx"),
            "--bundle",
            "--format=esm",
            "--platform=browser",
            "--jsx=automatic",
            '--define:process.env.NODE_ENV="production"',
            f"--outfile={out / 'app.js'}",
            "--log-level=warning",
        ],
        cwd=node_sdk,
        check=True,
        timeout=120,
    )
    (out / "index.html").write_text((source / "index.html").read_text())
    return out


@dataclass
class PageSite:
    """The page on its own origin, and a Chorus server (sharing the test database) that lets that origin in."""

    origin: str
    api_url: str


@pytest.fixture(scope="module")
async def site(page_bundle: Path, settings: Settings, db: Database) -> AsyncIterator[PageSite]:
    static = FastAPI()
    static.mount("/", StaticFiles(directory=page_bundle, html=True))
    async with serve(static) as origin:
        # As a developer deploys it for their own app: CHORUS_CORS_ORIGINS names the app's origin.
        api = create_app(replace(settings, cors_origins=origin), database=db)
        async with serve(api) as api_url:
            yield PageSite(origin, api_url)


@pytest.fixture
async def page(browser: Browser, tenant: Tenant) -> AsyncIterator[Page]:
    """A fresh browser profile with the key in localStorage (where agent-chat-ui keeps it); fails the test
    on any script error in the page."""
    context = await browser.new_context()
    await context.add_init_script(f"window.localStorage.setItem('lg:chat:apiKey', {tenant.key!r});")
    await context.add_init_script(RECORD_ANSWERS)
    page = await context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    expect.set_options(timeout=TIMEOUT_MS)  # a shared, loaded machine: conditions, with generous waits
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    expect.set_options(timeout=5_000)
    await context.close()
    assert not errors, errors


async def open_chat(page: Page, site: PageSite) -> list[dict[str, Any]]:
    """The page pointed at the server with the graph id as its assistant, as agent-chat-ui is set up; the
    API responses it gets, with their CORS grant, are collected in the list returned."""
    api: list[dict[str, Any]] = []
    page.on(
        "response",
        lambda r: (
            api.append({"url": r.url, "allow_origin": r.headers.get("access-control-allow-origin")})
            if r.url.startswith(site.api_url)
            else None
        ),
    )
    await page.goto(f"{site.origin}/?" + urlencode({"apiUrl": site.api_url, "assistantId": "chatbot"}))
    await expect(page.locator("#status")).to_have_text("ready")
    return api


async def make_bot(sdk: LangGraphClient, config: dict[str, Any], delay_ms: int) -> None:
    """The tenant's only chatbot (so the graph id `chatbot` names it), streaming with a pause per token."""
    await sdk.assistants.create(graph_id="chatbot", context=slow_bot(config, delay_ms))


async def send(page: Page, text: str) -> None:
    await page.fill("#message", text)
    await page.click("#send")


async def answers_seen(page: Page) -> list[str]:
    seen: list[str] = await page.evaluate("window.__answers")
    return seen


def thread_of(page: Page) -> str:
    return parse_qs(urlsplit(page.url).query)["threadId"][0]


def text_of(message: dict[str, Any]) -> str:
    content = message["content"]
    if isinstance(content, str):
        return content
    return "".join(block.get("text", "") for block in content if block.get("type") == "text")


async def wait_for_run_end(sdk: LangGraphClient, thread_id: str) -> list[dict[str, Any]]:
    for _ in range(600):
        runs = [dict(r) for r in await sdk.runs.list(thread_id)]
        if runs and all(r["status"] not in ("pending", "running") for r in runs):
            return runs
        await asyncio.sleep(0.1)
    raise AssertionError(f"the runs of thread {thread_id} did not end: {runs}")


async def test_an_answer_streams_and_an_edit_forks_the_thread(
    page: Page, site: PageSite, sdk: LangGraphClient, acme_config: dict[str, Any], tmp_path: Path
) -> None:
    await make_bot(sdk, acme_config, 40)
    api = await open_chat(page, site)
    answer = page.locator(".msg.ai .text").last

    # 1. The answer appears token by token, then whole, and is the thread's answer on the server.
    await send(page, ORDER_QUESTION)
    await expect(answer).to_contain_text("shipped")
    await expect(page.locator("#status")).to_have_text("ready")
    thread_id = thread_of(page)
    final = await answer.text_content()
    state = await sdk.threads.get_state(thread_id)
    assert text_of(state["values"]["messages"][-1]) == final
    partials = [t for t in await answers_seen(page) if t and t != final]
    assert partials and all(final.startswith(t) for t in partials), "the answer grew token by token"
    await page.screenshot(path=str(tmp_path / "use-stream-answer.png"))

    # 2. Edit the question: a new branch from the state before it; the old question and answer are gone.
    old_answer_id = await page.locator(".msg.ai").last.get_attribute("data-id")
    await page.locator(".msg.human .edit").first.click()
    await page.fill(".edit-text", "Where is my order ORD-1003?")
    await page.click(".save-edit")
    await expect(page.locator(".msg.human .text")).to_have_text(["Where is my order ORD-1003?"])
    await expect(page.locator("#status")).to_have_text("ready")
    await expect(page.locator(".msg.ai").last).not_to_have_attribute("data-id", old_answer_id or "")
    await expect(page.locator("#messages")).not_to_contain_text("ORD-1001")
    state = await sdk.threads.get_state(thread_id)
    assert [text_of(m) for m in state["values"]["messages"] if m["type"] == "human"] == ["Where is my order ORD-1003?"]
    assert await answer.text_content() == text_of(state["values"]["messages"][-1])
    history = await sdk.threads.get_history(thread_id, limit=100)

    parent = {s["checkpoint"]["checkpoint_id"]: (s["parent_checkpoint"] or {}).get("checkpoint_id") for s in history}

    def first_seen(question: str) -> str:
        """The checkpoint where `question` entered the thread (as useStream's getMessagesMetadata finds it)."""
        states = [s for s in history if any(text_of(m) == question for m in s["values"].get("messages", []))]
        return str(states[-1]["checkpoint"]["checkpoint_id"])

    def ancestors(checkpoint_id: str | None) -> list[str]:
        chain = []
        while checkpoint_id is not None:
            chain.append(checkpoint_id)
            checkpoint_id = parent.get(checkpoint_id)
        return chain

    # The edited question descends from the checkpoint before the original one: a fork, old branch kept.
    fork_point = parent[first_seen(ORDER_QUESTION)]
    assert fork_point in ancestors(first_seen("Where is my order ORD-1003?"))
    assert first_seen(ORDER_QUESTION) not in ancestors(first_seen("Where is my order ORD-1003?"))
    await page.screenshot(path=str(tmp_path / "use-stream-edited.png"))

    # 3. Regenerate the answer: a new answer to the same single question.
    edited_answer_id = await page.locator(".msg.ai").last.get_attribute("data-id")
    await page.locator(".msg.ai .regenerate").last.click()
    await expect(page.locator(".msg.ai").last).not_to_have_attribute("data-id", edited_answer_id or "")
    await expect(page.locator("#status")).to_have_text("ready")
    await expect(page.locator(".msg.human")).to_have_count(1)
    state = await sdk.threads.get_state(thread_id)
    assert state["values"]["messages"][-1]["id"] == await page.locator(".msg.ai").last.get_attribute("data-id")

    # Every answer the page read crossed origins with the server's CORS grant.
    assert api and all(r["allow_origin"] == site.origin for r in api), api


async def test_stop_cancels_the_run(
    page: Page, site: PageSite, sdk: LangGraphClient, acme_config: dict[str, Any], tmp_path: Path
) -> None:
    await make_bot(sdk, acme_config, 300)
    await open_chat(page, site)
    await send(page, ORDER_QUESTION)
    await expect(page.locator(".msg.ai .text").last).not_to_be_empty()
    await page.click("#stop")
    await expect(page.locator("#status")).to_have_text("ready")
    runs = await wait_for_run_end(sdk, thread_of(page))
    assert [r["status"] for r in runs] == ["interrupted"]
    # The answer stays as far as it got ("shipped" comes a dozen tokens in).
    stopped = await page.locator(".msg.ai .text").last.text_content()
    assert stopped and "shipped" not in stopped
    await page.screenshot(path=str(tmp_path / "use-stream-stopped.png"))


async def test_a_reload_rejoins_the_running_answer(
    page: Page, site: PageSite, sdk: LangGraphClient, acme_config: dict[str, Any], tmp_path: Path
) -> None:
    await make_bot(sdk, acme_config, 250)
    await open_chat(page, site)
    await send(page, ORDER_QUESTION)
    await expect(page.locator(".msg.ai .text").last).not_to_be_empty()
    thread_id = thread_of(page)

    async with page.expect_request(lambda r: r.method == "GET" and urlsplit(r.url).path.endswith("/stream")) as joined:
        await page.reload()
    assert f"/threads/{thread_id}/runs/" in (await joined.value).url
    answer = page.locator(".msg.ai .text").last
    await expect(answer).to_contain_text("shipped")
    await expect(page.locator("#status")).to_have_text("ready")
    runs = await wait_for_run_end(sdk, thread_id)
    assert [r["status"] for r in runs] == ["success"]

    # The whole answer once: as the server has it, and never anything but a prefix of it on the way.
    final = await answer.text_content()
    state = await sdk.threads.get_state(thread_id)
    assert text_of(state["values"]["messages"][-1]) == final
    seen = await answers_seen(page)  # since the reload
    assert any(t != final for t in seen) and all(final.startswith(t) for t in seen), seen
    await expect(page.locator(".msg.human")).to_have_count(1)
    await expect(page.locator(".msg.ai")).to_have_count(1)
    await page.screenshot(path=str(tmp_path / "use-stream-rejoined.png"))
