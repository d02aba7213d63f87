"""/widget.js as served: one script within the size budget, compressed and cacheable; the vendored libraries
are the versions the docs name; the bot's tool status lines reach the widget's config."""

from __future__ import annotations

import copy
import gzip
import re
from typing import Any

import httpx

from chorus.webchat.widget_bundle import VENDOR_DIR, VENDORED, bundle
from tests.conftest import RunningServer
from tests.widget.conftest import Site, make_assistant

BUDGET_GZIP_BYTES = 50 * 1024  # issue 8: at most 50 KB of JavaScript, gzipped


async def test_the_script_is_served_compressed_and_cacheable(server: RunningServer) -> None:
    async with httpx.AsyncClient(base_url=server.url) as client:
        plain = await client.get("/widget.js", headers={"Accept-Encoding": "identity"})
        assert plain.status_code == 200 and plain.headers["content-type"].startswith("text/javascript")
        assert "content-encoding" not in plain.headers
        assert plain.content == bundle().script
        packed = await client.get("/widget.js", headers={"Accept-Encoding": "gzip, br"})
        assert packed.headers["content-encoding"] == "gzip"
        assert packed.content == bundle().script  # httpx decodes it: the same script
        assert int(packed.headers["content-length"]) == len(bundle().gzipped) <= BUDGET_GZIP_BYTES
        again = await client.get("/widget.js", headers={"If-None-Match": plain.headers["etag"]})
        assert again.status_code == 304 and not again.content
        assert "max-age" in plain.headers["cache-control"]


def test_the_script_stays_within_its_size_budget() -> None:
    assert len(gzip.compress(bundle().script, 9)) <= BUDGET_GZIP_BYTES


def test_the_libraries_do_not_leak_into_the_host_page() -> None:
    script = bundle().script.decode()
    assert script.startswith("/*! Chorus chat widget") and script.rstrip().endswith("})();")
    assert "sourceMappingURL" not in script  # the maps are not shipped


def test_the_vendored_files_are_the_versions_the_docs_name() -> None:
    readme = (VENDOR_DIR / "README.md").read_text()
    for file, (library, version) in VENDORED.items():
        head = (VENDOR_DIR / file).read_text()[:400]
        assert re.search(rf"{library}\s+v?{re.escape(version)}", head, flags=re.IGNORECASE), (file, head[:120])
        assert f"`{file}`" in readme and version in readme, f"vendor/README.md does not name {file} {version}"


async def test_tool_status_lines_reach_the_widget(site: Site, acme_config: dict[str, Any]) -> None:
    config = copy.deepcopy(acme_config)
    config["webchat"] = {"tool_status": {"initiate_refund": "Sorting out your refund…", "*": "One moment…"}}
    bot = await make_assistant(site.admin, config)
    key = (
        await site.admin.post(
            "/api/v1/publishable-keys", json={"assistant_ids": [bot], "allowed_origins": ["https://shop.example.com"]}
        )
    ).json()["key"]
    async with httpx.AsyncClient(
        base_url=site.server.url, headers={"X-Publishable-Key": key, "Origin": "https://shop.example.com"}
    ) as client:
        lines = (await client.get("/widget/v1/config")).json()["tool_status"]
    assert lines["initiate_refund"] == "Sorting out your refund…" and lines["*"] == "One moment…"
    assert lines["fetch_order_status"] == "Looking up your order…"  # a built-in tool's own line


async def test_tool_status_lines_are_checked(http: httpx.AsyncClient, acme_config: dict[str, Any]) -> None:
    for bad in ({"bad name!": "x"}, {"fetch_order_status": ""}, {"fetch_order_status": "x" * 81}):
        config = copy.deepcopy(acme_config)
        config["webchat"] = {"tool_status": bad}
        resp = await http.post("/api/v1/configs/validate", json=config)
        assert resp.status_code in (200, 422), resp.text
        body = resp.json()
        assert not body.get("valid", False), (bad, body)
        assert "webchat.tool_status" in str(body), body
