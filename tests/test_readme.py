"""The README's snippets run as written: its Python client example against a live server, and its shell
blocks line by line (the only changes: the server's address, and tenant names of this test's own)."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import RunningServer, Tenant, example
from tests.doc_snippets import CLI, ROOT, fences, run_shell_block

README = fences(ROOT / "README.md")


def blocks(language: str) -> list[str]:
    return [fence.body for fence in README if fence.language == language]


def shell_blocks() -> list[str]:
    """The shell blocks that use Chorus (not the two `make` commands: the suite itself is `make test`)."""
    return [b for b in blocks("bash") if ".venv/bin/chorus" in b]


def test_the_readme_shows_the_cli_as_a_fresh_clone_has_it() -> None:
    assert shell_blocks(), "the README lost its CLI examples"
    for block in blocks("bash"):
        assert not re.search(r"(^|[;|&(]\s*)uv run", block, flags=re.MULTILINE), (
            "README commands must run where uv is not on PATH: use .venv/bin/chorus"
        )
    assert CLI.exists(), "the environment has no chorus command (uv sync creates it)"


async def test_the_python_client_example_runs(server: RunningServer, tenant: Tenant, http: httpx.AsyncClient) -> None:
    await http.post("/assistants", json={"graph_id": "chatbot", "context": example("acme_support_bot")})
    (code,) = blocks("python")
    code = code.replace("http://localhost:8000", server.url).replace("chorus_…", tenant.key)
    printed: list[Any] = []
    namespace: dict[str, Any] = {"print": lambda *args: printed.append(args)}
    compiled = compile(code, "README.md", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    await eval(compiled, namespace)
    events = [event for event, _data in printed]
    assert "messages" in events, events
    assert "ORD-1001" in str(printed), "the example's answer is about the order it asks for"


@pytest.mark.parametrize("index", range(len(shell_blocks())))
async def test_the_shell_examples_run(
    index: int, server: RunningServer, tenant: Tenant, database_url: str, tmp_path: Path
) -> None:
    await run_shell_block(
        shell_blocks()[index],
        where=f"README.md shell block {index}",
        server_url=server.url,
        api_key=tenant.key,
        database_url=database_url,
        home=tmp_path,
    )
