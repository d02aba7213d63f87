"""The embeddable widget: bytes of JavaScript shipped, and time from page load to an interactive launcher.

Size: `/widget.js` as a browser receives it (gzip), against the 50 KB budget, and the part of it that is the
two bundled libraries (DOMPurify, marked): what Chorus's own code adds.

Time: a shop's page (served from another port: the widget's real cross-origin path) loaded in headless
Chromium with a fresh cache each time; from navigation start to the launcher on the page (the script
loaded, the bot's look fetched with the publishable key, the button rendered and clickable). Baseline: the
same page's `load` event without the widget, measured in the same run.

    uv run python -m bench.widget [--loads 20] [--tiny]
"""

from __future__ import annotations

import asyncio
import gzip
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from bench.harness import median, parse_sizes, pct
from bench.server_process import chorus_server
from chorus.webchat.widget_bundle import VENDOR_DIR, VENDORED

SIZES = {"loads": 20}
TINY = {"loads": 2}
BUDGET_BYTES = 50 * 1024
CHROMIUM = Path("/usr/bin/chromium")
PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Shop</title></head>
<body><h1>Shop</h1><p>Things for sale.</p>{script}</body></html>"""
# Records when the widget's launcher is on the page (navigation start = 0).
WATCH = """new MutationObserver((_, observer) => {
  const host = document.getElementById('chorus-widget');
  if (host && host.shadowRoot && host.shadowRoot.querySelector('.launcher')) {
    window.__launcherAt = performance.now(); observer.disconnect();
  }
}).observe(document, {childList: true, subtree: true});"""


class _QuietPages(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


async def _sizes(url: str) -> dict[str, float]:
    async with httpx.AsyncClient(base_url=url) as client:
        shipped = await client.get("/widget.js", headers={"Accept-Encoding": "gzip"})
        shipped.raise_for_status()
    wire = int(shipped.headers["content-length"])
    libraries = sum(len(gzip.compress((VENDOR_DIR / name).read_bytes(), 9)) for name in VENDORED)
    return {"gzip_bytes": wire, "raw_bytes": len(shipped.content), "libraries_gzip_bytes": libraries}


@contextmanager
def _pages() -> Iterator[tuple[str, Path]]:
    """A folder of pages served on a port of its own: its origin and the folder."""
    with tempfile.TemporaryDirectory() as folder:
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietPages, directory=folder))
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        try:
            yield f"http://127.0.0.1:{httpd.server_address[1]}", Path(folder)
        finally:
            httpd.shutdown()
            httpd.server_close()


async def _publishable_key(url: str, admin_key: str, assistant_id: str, origin: str) -> str:
    async with httpx.AsyncClient(base_url=url, headers={"x-api-key": admin_key}) as admin:
        created = await admin.post(
            "/api/v1/publishable-keys",
            json={"assistant_ids": [assistant_id], "allowed_origins": [origin], "name": "bench"},
        )
        created.raise_for_status()
        return str(created.json()["key"])


async def _load_times(url: str, key: str, origin: str, folder: Path, loads: int) -> dict[str, float]:
    from playwright.async_api import async_playwright

    (folder / "plain.html").write_text(PAGE.format(script=""))
    (folder / "shop.html").write_text(
        PAGE.format(script=f'<script src="{url}/widget.js" data-key="{key}" async></script>')
    )
    plain: list[float] = []
    ready: list[float] = []
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=["--headless", "--no-sandbox"])
        for i in range(loads + 1):  # the first warms up the server and the browser
            context = await browser.new_context()  # a fresh cache: a first visit
            page = await context.new_page()
            await page.goto(f"{origin}/plain.html", wait_until="load")
            loaded = await page.evaluate("performance.getEntriesByType('navigation')[0].loadEventEnd")
            await page.add_init_script(WATCH)
            await page.goto(f"{origin}/shop.html")
            await page.wait_for_function("window.__launcherAt !== undefined", timeout=30_000)
            at = await page.evaluate("window.__launcherAt")
            await context.close()
            if i:
                plain.append(float(loaded))
                ready.append(float(at))
        await browser.close()
    return {"launcher_p50_ms": median(ready), "launcher_p95_ms": pct(ready, 0.95), "plain_load_p50_ms": median(plain)}


async def main(*, loads: int = SIZES["loads"]) -> dict[str, float]:
    times: dict[str, float] | None = None
    async with chorus_server() as server:
        result: dict[str, float] = await _sizes(server.url)
        if CHROMIUM.exists():
            with _pages() as (origin, folder):
                key = await _publishable_key(server.url, server.key, server.assistant_id, origin)
                times = await _load_times(server.url, key, origin, folder, loads)
    result["ratio_budget"] = result["gzip_bytes"] / BUDGET_BYTES
    own = result["gzip_bytes"] - result["libraries_gzip_bytes"]
    line = (
        f"widget: /widget.js {result['gzip_bytes'] / 1024:.1f} KB gzipped ({result['ratio_budget']:.2f}x the "
        f"{BUDGET_BYTES // 1024} KB budget; the two libraries {result['libraries_gzip_bytes'] / 1024:.1f} KB, "
        f"Chorus's own code {own / 1024:.1f} KB; {result['raw_bytes'] / 1024:.0f} KB unpacked)"
    )
    if times is None:
        line += "; page load to launcher: skipped (no Chromium at /usr/bin/chromium)"
    else:
        result.update(times)
        result["ratio_launcher"] = times["launcher_p50_ms"] / times["plain_load_p50_ms"]
        line += (
            f"; page load to an interactive launcher p50 {times['launcher_p50_ms']:.0f} ms, p95 "
            f"{times['launcher_p95_ms']:.0f} ms ({result['ratio_launcher']:.2f}x the page's own load, "
            f"{times['plain_load_p50_ms']:.0f} ms; {loads} first visits)"
        )
    print(line, flush=True)
    return result


if __name__ == "__main__":
    asyncio.run(main(**parse_sizes(__doc__, SIZES, TINY)))
