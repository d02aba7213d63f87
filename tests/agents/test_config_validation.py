"""Bot config validation: the examples pass; each kind of bad config is reported with its JSON path."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from chorus.agents.configs.schema import SCHEMA_PATH, render_schema
from chorus.agents.configs.validation import validate_config
from chorus.agents.tools.builtins import build_registry
from tests.conftest import EXAMPLES, example


def check(cfg: Any) -> dict[str, Any]:
    return validate_config(cfg, registry=build_registry()).to_dict()


def paths(report: dict[str, Any]) -> list[str]:
    return [e["path"] for e in report["errors"]]


@pytest.mark.parametrize("name", ["acme_support_bot", "healthcare_scheduler"])
def test_examples_are_valid(name: str) -> None:
    report = check(example(name))
    assert report["valid"], report["errors"]
    # The seed examples mark one tool as missing: a warning (reduced functionality), not an error.
    assert any("missing" in w["message"] for w in report["warnings"])


def test_committed_schema_matches_the_models() -> None:
    assert json.loads(SCHEMA_PATH.read_text()) == json.loads(render_schema()), (
        "configs/schema/bot.schema.json is stale: run `.venv/bin/chorus config schema --write`"
    )
    schema = json.loads(SCHEMA_PATH.read_text())
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    for field in ("voice_settings", "sip_config", "livekit_config", "knowledge", "first_message", "workflow_features"):
        assert field in schema["properties"]


def test_schema_errors_carry_paths_and_are_all_reported() -> None:
    cfg = example("acme_support_bot")
    cfg["tpyo"] = 1
    cfg["llm_config"]["parameters"]["temperature"] = 7
    del cfg["system_prompt"]["instructions"]
    cfg["tools_available"][0]["status"] = "done"
    report = check(cfg)
    assert not report["valid"]
    got = paths(report)
    # Each at the exact field: the unknown key itself, the missing field itself.
    assert sorted(got) == [
        "$.llm_config.parameters.temperature",
        "$.system_prompt.instructions",
        "$.tools_available[0].status",
        "$.tpyo",
    ]
    unknown = next(e for e in report["errors"] if e["path"] == "$.tpyo")
    assert "unknown key 'tpyo'" in unknown["message"]


def test_comment_keys_are_allowed_anywhere() -> None:
    cfg = example("healthcare_scheduler")
    cfg["llm_config"]["_note"] = "fine"
    assert check(cfg)["valid"]


def test_voicebots_carry_no_external_integrations() -> None:
    cfg = example("healthcare_scheduler")
    cfg["integrations"] = [{"integration_name": "salesforce_crm", "status": "implemented"}]
    report = check(cfg)
    assert paths(report) == ["$.integrations"]
    assert "voicebots" in report["errors"][0]["message"]


def test_chatbots_have_no_sip_or_livekit_config() -> None:
    cfg = example("acme_support_bot")
    voice = example("healthcare_scheduler")
    cfg["sip_config"] = voice["sip_config"]
    cfg["livekit_config"] = voice["livekit_config"]
    assert sorted(paths(check(cfg))) == ["$.livekit_config", "$.sip_config"]


def test_implemented_tool_must_exist() -> None:
    cfg = example("acme_support_bot")
    cfg["tools_available"].append({"tool_name": "teleport_parcel", "status": "implemented"})
    report = check(cfg)
    assert paths(report) == ["$.tools_available[5].tool_name"]
    assert "teleport_parcel" in report["errors"][0]["message"]


def test_http_tool_marked_implemented_is_accepted() -> None:
    cfg = example("acme_support_bot")
    cfg["tools_available"][4]["status"] = "implemented"
    assert check(cfg)["valid"]


def test_bad_tool_input_schema_and_duplicates() -> None:
    cfg = example("acme_support_bot")
    cfg["tools_needed"][0]["input_schema"] = {"order_id": "uuid"}
    cfg["tools_available"].append(copy.deepcopy(cfg["tools_available"][0]))
    got = paths(check(cfg))
    assert "$.tools_needed[0].input_schema" in got
    assert "$.tools_available[5].tool_name" in got


def test_openai_compatible_needs_base_url() -> None:
    cfg = example("acme_support_bot")
    cfg["llm_config"]["provider"] = "openai_compatible"
    assert paths(check(cfg)) == ["$.llm_config.base_url"]


def test_not_an_object() -> None:
    assert paths(check([1, 2])) == ["$"]


def test_unknown_escalation_condition_is_a_warning() -> None:
    cfg = example("acme_support_bot")
    cfg["workflow_features"]["human_escalation"]["triggers"].append({"condition": "moon_is_full", "action": "x"})
    report = check(cfg)
    assert report["valid"]
    assert any("moon_is_full" in w["message"] for w in report["warnings"])


def test_cli_validate_exit_codes(tmp_path: Path) -> None:
    good = subprocess.run(
        [sys.executable, "-m", "chorus.cli", "config", "validate", str(EXAMPLES / "acme_support_bot.json")],
        capture_output=True,
        text=True,
    )
    assert good.returncode == 0, good.stderr
    assert "valid" in good.stdout
    cfg = example("acme_support_bot")
    cfg["llm_config"]["parameters"]["top_p"] = 3
    bad_file = tmp_path / "bad.json"
    bad_file.write_text(json.dumps(cfg))
    bad = subprocess.run(
        [sys.executable, "-m", "chorus.cli", "config", "validate", str(bad_file)], capture_output=True, text=True
    )
    assert bad.returncode == 1
    assert "$.llm_config.parameters.top_p" in bad.stdout
    broken = tmp_path / "broken.json"
    broken.write_text("{ not json")
    out = subprocess.run(
        [sys.executable, "-m", "chorus.cli", "config", "validate", str(broken)], capture_output=True, text=True
    )
    assert out.returncode == 1
    assert "malformed JSON" in out.stderr
