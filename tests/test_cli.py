"""The `chorus` command: keys create, chat (terminal, streaming), threads prune; one default tenant."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from chorus.agents.storage.database import Database
from chorus.agents.tenancy.keys import DEFAULT_TENANT, resolve_api_key
from tests.conftest import EXAMPLES


def run_cli(
    args: list[str], database_url: str, home: Path, stdin: str = "", **environ: str
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "CHORUS_TENANT"}
    env.update({"DATABASE_URL": database_url, "CHORUS_HOME": str(home), "CHORUS_OFFLINE": "1", **environ})
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
    assert bad.returncode == 2 and "role must be one of" in bad.stderr and "platform_engineer" in bad.stderr


@pytest.mark.parametrize(
    ("given", "role"),
    [("platform_engineer", "platform_engineer"), ("config_manager", "config_manager"), ("admin", "organization_admin")],
)
async def test_keys_create_takes_the_seed_roles_and_the_admin_alias(
    given: str, role: str, db: Database, database_url: str, tmp_path: Path
) -> None:
    out = run_cli(["keys", "create", "--tenant", "cli-roles", "--role", given], database_url, tmp_path)
    assert out.returncode == 0, out.stderr
    assert (await resolve_api_key(db, out.stdout.strip())).role == role


def test_chat_in_the_terminal(database_url: str, tmp_path: Path) -> None:
    out = run_cli(
        ["chat", str(EXAMPLES / "acme_support_bot.json"), "--tenant", "cli-chat"],
        database_url,
        tmp_path,
        stdin="Where is my order ORD-1003?\nthanks\n",
    )
    assert out.returncode == 0, out.stderr
    assert "you> Where is my order ORD-1003?\n  [fetch_order_status]" in out.stdout, "piped input is echoed"
    assert "delivered" in out.stdout
    assert "\nbot> You're welcome" in out.stdout


def test_chat_with_a_file_runs_in_the_demo_tenant_with_its_knowledge(database_url: str, tmp_path: Path) -> None:
    """The README's chat: in the tenant of `make run`, the bot answers from the example knowledge base and
    FAQs, and a second chat with the same file talks to the same bot."""
    said = "Can my partner use my membership too?\nI forgot my password\n"
    first, again = (
        run_cli(["chat", str(EXAMPLES / "acme_support_bot.json")], database_url, tmp_path, stdin=said) for _ in range(2)
    )
    assert first.returncode == 0, first.stderr
    assert "[Acme+ membership" in first.stdout, f"no answer from the knowledge base:\n{first.stdout}"
    assert "(Source: FAQ" in first.stdout, f"no FAQ answer:\n{first.stdout}"
    header = [line.split(", thread")[0] for line in (first.stdout, again.stdout)]
    assert header[0] == header[1], "a second chat with the same file made another bot"


async def test_every_command_defaults_to_the_demo_tenant(db: Database, database_url: str, tmp_path: Path) -> None:
    """`keys create` with no --tenant makes a key of make run's tenant, CHORUS_TENANT changes that for a
    session, and the other commands share the one default (their --help says which)."""
    made = run_cli(["keys", "create", "--role", "viewer"], database_url, tmp_path)
    assert made.returncode == 0, made.stderr
    assert (await resolve_api_key(db, made.stdout.strip())).tenant_name == DEFAULT_TENANT
    elsewhere = run_cli(["keys", "create"], database_url, tmp_path, CHORUS_TENANT="cli-session")
    assert (await resolve_api_key(db, elsewhere.stdout.strip())).tenant_name == "cli-session"
    for command in (["keys", "list"], ["kb", "search"], ["secrets", "set"], ["widget-keys", "create"], ["chat"]):
        page = run_cli([*command, "--help"], database_url, tmp_path, TYPER_USE_RICH="0", COLUMNS="200")
        assert f"default: {DEFAULT_TENANT}]" in page.stdout and "CHORUS_TENANT" in page.stdout, command


def test_chat_with_unknown_bot(database_url: str, tmp_path: Path) -> None:
    out = run_cli(["chat", "no-such-bot"], database_url, tmp_path)
    assert out.returncode == 1 and "neither a config file nor a config id" in out.stderr


def test_threads_prune(database_url: str, tmp_path: Path) -> None:
    out = run_cli(["threads", "prune"], database_url, tmp_path)
    assert out.returncode == 0 and "pruned" in out.stdout
