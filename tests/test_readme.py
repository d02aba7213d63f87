"""The README's snippets run as written: its Python client example as a script against a live server, and
its shell blocks line by line (the only changes: the server's address, and tenants of this test's own)."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from asyncio.subprocess import PIPE
from pathlib import Path

import httpx
import pytest

from tests.conftest import RunningServer, Tenant, example
from tests.doc_snippets import CLI, ROOT, fences, run_shell_block

README = fences(ROOT / "README.md")


def blocks(language: str) -> list[str]:
    return [fence.body for fence in README if fence.language == language]


def shell_blocks() -> list[str]:
    """The shell blocks, but for the two `make` commands (the suite itself is `make test`)."""
    return [b for b in blocks("bash") if not re.match(r"make ", b)]


def test_the_readme_shows_the_cli_as_a_fresh_clone_has_it() -> None:
    assert shell_blocks(), "the README lost its CLI examples"
    for block in blocks("bash"):
        assert not re.search(r"(^|[;|&(]\s*)uv run", block, flags=re.MULTILINE), (
            "README commands must run where uv is not on PATH: use .venv/bin/chorus"
        )
    assert CLI.exists(), "the environment has no chorus command (uv sync creates it)"


def test_the_readme_defines_key_before_using_it() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "export KEY=$(cat .chorus/demo_api_key)" in text, "the README no longer says where KEY comes from"
    assert text.index("export KEY=") < min(text.index('"KEY"'), text.index("$KEY")), "KEY is used before it is set"


async def test_the_python_client_example_runs_as_a_script(
    server: RunningServer, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    """As after `make run`, and then the README's upload of a second copy of the bot: the script picks the
    first, whatever the order of the listing, and its question gets the tool call."""
    first, _copy = [
        (await http.post("/assistants", json={"graph_id": "chatbot", "context": example("acme_support_bot")})).json()
        for _ in range(2)
    ]
    (code,) = blocks("python")
    assert "await" not in code.split("async def", 1)[0], "top-level await: the example would not run as a script"
    # Not subprocess.run: the test server answers the script on this very event loop.
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        code.replace("http://localhost:8000", server.url),
        cwd=ROOT,
        env={**os.environ, "KEY": tenant.key},
        stdout=PIPE,
        stderr=PIPE,
    )
    out, err = (part.decode() for part in await asyncio.wait_for(process.communicate(), timeout=120))
    assert process.returncode == 0, f"the README's Python example failed:\n{out[-3000:]}\n{err[-3000:]}"
    assert "fetch_order_status" in out and "shipped" in out, f"no tool call for the order it asks about:\n{out}"
    (thread,) = (await http.post("/threads/search", json={})).json()
    assert thread["metadata"].get("assistant_id", thread.get("assistant_id")) == first["assistant_id"]


@pytest.mark.parametrize("index", range(len(shell_blocks())))
async def test_the_shell_examples_run(
    index: int, server: RunningServer, tenant: Tenant, database_url: str, tmp_path: Path
) -> None:
    await run_shell_block(
        shell_blocks()[index],
        where=f"README.md shell block {index}",
        server_url=server.url,
        tenant=tenant,
        database_url=database_url,
        home=tmp_path,
    )
