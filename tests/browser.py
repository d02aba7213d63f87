"""Headless Chromium for the browser tests (Debian's `chromium`, installed by scripts/ensure-chromium.sh), and
where their screenshots go. Without Chromium the tests skip, unless CHORUS_REQUIRE_BROWSER is set (CI)."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from playwright.async_api import Browser, async_playwright

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Screenshots the test run keeps (gitignored): CHORUS_TEST_ARTIFACTS, default ./test-artifacts.
ARTIFACTS = Path(os.environ.get("CHORUS_TEST_ARTIFACTS") or Path(__file__).resolve().parents[1] / "test-artifacts")


def artifact(name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS / name


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    if not Path(CHROMIUM).exists():
        if os.environ.get("CHORUS_REQUIRE_BROWSER"):
            pytest.fail("chromium is required (CHORUS_REQUIRE_BROWSER) but not installed")
        pytest.skip("chromium is not installed (scripts/ensure-chromium.sh installs it)")
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            yield browser
        finally:
            await browser.close()
