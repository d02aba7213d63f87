"""`chorus config apply | pull | approve | reject` against a real server over HTTP: the plan first, created /
changed (with its diff) / unchanged / waiting for approval, drift refused unless --force, a pull that applies
back unchanged and holds no secret, approvals by role, and every bad input refused with nothing stored."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from chorus.agents.storage.database import Database
from chorus.agents.tenancy.keys import create_api_key
from tests.conftest import Cli, Tenant, example, free_port

CONFIGS = "/api/v1/configs"


@pytest.fixture
async def key_of(db: Database, tenant: Tenant) -> Callable[[str], Awaitable[str]]:
    async def make(role: str) -> str:
        return await create_api_key(db, tenant_id=tenant.tenant_id, role=role, name=f"{role} key")  # type: ignore[arg-type]

    return make


@pytest.fixture
async def repo(tmp_path: Path) -> Path:
    """A directory as a git repository of configs would hold it: the two example bots."""
    folder = tmp_path / "configs"
    folder.mkdir()
    for name in ("acme_support_bot", "healthcare_scheduler"):
        (folder / f"{name}.json").write_text(json.dumps(example(name), indent=2))
    return folder


async def versions(http: httpx.AsyncClient, config_id: str = "acme_support_bot") -> list[dict[str, Any]]:
    resp = await http.get(f"{CONFIGS}/{config_id}/versions")
    assert resp.status_code == 200, resp.text
    listed: list[dict[str, Any]] = resp.json()["versions"]
    return listed


def edit(path: Path, change: Callable[[dict[str, Any]], None]) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data, indent=2))


def set_tone(tone: str) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        data["system_prompt"]["tone"] = tone

    return change


async def test_apply_creates_then_changes_nothing_then_shows_a_diff(
    cli: Cli, repo: Path, http: httpx.AsyncClient
) -> None:
    first = await cli("config", "apply", str(repo), "-m", "from git", "--yes")
    assert first.code == 0, first.err
    lines = first.out.splitlines()
    assert lines[0].startswith("Plan for 2 file(s) on http://127.0.0.1:")
    assert "  + acme_support_bot.json: acme_support_bot will be created" in lines
    assert "  + healthcare_scheduler.json: healthcare_scheduler will be created" in lines
    # The plan is printed before anything is applied.
    assert lines.index("Plan: 2 to create, 0 to change, 0 unchanged, 0 waiting for approval") < lines.index(
        "  acme_support_bot: v1 created"
    )
    assert lines[-1] == "Applied: 2 version(s) made, 0 waiting for approval."
    (v1,) = await versions(http)
    assert (v1["source"], v1["commit_message"], v1["source_path"]) == ("apply", "from git", "acme_support_bot.json")
    assert v1["author"]["type"] == "api_key" and v1["author"]["role"] == "organization_admin"

    again = await cli("config", "apply", str(repo), "-m", "again", "--yes")
    assert again.code == 0, again.err
    assert "  = acme_support_bot.json: acme_support_bot unchanged (v1)" in again.out
    assert again.out.endswith(
        "Plan: 0 to create, 0 to change, 2 unchanged, 0 waiting for approval\nNothing to apply.\n"
    )
    assert len(await versions(http)) == 1

    edit(repo / "acme_support_bot.json", set_tone("formal"))
    dry = await cli("config", "apply", str(repo), "--dry-run")
    assert dry.code == 0, dry.err
    assert "  ~ acme_support_bot.json: acme_support_bot will change (now v1)" in dry.out
    assert '      system_prompt.tone: "friendly_professional" → "formal"' in dry.out
    assert dry.out.endswith("Dry run: nothing applied.\n") and len(await versions(http)) == 1

    done = await cli("config", "apply", str(repo / "acme_support_bot.json"), "-m", "more formal", "--yes")
    assert done.code == 0, done.err
    assert "  acme_support_bot: v2 is current" in done.out
    current = (await http.get(f"{CONFIGS}/acme_support_bot")).json()
    assert current["version"] == 2 and current["parsed_config"]["system_prompt"]["tone"] == "formal"


async def test_drift_is_refused_with_its_diff_until_forced(cli: Cli, repo: Path, http: httpx.AsyncClient) -> None:
    assert (await cli("config", "apply", str(repo), "-m", "first", "--yes")).code == 0
    patched = await http.patch(
        f"{CONFIGS}/acme_support_bot", json={"system_prompt": {"tone": "calm"}}, params={"commit_message": "hotfix"}
    )
    assert patched.status_code == 200 and patched.json()["status"] == "current", patched.text
    edit(repo / "acme_support_bot.json", set_tone("formal"))

    refused = await cli("config", "apply", str(repo), "-m", "formal", "--yes")
    assert refused.code == 1
    assert "    ! drift: changed on the server since its last apply (v1 -> v2: v2 patch by" in refused.out
    assert '      system_prompt.tone: "friendly_professional" → "calm"' in refused.out
    assert "pass force to overwrite them" in refused.out and "Nothing applied" in refused.err
    assert [v["version"] for v in await versions(http)] == [2, 1]

    # The server's change undone in git too is no drift: the file has what the server has.
    edit(repo / "acme_support_bot.json", set_tone("calm"))
    same = await cli("config", "apply", str(repo), "-m", "adopt", "--yes")
    assert same.code == 0 and "acme_support_bot unchanged (v2)" in same.out, same.out + same.err

    edit(repo / "acme_support_bot.json", set_tone("formal"))
    forced = await cli("config", "apply", str(repo), "-m", "formal wins", "--yes", "--force")
    assert forced.code == 0, forced.err
    assert "  acme_support_bot: v3 is current" in forced.out
    latest = (await versions(http))[0]
    assert (latest["version"], latest["source"], latest["commit_message"]) == (3, "apply", "formal wins")
    # Applied over the drift, the next apply compares with v3: no drift, nothing to do.
    assert "Nothing to apply." in (await cli("config", "apply", str(repo), "-m", "x", "--yes")).out


async def test_pull_writes_files_that_apply_back_unchanged_and_hold_no_secret(
    cli: Cli, tmp_path: Path, http: httpx.AsyncClient
) -> None:
    value = f"sk-{uuid.uuid4().hex}"
    assert (await http.post("/api/v1/secrets", json={"name": "SHOP_API_KEY", "value": value})).status_code == 201
    acme = example("acme_support_bot")
    acme["tools_needed"].append(
        {
            "tool_name": "echo_order",
            "description": "Echo an order to the partner system.",
            "input_schema": {"order_id": "string"},
            "http": {
                "method": "POST",
                "url": "https://shop.example/echo",
                "headers": {"Authorization": "Bearer ${secret:SHOP_API_KEY}"},
            },
        }
    )
    acme["tools_available"].append({"tool_name": "echo_order", "status": "implemented"})
    assert (await http.post(CONFIGS, json=acme)).status_code == 201
    assert (await http.post(CONFIGS, json=example("healthcare_scheduler"))).status_code == 201

    out = tmp_path / "pulled"
    pulled = await cli("config", "pull", str(out))
    assert pulled.code == 0, pulled.err
    assert pulled.out.endswith("Pulled 2 config(s) into " + str(out) + ".\n")
    assert sorted(p.name for p in out.iterdir()) == ["acme_support_bot.json", "healthcare_scheduler.json"]
    text = (out / "acme_support_bot.json").read_text()
    assert value not in text and "Bearer ${secret:SHOP_API_KEY}" in text
    data = json.loads(text)
    assert text == json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    assert "version" not in data["config_metadata"] and data["config_metadata"]["config_id"] == "acme_support_bot"

    back = await cli("config", "apply", str(out), "-m", "round trip", "--yes")
    assert back.code == 0, back.err
    assert "Plan: 0 to create, 0 to change, 2 unchanged, 0 waiting for approval" in back.out

    # One config; into the file of the directory that already holds its id, whatever its name.
    (out / "healthcare_scheduler.json").rename(out / "scheduler.json")
    one = await cli("config", "pull", str(out), "--config", "healthcare_scheduler")
    assert one.code == 0, one.err
    assert sorted(p.name for p in out.iterdir()) == ["acme_support_bot.json", "scheduler.json"]
    missing = await cli("config", "pull", str(out), "--config", "no_such_bot")
    assert missing.code == 1 and "config 'no_such_bot' does not exist" in missing.err and "HTTP 404" in missing.err


async def test_a_medium_change_waits_for_an_organization_admin(
    cli: Cli, repo: Path, http: httpx.AsyncClient, key_of: Callable[[str], Awaitable[str]]
) -> None:
    developer = await key_of("developer")
    assert (await cli("config", "apply", str(repo), "-m", "first", "--yes", key=developer)).code == 0

    def add_tool(data: dict[str, Any]) -> None:
        data["tools_available"].append({"tool_name": "book_appointment", "status": "implemented"})

    edit(repo / "acme_support_bot.json", add_tool)
    applied = await cli("config", "apply", str(repo), "-m", "book too", "--yes", key=developer)
    assert applied.code == 0, applied.err
    assert "will wait for approval from organization_admin (medium risk)" in applied.out
    assert (
        "  acme_support_bot: v2 waits for approval from organization_admin (v1 stays current): "
        "chorus config approve acme_support_bot 2"
    ) in applied.out
    assert applied.out.endswith("Applied: 1 version(s) made, 1 waiting for approval.\n")
    again = await cli("config", "apply", str(repo), "-m", "book too", "--yes", key=developer)
    assert "already waits for approval as v2 (from organization_admin)" in again.out and again.code == 0
    assert len(await versions(http)) == 2  # not a second pending version

    refused = await cli("config", "approve", "acme_support_bot", "2", "-m", "lgtm", key=developer)
    assert refused.code == 1 and "your key may not do this" in refused.err and "HTTP 403" in refused.err
    approved = await cli("config", "approve", "acme_support_bot", "v2", "-m", "fine")
    assert approved.code == 0, approved.err
    assert approved.out == "acme_support_bot: v2 approved; it is now current (current v2)\n"
    twice = await cli("config", "approve", "acme_support_bot", "2")
    assert twice.code == 1 and "not waiting for approval" in twice.err

    def add_another(data: dict[str, Any]) -> None:
        data["tools_available"].append({"tool_name": "check_appointment_availability", "status": "implemented"})

    edit(repo / "acme_support_bot.json", add_another)
    assert (await cli("config", "apply", str(repo), "-m", "and more", "--yes", key=developer)).code == 0
    no_reason = await cli("config", "reject", "acme_support_bot", "3")
    assert no_reason.code == 2
    rejected = await cli("config", "reject", "acme_support_bot", "3", "-m", "not yet")
    assert rejected.code == 0 and rejected.out == "acme_support_bot: v3 rejected; v2 stays current\n", rejected.err
    assert (await versions(http))[0]["status"] == "rejected"


async def test_a_high_change_prints_who_must_still_approve(
    cli: Cli, repo: Path, key_of: Callable[[str], Awaitable[str]]
) -> None:
    assert (await cli("config", "apply", str(repo), "-m", "first", "--yes")).code == 0

    def new_model(data: dict[str, Any]) -> None:
        data["llm_config"]["model"] = "gpt-4.1"

    edit(repo / "acme_support_bot.json", new_model)
    applied = await cli("config", "apply", str(repo), "-m", "bigger model", "--yes")
    assert "organization_admin and platform_engineer (high risk)" in applied.out, applied.out + applied.err
    first = await cli("config", "approve", "acme_support_bot", "2")
    assert first.code == 0 and "it still needs the approval of platform_engineer" in first.out, first.err
    second = await cli("config", "approve", "acme_support_bot", "2", key=await key_of("platform_engineer"))
    assert second.code == 0 and "approved; it is now current" in second.out, second.err


async def test_a_file_whose_id_changed_is_an_error(cli: Cli, repo: Path, http: httpx.AsyncClient) -> None:
    acme = repo / "acme_support_bot.json"
    assert (await cli("config", "apply", str(acme), "-m", "first", "--yes")).code == 0

    def rename(data: dict[str, Any]) -> None:
        data["config_metadata"]["config_id"] = "acme_renamed"

    edit(acme, rename)
    refused = await cli("config", "apply", str(repo), "-m", "renamed", "--yes")
    assert refused.code == 1
    assert "this file was applied as config 'acme_support_bot' and now says 'acme_renamed'" in refused.out
    assert (await http.get(f"{CONFIGS}/acme_renamed")).status_code == 404
    assert (await http.get(f"{CONFIGS}/healthcare_scheduler")).status_code == 404  # nothing half-applied

    # The file renamed as well as a new file with the old id: the old id is still applied, so no error.
    (repo / "old.json").write_text(json.dumps(example("acme_support_bot")))
    both = await cli("config", "apply", str(repo), "-m", "both", "--yes")
    assert both.code == 0, both.out + both.err
    assert (await http.get(f"{CONFIGS}/acme_renamed")).status_code == 200


async def test_force_makes_a_renamed_file_a_new_bot(cli: Cli, tmp_path: Path, http: httpx.AsyncClient) -> None:
    path = tmp_path / "bot.json"
    path.write_text(json.dumps(example("acme_support_bot")))
    assert (await cli("config", "apply", str(path), "-m", "first", "--yes")).code == 0
    edit(path, lambda d: d["config_metadata"].update(config_id="acme_two"))
    assert (await cli("config", "apply", str(path), "-m", "renamed", "--yes")).code == 1
    forced = await cli("config", "apply", str(path), "-m", "renamed", "--yes", "--force")
    assert forced.code == 0 and "acme_two: v1 created" in forced.out, forced.err
    assert (await http.get(f"{CONFIGS}/acme_support_bot")).status_code == 200  # the old bot stays


async def test_bad_input_is_refused_and_nothing_is_stored(
    cli: Cli, repo: Path, http: httpx.AsyncClient, key_of: Callable[[str], Awaitable[str]]
) -> None:
    twin = copy.deepcopy(example("acme_support_bot"))
    twin["system_prompt"]["tone"] = "other"
    (repo / "twin.json").write_text(json.dumps(twin))
    dup = await cli("config", "apply", str(repo), "-m", "dup", "--yes")
    assert dup.code == 1
    assert "'acme_support_bot' is also the id of twin.json: each config lives in one file" in dup.out
    (repo / "twin.json").unlink()

    cases: list[tuple[str, str, str]] = [
        ("broken.json", '{"config_metadata": {', "broken.json: not valid JSON: Expecting property name"),
        ("list.json", "[1, 2]", "list.json: not a bot config"),
    ]
    for name, text, said in cases:
        (repo / name).write_text(text)
        out = await cli("config", "apply", str(repo), "-m", "bad", "--yes")
        assert out.code == 1 and said in out.err and "nothing applied" in out.err, (name, out.err)
        (repo / name).unlink()

    invalid = copy.deepcopy(example("acme_support_bot"))
    invalid["config_metadata"]["config_id"] = "broken_bot"
    invalid["system_prompt"]["trigers"] = ["x"]
    (repo / "invalid.json").write_text(json.dumps(invalid))
    out = await cli("config", "apply", str(repo), "-m", "bad", "--yes")
    assert out.code == 1 and "  ✗ invalid.json: broken_bot is not a valid config" in out.out
    assert "$.system_prompt" in out.out and "trigers" in out.out
    (repo / "invalid.json").unlink()

    no_id = copy.deepcopy(example("acme_support_bot"))
    del no_id["config_metadata"]["config_id"]
    (repo / "no_id.json").write_text(json.dumps(no_id))
    out = await cli("config", "apply", str(repo), "-m", "bad", "--yes")
    assert out.code == 1 and "apply keeps each bot by its id" in out.out
    (repo / "no_id.json").unlink()

    viewer = await cli("config", "apply", str(repo), "-m", "x", "--yes", key=await key_of("viewer"))
    assert viewer.code == 1 and "your key may not do this" in viewer.err and "'viewer'" in viewer.err
    wrong = await cli("config", "apply", str(repo), "-m", "x", "--yes", key="chorus_wrong_key")
    assert wrong.code == 1 and "the server refused the API key" in wrong.err
    assert (await cli("config", "apply", str(repo), "--yes")).code == 2  # no -m
    missing = await cli("config", "apply", str(repo / "nope"), "-m", "x", "--yes")
    assert missing.code == 1 and "no such file or directory" in missing.err
    assert (await http.get(CONFIGS)).json()["total"] == 0


def test_the_command_says_when_the_server_is_down_or_the_key_is_missing(tmp_path: Path) -> None:
    """The real `chorus` process: no server on the port, no key in the environment."""
    path = tmp_path / "acme.json"
    path.write_text(json.dumps(example("acme_support_bot")))
    env = {k: v for k, v in os.environ.items() if k not in ("CHORUS_API_KEY", "CHORUS_URL")}

    def run(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "chorus.cli", "config", *args],
            capture_output=True,
            text=True,
            env={**env, **extra},
            timeout=60,
        )

    down = run("apply", str(path), "-m", "x", "--yes", CHORUS_API_KEY="k", CHORUS_URL=f"http://127.0.0.1:{free_port()}")
    assert down.returncode == 1 and "cannot reach the Chorus server at http://127.0.0.1:" in down.stderr
    assert "is `chorus serve` running?" in down.stderr
    no_key = run("pull", str(tmp_path / "out"))
    assert no_key.returncode == 1 and "no API key: set CHORUS_API_KEY (or pass --key)" in no_key.stderr
    piped = run("approve", "acme", "1", "--url", "ftp://x", CHORUS_API_KEY="k")
    assert piped.returncode == 1 and "'ftp://x' is not a server URL" in piped.stderr


async def test_choosing_the_latest_version_is_written_to_the_history(http: httpx.AsyncClient) -> None:
    acme = example("acme_support_bot")
    created = (await http.post(CONFIGS, json=acme)).json()
    acme["system_prompt"]["tone"] = "calm"
    assert (await http.post(CONFIGS, json=acme)).json()["version"] == 2
    chosen = await http.post(f"/assistants/{created['assistant_id']}/latest", json={"version": 1})
    assert chosen.status_code == 200, chosen.text
    assert chosen.json()["version"] == 3
    newest = (await versions(http))[0]
    assert (newest["version"], newest["source"], newest["rolled_back_to"]) == (3, "rollback", 1)
    assert newest["commit_message"].startswith("Rollback to v1: chosen with POST /assistants/")
    diff = (await http.get(f"{CONFIGS}/acme_support_bot/diff", params={"from": 1, "to": 3})).json()
    assert diff["changed"] is False
    same = await http.post(f"/assistants/{created['assistant_id']}/latest", json={"version": 3})
    assert same.json()["version"] == 3 and len(await versions(http)) == 3  # already current: no new version
