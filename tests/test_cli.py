"""The `chorus` command: keys create, chat (terminal, streaming), threads prune."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from chorus.agents.storage.database import Database
from chorus.agents.tenancy.keys import resolve_api_key
from tests.conftest import EXAMPLES


def run_cli(args: list[str], database_url: str, home: Path, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": database_url, "CHORUS_HOME": str(home), "CHORUS_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "chorus.cli", *args], input=stdin, capture_output=True, text=True, env=env, timeout=120
    )


async def test_keys_create_prints_a_working_key(db: Database, database_url: str, tmp_path: Path) -> None:
    out = run_cli(["keys", "create", "--tenant", "cli-tenant", "--role", "developer"], database_url, tmp_path)
    assert out.returncode == 0, out.stderr
    key = out.stdout.strip()
    principal = await resolve_api_key(db, key)
    assert principal.tenant_name == "cli-tenant" and principal.role == "developer"
    bad = run_cli(["keys", "create", "--role", "root"], database_url, tmp_path)
    assert bad.returncode == 2 and "role must be one of" in bad.stderr


def test_chat_in_the_terminal(database_url: str, tmp_path: Path) -> None:
    out = run_cli(
        ["chat", str(EXAMPLES / "acme_support_bot.json")],
        database_url,
        tmp_path,
        stdin="Where is my order ORD-1003?\nthanks\n",
    )
    assert out.returncode == 0, out.stderr
    assert "[fetch_order_status]" in out.stdout
    assert "delivered" in out.stdout
    assert "You're welcome" in out.stdout


def test_chat_with_unknown_bot(database_url: str, tmp_path: Path) -> None:
    out = run_cli(["chat", "no-such-bot"], database_url, tmp_path)
    assert out.returncode == 1 and "neither a config file nor a config id" in out.stderr


def test_threads_prune(database_url: str, tmp_path: Path) -> None:
    out = run_cli(["threads", "prune"], database_url, tmp_path)
    assert out.returncode == 0 and "pruned" in out.stdout
