"""The README's snippets run as written: its Python client example against a live server, and its shell
blocks line by line (the only changes: the server's address, and tenant names of this test's own)."""

from __future__ import annotations

import ast
import asyncio
import os
import re
import uuid
from asyncio.subprocess import PIPE
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import RunningServer, Tenant, example

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
CLI = ROOT / ".venv" / "bin" / "chorus"


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.DOTALL)


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
    block = shell_blocks()[index]
    suffix = uuid.uuid4().hex[:8]
    script = (
        block.replace("localhost:8000", server.url.removeprefix("http://"))
        .replace("--tenant acme", f"--tenant acme-{suffix}")
        .replace("--tenant demo", f"--tenant demo-{suffix}")
    )
    env = {
        **os.environ,
        "KEY": tenant.key,
        "DATABASE_URL": database_url,
        "CHORUS_HOME": str(tmp_path),
        "CHORUS_OFFLINE": "1",
        "CHORUS_LOG_LEVEL": "WARNING",
    }
    # Not subprocess.run: the test server answers the block's curl on this very event loop.
    process = await asyncio.create_subprocess_exec(
        "bash", "-e", "-o", "pipefail", "-c", script, cwd=ROOT, env=env, stdout=PIPE, stderr=PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=240)
    assert process.returncode == 0, (
        f"README shell block {index} failed:\n{out.decode()[-3000:]}\n{err.decode()[-3000:]}"
    )
