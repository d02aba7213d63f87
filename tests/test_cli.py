"""The `chorus` command: keys create, chat (terminal, streaming), threads prune, config versions/diff/rollback;
one default tenant."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from chorus.agents.configs.history import Author
from chorus.agents.configs.repository import ConfigRepository
from chorus.agents.configs.service import ConfigService
from chorus.agents.storage.database import Database
from chorus.agents.tenancy.keys import DEFAULT_TENANT, ensure_tenant, resolve_api_key
from chorus.agents.tools.builtins import build_registry
from tests.conftest import EXAMPLES, example


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


async def test_config_versions_diff_and_rollback(db: Database, database_url: str, tmp_path: Path) -> None:
    """`chorus config versions | diff | rollback` in one tenant, straight to the database; a rollback made
    here is authored by "cli"."""
    tenant = f"cli-versions-{uuid.uuid4().hex[:8]}"
    tenant_id = await ensure_tenant(db, tenant)
    service = ConfigService(ConfigRepository(db), build_registry())
    config = example("acme_support_bot")
    await service.upload(tenant_id, config, author=Author.cli())
    calm = {**config, "system_prompt": {**config["system_prompt"], "tone": "calm"}}
    await service.upload(tenant_id, calm, author=Author.cli(), commit_message="calmer")

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return run_cli(["config", *args, "--tenant", tenant], database_url, tmp_path)

    diff = cli("diff", "acme_support_bot", "--from", "1", "--to", "2")
    assert diff.returncode == 0, diff.stderr
    assert diff.stdout.splitlines() == [
        "acme_support_bot: v1 -> v2",
        '  system_prompt.tone: "friendly_professional" -> "calm"',
    ]
    done = cli("rollback", "acme_support_bot", "--to", "v1", "--reason", "too calm")
    assert done.returncode == 0, done.stderr
    assert "rolled back from v2 to v1 as v3 (Rollback to v1: too calm)" in done.stdout
    listed = cli("versions", "acme_support_bot")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0].startswith("acme_support_bot (Acme Support, chatbot): current version 3 of 3")
    assert lines[1].startswith("* v3") and "rollback" in lines[1] and "cli (cli)" in lines[1]
    assert lines[1].endswith("Rollback to v1: too calm") and lines[2].endswith("calmer")
    assert cli("diff", "acme_support_bot", "--from", "1", "--to", "3").stdout.endswith("  no changes\n")

    for args, said in (
        (["rollback", "acme_support_bot", "--to", "9", "--reason", "x"], "has no version 9"),
        (["rollback", "acme_support_bot", "--to", "latest", "--reason", "x"], "'latest' is not a version"),
        (["diff", "acme_support_bot", "--from", "0"], "'0' is not a version"),
        (["versions", "no_such_bot"], "config 'no_such_bot' does not exist"),
    ):
        out = cli(*args)
        assert out.returncode == 1 and said in out.stderr, (args, out.stderr)
    assert "3 of 3" in cli("versions", "acme_support_bot").stdout  # nothing stored by the refusals
    # `chorus chat` takes the config's own id too, in the tenant given.
    chat = run_cli(["chat", "acme_support_bot", "--tenant", tenant], database_url, tmp_path, stdin="hello\n")
    assert chat.returncode == 0 and "\nbot> " in chat.stdout, chat.stderr
