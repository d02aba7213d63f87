"""POST /api/v1/configs/apply: a plan of many files, stored all or none; each tenant plans against its own
configs only. And the client side's pure parts (chorus/config_apply.py): reading files, what pull writes."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from chorus.agents.errors import InvalidInput
from chorus.agents.storage.database import Database
from chorus.config_apply import export_text, pull_targets, read_config_files
from tests.conftest import RunningServer, example, make_tenant

APPLY = "/api/v1/configs/apply"


def files(*configs: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"path": f"{c['config_metadata'].get('config_id', 'none')}.json", "config": c} for c in configs]


async def test_a_plan_with_a_problem_stores_nothing(http: httpx.AsyncClient) -> None:
    good = example("acme_support_bot")
    bad = copy.deepcopy(example("healthcare_scheduler"))
    bad["llm_config"]["parameters"]["temperature"] = 9
    body = {"files": files(good, bad), "commit_message": "both"}

    plan = await http.post(APPLY, json={**body, "dry_run": True})
    assert plan.status_code == 200, plan.text
    shown = plan.json()
    assert shown["applied"] is False and shown["summary"]["create"] == 1 and shown["summary"]["invalid"] == 1
    invalid = shown["files"][1]
    assert invalid["action"] == "invalid" and invalid["errors"][0]["path"].startswith("$.llm_config")
    assert invalid["blocked_by"] and not shown["files"][0]["blocked_by"]

    refused = await http.post(APPLY, json=body)
    assert refused.status_code == 422
    answer = refused.json()
    assert answer["detail"].startswith("nothing applied: 1 file(s) have problems (healthcare_scheduler.json)")
    assert answer["errors"][0]["path"] == "$.files[1]" and answer["errors"][0]["file"] == "healthcare_scheduler.json"
    assert (await http.get("/api/v1/configs")).json()["total"] == 0

    done = await http.post(APPLY, json={"files": files(good), "commit_message": "one"})
    assert done.status_code == 200 and done.json()["files"][0]["status"] == "current", done.text


async def test_each_tenant_applies_against_its_own_configs(
    http: httpx.AsyncClient, server: RunningServer, db: Database
) -> None:
    acme = example("acme_support_bot")
    assert (await http.post(APPLY, json={"files": files(acme), "commit_message": "ours"})).status_code == 200
    other = await make_tenant(db)
    renamed = copy.deepcopy(acme)
    renamed["config_metadata"]["config_id"] = "theirs"
    async with httpx.AsyncClient(base_url=server.url, headers={"x-api-key": other.key}) as client:
        # Same path as ours, another id: no 'applied_as' from our history; their own config is created.
        plan = await client.post(
            APPLY, json={"files": [{"path": "acme_support_bot.json", "config": renamed}], "dry_run": True}
        )
        assert plan.json()["files"][0]["action"] == "create" and plan.json()["files"][0]["applied_as"] is None
        same = await client.post(APPLY, json={"files": files(acme), "dry_run": True})
        assert same.json()["files"][0]["action"] == "create"  # our acme_support_bot is not theirs
        listed = (await client.get("/api/v1/configs")).json()
        assert listed["total"] == 0 and listed["configs"] == []


@pytest.mark.parametrize(
    ("body", "said"),
    [
        ({"files": []}, "files"),
        ({"files": [{"path": "", "config": {}}]}, "path"),
        ({"files": [{"path": "a.json", "config": {}}], "surprise": 1}, "surprise"),
    ],
)
async def test_malformed_requests_are_422(http: httpx.AsyncClient, body: dict[str, Any], said: str) -> None:
    resp = await http.post(APPLY, json=body)
    assert resp.status_code == 422 and said in resp.text


def test_read_config_files_lists_every_problem(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text(json.dumps(example("acme_support_bot")))
    (tmp_path / "b.json").write_text("{nope")
    (tmp_path / "c.json").write_text('"just a string"')
    (tmp_path / "notes.txt").write_text("not read")
    with pytest.raises(InvalidInput) as caught:
        read_config_files(tmp_path)
    assert [e["path"] for e in caught.value.errors] == ["b.json", "c.json"]
    assert "line 1 column 2" in caught.value.errors[0]["message"]
    (tmp_path / "b.json").unlink()
    (tmp_path / "c.json").unlink()
    assert [f.path for f in read_config_files(tmp_path)] == ["a.json"]
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InvalidInput, match="holds no"):
        read_config_files(empty)


def test_export_is_stable_and_drops_the_version_number() -> None:
    config = example("acme_support_bot")
    config["config_metadata"]["version"] = 7
    text = export_text(config)
    assert text.endswith("}\n") and '\n  "config_metadata": {' in text
    assert "version" not in json.loads(text)["config_metadata"]
    assert export_text(json.loads(text)) == text  # a pulled file pulled again is the same bytes
    keys = list(json.loads(text))
    assert keys == sorted(keys)


def test_pull_writes_into_the_file_holding_the_id(tmp_path: Path) -> None:
    acme = example("acme_support_bot")
    (tmp_path / "support.json").write_text(json.dumps(acme))
    (tmp_path / "broken.json").write_text("{")
    voice = example("healthcare_scheduler")
    targets = [p.name for p, _ in pull_targets(tmp_path, [acme, voice])]
    assert targets == ["support.json", "healthcare_scheduler.json"]
    hostile = copy.deepcopy(acme)
    hostile["config_metadata"]["config_id"] = "../../etc/passwd"
    with pytest.raises(InvalidInput, match="cannot be a file name"):
        pull_targets(tmp_path, [hostile])


async def test_control_characters_in_a_path_or_message_are_refused(http: httpx.AsyncClient) -> None:
    acme = example("acme_support_bot")
    for body in (
        {"files": [{"path": "a\u0000.json", "config": acme}]},
        {"files": [{"path": "a.json", "config": acme}], "commit_message": "x\u0000y"},
    ):
        resp = await http.post(APPLY, json=body)
        assert resp.status_code == 422 and "NUL (0x00)" in resp.json()["detail"], resp.text
    assert (await http.get("/api/v1/configs")).json()["total"] == 0
