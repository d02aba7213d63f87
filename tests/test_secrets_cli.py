"""`chorus secrets`: set (stdin or --value-file), list, get, rotate, delete, audit; never prints a value."""

from __future__ import annotations

import base64
import json
import os
import uuid
from pathlib import Path

import pytest

from chorus.agents.secrets.repository import Actor
from chorus.agents.storage.database import Database
from chorus.agents.tenancy.keys import ensure_tenant
from tests.agents.test_secrets import secret_value
from tests.conftest import RunningServer
from tests.test_cli import run_cli


def test_secrets_commands(database_url: str, chorus_home: Path, tmp_path: Path) -> None:
    tenant = f"cli-{uuid.uuid4().hex[:8]}"
    first, second = secret_value(), secret_value()
    outputs: list[str] = []

    def cli(*args: str, stdin: str = "") -> tuple[int, str]:
        # The server's home: the CLI and the server share the generated vault key.
        out = run_cli(["secrets", *args, "--tenant", tenant], database_url, chorus_home, stdin=stdin)
        outputs.append(out.stdout + out.stderr)
        return out.returncode, out.stdout + out.stderr

    code, text = cli("set", "CLI_KEY", "--description", "from the CLI", stdin=first + "\n")
    assert code == 0 and "stored CLI_KEY (version 1)" in text, text
    value_file = tmp_path / "value.txt"
    value_file.write_text(second + "\n")
    code, text = cli("set", "FILE_KEY", "--value-file", str(value_file))
    assert code == 0, text
    code, text = cli("set", "CLI_KEY", stdin="again")
    assert code == 1 and "already exists" in text
    code, text = cli("set", "bad name", stdin="x")
    assert code == 1 and "invalid secret name" in text
    code, text = cli("set", "EMPTY_KEY", stdin="")
    assert code == 1 and "empty" in text
    code, text = cli("set", "NO_FILE", "--value-file", str(tmp_path / "missing"))
    assert code == 2 and "no such file" in text

    code, text = cli("list")
    assert code == 0 and "CLI_KEY" in text and "FILE_KEY" in text and "2 secret(s)" in text
    code, text = cli("rotate", "CLI_KEY", "--reason", "scheduled", stdin=second)
    assert code == 0 and "now version 2" in text
    code, text = cli("get", "CLI_KEY")
    assert code == 0 and "version 2" in text and "*****" in text and "scheduled" in text and "from the CLI" in text
    code, text = cli("get", "NOPE")
    assert code == 1 and "no secret named 'NOPE'" in text
    code, text = cli("audit", "CLI_KEY")
    assert code == 0 and all(a in text for a in ("create", "rotate", "read", "cli"))
    code, text = cli("delete", "CLI_KEY")
    assert code == 0 and "deleted CLI_KEY (2 version(s))" in text
    code, text = cli("delete", "CLI_KEY")
    assert code == 1

    for text in outputs:
        assert first not in text and second not in text


async def test_secrets_commands_per_environment(
    db: Database, server: RunningServer, database_url: str, chorus_home: Path
) -> None:
    tenant = f"cli-{uuid.uuid4().hex[:8]}"
    everywhere, staged, staged_two = secret_value(), secret_value(), secret_value()
    outputs: list[str] = []

    def cli(*args: str, stdin: str = "") -> tuple[int, str]:
        out = run_cli(["secrets", *args, "--tenant", tenant], database_url, chorus_home, stdin=stdin)
        outputs.append(out.stdout + out.stderr)
        return out.returncode, out.stdout + out.stderr

    code, text = cli("set", "API_KEY", stdin=everywhere)
    assert code == 0 and "stored API_KEY (version 1) for every environment" in text, text
    code, text = cli("set", "API_KEY", "--environment", "staging", stdin=staged)
    assert code == 0 and "for the staging environment" in text, text
    code, text = cli("set", "API_KEY", "--environment", "staging", stdin="again")
    assert code == 1 and "for the staging environment already exists" in text
    for bad in ("prod", "STAGING", ""):
        code, text = cli("set", "OTHER", "--environment", bad, stdin="v")
        assert code == 2 and "--environment" in text and "'staging' or 'production'" in text, text
        code, text = cli("get", "API_KEY", "--environment", bad)
        assert code == 2 and "unknown environment" in text

    code, text = cli("list")
    lines = [line.split() for line in text.splitlines() if line.startswith("API_KEY")]
    assert [line[1] for line in lines] == ["all", "staging"] and "2 secret(s)" in text
    out = run_cli(["secrets", "list", "--json", "--tenant", tenant], database_url, chorus_home)
    assert [(r["name"], r["environment"]) for r in json.loads(out.stdout)] == [
        ("API_KEY", None),
        ("API_KEY", "staging"),
    ]
    code, text = cli("rotate", "API_KEY", "--environment", "staging", stdin=staged_two)
    assert code == 0 and "rotated API_KEY for the staging environment: now version 2" in text
    code, text = cli("get", "API_KEY", "--environment", "staging")
    assert code == 0 and "version 2" in text and "(the staging environment)" in text
    code, text = cli("get", "API_KEY")
    assert code == 0 and "version 1" in text and "(every environment)" in text
    code, text = cli("get", "API_KEY", "--environment", "production")
    assert code == 1 and "no secret named 'API_KEY' scoped to production" in text

    tenant_id = await ensure_tenant(db, tenant)
    from chorus.agents.secrets.service import SecretVault
    from chorus.agents.tools.registry import ToolContext

    vault: SecretVault = server.app.state.secrets
    staging = ToolContext(tenant_id=tenant_id, db=db, environment="staging", thread_id="t-cli")
    assert await vault.reveal(staging, "API_KEY", tool_name="echo") == staged_two
    assert await vault.reveal(ToolContext(tenant_id=tenant_id, db=db), "API_KEY", tool_name="echo") == everywhere
    code, text = cli("audit", "API_KEY", "--environment", "staging")
    assert code == 0 and "use" in text and "echo in staging thread t-cli" in text and "rotate" in text

    code, text = cli("delete", "API_KEY", "--environment", "staging")
    assert code == 0 and "deleted API_KEY (2 version(s)) for the staging environment" in text
    code, text = cli("get", "API_KEY")
    assert code == 0  # the unscoped one stays
    assert await vault.reveal(staging, "API_KEY", tool_name="echo") == everywhere

    for text in outputs:
        assert all(v not in text for v in (everywhere, staged, staged_two))


async def test_cli_and_server_share_the_vault(
    db: Database, server: RunningServer, database_url: str, chorus_home: Path
) -> None:
    tenant = f"cli-{uuid.uuid4().hex[:8]}"
    value = secret_value()
    out = run_cli(["secrets", "set", "SHARED", "--tenant", tenant], database_url, chorus_home, stdin=value)
    assert out.returncode == 0, out.stderr
    tenant_id = await ensure_tenant(db, tenant)
    from chorus.agents.secrets.service import SecretVault
    from chorus.agents.tools.registry import ToolContext

    vault: SecretVault = server.app.state.secrets
    assert await vault.reveal(ToolContext(tenant_id=tenant_id, db=db), "SHARED", tool_name="t") == value
    await vault.rotate(tenant_id, "SHARED", value="v2", reason=None, actor=Actor("test"))
    assert "version 2" in run_cli(["secrets", "get", "SHARED", "--tenant", tenant], database_url, chorus_home).stdout


def test_serve_refuses_a_malformed_key(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for bad in ("not-a-key", base64.b64encode(os.urandom(16)).decode()):
        monkeypatch.setenv("CHORUS_SECRET_KEY", bad)
        out = run_cli(["serve", "--port", "1"], database_url, tmp_path)
        assert out.returncode == 1
        assert "CHORUS_SECRET_KEY" in out.stderr and "base64" in out.stderr
