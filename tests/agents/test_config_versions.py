"""Config history over the API: a file's config_id is its identity in its tenant, every change is a new
immutable version with its author, source and message, versions compare as a diff, and a rollback is a new
version; threads keep the version they started with."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import httpx
import jsonpatch
import pytest

from chorus.agents.configs.history import Author
from chorus.agents.configs.repository import ConfigRepository
from chorus.agents.configs.service import ConfigService
from chorus.agents.storage.database import Database
from chorus.agents.tenancy.keys import create_api_key
from chorus.agents.tools.builtins import build_registry
from chorus.demo import load_config_file
from tests.conftest import EXAMPLES, RunningServer, Tenant, example, make_tenant

CONFIGS = "/api/v1/configs"
HELLO = {"messages": [{"role": "user", "content": "hello"}]}


def with_tone(config: dict[str, Any], tone: str) -> dict[str, Any]:
    cfg = copy.deepcopy(config)
    cfg["system_prompt"]["tone"] = tone
    return cfg


async def upload(http: httpx.AsyncClient, config: dict[str, Any], **params: str) -> dict[str, Any]:
    resp = await http.post(CONFIGS, json=config, params=params)
    assert resp.status_code in (200, 201), resp.text
    body: dict[str, Any] = resp.json()
    assert (resp.status_code == 201) == body["created"]
    return body


async def test_uploading_a_file_again_appends_a_version_only_when_it_changed(
    http: httpx.AsyncClient, acme_config: dict[str, Any]
) -> None:
    first = await upload(http, acme_config)
    assert (first["config_id"], first["version"], first["created"], first["changed"]) == (
        "acme_support_bot",
        1,
        True,
        True,
    )
    assert first["parsed_config"]["config_metadata"]["config_id"] == "acme_support_bot"

    same = await upload(http, acme_config)
    reordered = copy.deepcopy(acme_config)
    reordered["tools_needed"].reverse()
    moved = await upload(http, reordered)
    for again in (same, moved):
        assert (again["version"], again["created"], again["changed"]) == (1, False, False)
        assert again["assistant_id"] == first["assistant_id"]

    changed = await upload(http, with_tone(acme_config, "empathetic_professional"))
    assert (changed["version"], changed["created"], changed["changed"]) == (2, False, True)
    assert changed["assistant_id"] == first["assistant_id"]
    # One bot, not one per upload (the webchat lists the assistants).
    bots = (await http.post("/assistants/search", json={})).json()
    assert [b["assistant_id"] for b in bots] == [first["assistant_id"]] and bots[0]["version"] == 2
    # Read by the file's id or by the assistant id.
    for ident in ("acme_support_bot", first["assistant_id"]):
        got = (await http.get(f"{CONFIGS}/{ident}")).json()
        assert (got["config_id"], got["version"]) == ("acme_support_bot", 2)
    assert (await http.get(f"{CONFIGS}/acme_support_bot", params={"version": "1"})).json()["parsed_config"][
        "system_prompt"
    ]["tone"] == acme_config["system_prompt"]["tone"]

    voice = example("healthcare_scheduler")
    voice["config_metadata"]["config_id"] = "acme_support_bot"
    refused = await http.post(CONFIGS, json=voice)
    assert refused.status_code == 422 and "cannot change product_type" in refused.json()["detail"]
    assert (await http.get(f"{CONFIGS}/acme_support_bot/versions")).json()["total_versions"] == 2


async def test_a_config_without_an_id_gets_one(http: httpx.AsyncClient, acme_config: dict[str, Any]) -> None:
    anonymous = copy.deepcopy(acme_config)
    del anonymous["config_metadata"]["config_id"]
    first, second = await upload(http, anonymous), await upload(http, anonymous)
    assert first["config_id"] == first["assistant_id"] != second["config_id"]
    assert first["parsed_config"]["config_metadata"]["config_id"] == first["config_id"]
    again = copy.deepcopy(anonymous)
    again["config_metadata"]["config_id"] = first["config_id"]
    assert (await upload(http, again))["changed"] is False
    for bad in ("a/b", "", "x" * 129, " acme"):  # an id is a path segment of the API
        odd = copy.deepcopy(acme_config)
        odd["config_metadata"]["config_id"] = bad
        refused = await http.post(CONFIGS, json=odd)
        assert refused.status_code == 422 and refused.json()["errors"][0]["path"] == "$.config_metadata.config_id"


async def test_ids_are_private_to_a_tenant(
    http: httpx.AsyncClient, server: RunningServer, db: Database, acme_config: dict[str, Any]
) -> None:
    mine = await upload(http, acme_config)
    await upload(http, with_tone(acme_config, "calm"))
    other = await make_tenant(db)
    async with httpx.AsyncClient(base_url=server.url, headers={"x-api-key": other.key}) as stranger:
        for path in (
            f"{CONFIGS}/{mine['assistant_id']}",
            f"{CONFIGS}/{mine['assistant_id']}/versions",
            f"{CONFIGS}/acme_support_bot/versions",
            f"{CONFIGS}/acme_support_bot/versions/1",
            f"{CONFIGS}/acme_support_bot/diff",
        ):
            theirs = await stranger.get(path)
            unknown = await stranger.get(
                path.replace("acme_support_bot", "never_made").replace(mine["assistant_id"], "never_made")
            )
            assert theirs.status_code == unknown.status_code == 404, path
            said = theirs.text.replace(mine["assistant_id"], "never_made").replace("acme_support_bot", "never_made")
            assert said == unknown.text, path  # the same answer as for an id nobody has
        refused = await stranger.post(f"{CONFIGS}/acme_support_bot/rollback", json={"target_version": 1, "reason": "x"})
        assert refused.status_code == 404
        # The same id in another tenant is another bot, created as given, without a word about ours.
        theirs = (await stranger.post(CONFIGS, json=acme_config)).json()
        assert (theirs["config_id"], theirs["version"], theirs["created"]) == ("acme_support_bot", 1, True)
        assert theirs["assistant_id"] != mine["assistant_id"] and mine["assistant_id"] not in str(theirs)
    ours = (await http.get(f"{CONFIGS}/acme_support_bot/versions")).json()
    assert ours["total_versions"] == 2 and ours["assistant_id"] == mine["assistant_id"]


async def test_versions_say_who_made_them_how_and_why(
    server: RunningServer, db: Database, tenant: Tenant, acme_config: dict[str, Any]
) -> None:
    key = await create_api_key(db, tenant_id=tenant.tenant_id, role="developer", name="ci-bot")
    async with httpx.AsyncClient(base_url=server.url, headers={"x-api-key": key}) as ci:
        await upload(ci, acme_config, commit_message="first cut")
        await upload(ci, with_tone(acme_config, "calm"), commit_message="calmer", source="apply")
        await upload(ci, with_tone(acme_config, "warm"))
        page = (await ci.get(f"{CONFIGS}/acme_support_bot/versions", params={"limit": 2})).json()
    assert page["config_id"] == "acme_support_bot" and page["product_type"] == "chatbot"
    assert (page["current_version"], page["total_versions"]) == (3, 3)
    assert page["pagination"] == {"limit": 2, "offset": 0, "has_more": True, "next_offset": 2}
    assert [v["version"] for v in page["versions"]] == [3, 2]
    newest, applied = page["versions"]
    assert newest["current"] and not newest["rollback_available"]
    assert applied["rollback_available"] and applied["commit_message"] == "calmer" and applied["source"] == "apply"
    key_id = applied["author"]["key_id"]
    assert applied["author"] == {"type": "api_key", "key_id": key_id, "name": "ci-bot", "role": "developer"}
    assert applied["applied_at"]
    rest = (await ci_get(server, key, f"{CONFIGS}/acme_support_bot/versions?limit=2&offset=2")).json()
    assert [v["version"] for v in rest["versions"]] == [1]
    assert rest["versions"][0]["source"] == "upload" and rest["versions"][0]["commit_message"] == "first cut"
    assert rest["pagination"] == {"limit": 2, "offset": 2, "has_more": False, "next_offset": None}

    one = (await ci_get(server, key, f"{CONFIGS}/acme_support_bot/versions/v2")).json()
    assert one["version"] == 2 and one["parsed_config"]["system_prompt"]["tone"] == "calm"
    assert one["parsed_config"]["config_metadata"] == {
        **acme_config["config_metadata"],
        "version": 2,
    }


async def ci_get(server: RunningServer, key: str, path: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=server.url, headers={"x-api-key": key}) as client:
        return await client.get(path)


async def test_diff_between_versions(http: httpx.AsyncClient, voice_config: dict[str, Any]) -> None:
    await upload(http, voice_config)
    slower = copy.deepcopy(voice_config)
    slower["voice_settings"]["model_settings"]["speed"] = 0.8
    slower["workflow_features"]["call_transfer"]["transfer_destinations"].reverse()
    await upload(http, slower)
    config_id = voice_config["config_metadata"]["config_id"]

    diff = (await http.get(f"{CONFIGS}/{config_id}/diff", params={"from": 1, "to": 2})).json()
    assert diff["changed"] is True and (diff["from_version"], diff["to_version"]) == (1, 2)
    assert diff["diff"] == {"voice_settings.model_settings.speed": {"old": 1.0, "new": 0.8}}
    assert diff["patch"] == [{"op": "replace", "path": "/voice_settings/model_settings/speed", "value": 0.8}]
    v1 = (await http.get(f"{CONFIGS}/{config_id}/versions/1")).json()["parsed_config"]
    patched = jsonpatch.apply_patch(v1, diff["patch"])
    assert patched["voice_settings"] == slower["voice_settings"]
    # By default: from the version before the current one to the current one.
    assert (await http.get(f"{CONFIGS}/{config_id}/diff")).json()["diff"] == diff["diff"]
    backwards = (await http.get(f"{CONFIGS}/{config_id}/diff", params={"from": "v2", "to": "v1"})).json()
    assert backwards["diff"] == {"voice_settings.model_settings.speed": {"old": 0.8, "new": 1.0}}
    same = (await http.get(f"{CONFIGS}/{config_id}/diff", params={"from": 2, "to": 2})).json()
    assert (same["changed"], same["patch"], same["diff"]) == (False, [], {})


@pytest.mark.parametrize(
    ("path", "params", "status", "fragment"),
    [
        ("/versions/9", {}, 404, "has no version 9: its versions are 1 to 2 (the latest is 2)"),
        ("/versions/0", {}, 422, "'0' is not a version"),
        ("/versions/latest", {}, 422, "'latest' is not a version"),
        ("/versions/2.5", {}, 422, "is not a version"),
        ("/diff", {"from": 1, "to": 3}, 404, "has no version 3"),
        ("/diff", {"from": "-1"}, 422, "'-1' is not a version"),
        ("/diff", {"to": "two"}, 422, "'two' is not a version"),
        ("", {"version": 5}, 404, "has no version 5"),
        ("/versions", {"limit": 0}, 422, "limit"),
    ],
)
async def test_unknown_or_malformed_versions(
    http: httpx.AsyncClient, acme_config: dict[str, Any], path: str, params: dict[str, Any], status: int, fragment: str
) -> None:
    await upload(http, acme_config)
    await upload(http, with_tone(acme_config, "calm"))
    resp = await http.get(f"{CONFIGS}/acme_support_bot{path}", params=params)
    assert resp.status_code == status, resp.text
    assert fragment in resp.text
    if status == 404:
        assert resp.json()["latest_version"] == 2
    assert (
        (await http.get(f"{CONFIGS}/no_such_bot/versions"))
        .json()["detail"]
        .startswith("config 'no_such_bot' does not exist")
    )


async def test_rollback_appends_the_older_version(
    http: httpx.AsyncClient, server: RunningServer, db: Database, tenant: Tenant, acme_config: dict[str, Any]
) -> None:
    await upload(http, acme_config)
    await upload(http, with_tone(acme_config, "empathetic_professional"))
    rollback = f"{CONFIGS}/acme_support_bot/rollback"
    done = await http.post(rollback, json={"target_version": "v1", "reason": "customers found it too wordy"})
    assert done.status_code == 200, done.text
    body = done.json()
    assert {k: body[k] for k in ("config_id", "rolled_back_from", "rolled_back_to", "new_current_version")} == {
        "config_id": "acme_support_bot",
        "rolled_back_from": 2,
        "rolled_back_to": 1,
        "new_current_version": 3,
    }
    assert body["commit_message"] == "Rollback to v1: customers found it too wordy" and body["applied_at"]

    history = (await http.get(f"{CONFIGS}/acme_support_bot/versions")).json()
    assert [v["version"] for v in history["versions"]] == [3, 2, 1]
    assert history["versions"][0]["source"] == "rollback" and history["versions"][0]["rolled_back_to"] == 1
    assert (await http.get(f"{CONFIGS}/acme_support_bot/diff", params={"from": 1, "to": 3})).json()["changed"] is False
    assert (await http.get(f"{CONFIGS}/acme_support_bot")).json()["parsed_config"]["system_prompt"] == acme_config[
        "system_prompt"
    ]

    for bad, status, fragment in (
        ({"target_version": 7, "reason": "x"}, 404, "has no version 7: its versions are 1 to 3"),
        ({"target_version": 3, "reason": "x"}, 422, "already the current version"),
        ({"target_version": "previous", "reason": "x"}, 422, "'previous' is not a version"),
        ({"target_version": 1}, 422, "reason"),
        ({"target_version": 1, "reason": ""}, 422, "reason"),
        ({"target_version": 1, "reason": "x", "notify": True}, 422, "notify"),
    ):
        resp = await http.post(rollback, json=bad)
        assert resp.status_code == status and fragment in resp.text, (bad, resp.text)
    assert (await http.get(f"{CONFIGS}/acme_support_bot/versions")).json()["total_versions"] == 3  # nothing stored

    viewer = await create_api_key(db, tenant_id=tenant.tenant_id, role="viewer", name="auditor")
    async with httpx.AsyncClient(base_url=server.url, headers={"x-api-key": viewer}) as client:
        assert (await client.get(f"{CONFIGS}/acme_support_bot/versions")).status_code == 200
        assert (await client.get(f"{CONFIGS}/acme_support_bot/diff")).status_code == 200
        denied = await client.post(rollback, json={"target_version": 2, "reason": "try"})
        assert denied.status_code == 403 and "developer" in denied.json()["detail"]
        assert (await client.post(CONFIGS, json=acme_config)).status_code == 403


async def test_a_thread_keeps_the_version_it_started_with(http: httpx.AsyncClient, acme_config: dict[str, Any]) -> None:
    """Seed: in-progress conversations complete with their version, whatever is uploaded or rolled back."""
    assistant_id = (await upload(http, acme_config))["assistant_id"]
    old_thread = (await http.post("/threads", json={})).json()["thread_id"]
    first = await http.post(f"/threads/{old_thread}/runs/wait", json={"assistant_id": assistant_id, "input": HELLO})
    assert first.json()["messages"][-1]["content"].startswith("Thanks!")

    await upload(http, with_tone(acme_config, "empathetic_professional"))
    new_thread = (await http.post("/threads", json={})).json()["thread_id"]
    new = await http.post(f"/threads/{new_thread}/runs/wait", json={"assistant_id": assistant_id, "input": HELLO})
    assert new.json()["messages"][-1]["content"].startswith("I understand.")
    await http.post(f"{CONFIGS}/acme_support_bot/rollback", json={"target_version": 1, "reason": "back"})

    old = await http.post(f"/threads/{old_thread}/runs/wait", json={"assistant_id": assistant_id, "input": HELLO})
    assert old.json()["messages"][-1]["content"].startswith("Thanks!")
    still = await http.post(f"/threads/{new_thread}/runs/wait", json={"assistant_id": assistant_id, "input": HELLO})
    assert still.json()["messages"][-1]["content"].startswith("I understand.")  # version 2 after the rollback
    pins = [(await http.get(f"/threads/{t}")).json()["config_version"] for t in (old_thread, new_thread)]
    assert pins == [1, 2]


async def test_the_demo_loads_its_files_by_id_once(db: Database, tenant: Tenant) -> None:
    registry = build_registry()
    path = EXAMPLES / "acme_support_bot.json"
    first = await load_config_file(db, tenant.tenant_id, path, registry=registry)
    again = await load_config_file(db, tenant.tenant_id, path, registry=registry)
    assert first[2] is True and again == (first[0], 1, False)
    stored = await ConfigRepository(db).find(tenant.tenant_id, "acme_support_bot")
    assert stored.config_id == first[0]


async def test_a_bot_loaded_before_ids_were_kept_takes_its_files_id(
    db: Database, tenant: Tenant, acme_config: dict[str, Any], tmp_path: Path
) -> None:
    """A demo bot stored by an earlier Chorus (under its UUID) is the one the file updates: no second bot."""
    service = ConfigService(ConfigRepository(db), build_registry())
    legacy, _ = await service.create(tenant.tenant_id, acme_config, author=Author.cli())
    assert legacy.key == legacy.config_id
    path = tmp_path / "acme_support_bot.json"
    path.write_text(json.dumps(with_tone(acme_config, "calm")))
    config_id, version, changed = await load_config_file(db, tenant.tenant_id, path, registry=build_registry())
    assert (config_id, version, changed) == (legacy.config_id, 2, True)
    assert (await service.repo.find(tenant.tenant_id, "acme_support_bot")).config_id == legacy.config_id
