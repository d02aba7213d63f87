"""The config editor's edits applied to a copy of a config: paths, scaling, the greeting in both places,
tools by name with "did you mean", and the merge patch that turns the old config into the new one."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from chorus.agents.configs.config_edits import apply_edit, merge_patch_between, parse_edits, resolve_tool
from chorus.agents.configs.merge_patch import merge_patch
from chorus.agents.errors import InvalidInput
from tests.conftest import example

CATALOGUE = ["escalate_to_human", "fetch_order_status", "initiate_refund", "update_shipping_address"]


def edited(config: dict[str, Any], *edits: dict[str, Any]) -> dict[str, Any]:
    new = copy.deepcopy(config)
    for edit in parse_edits(list(edits)):
        apply_edit(new, edit, CATALOGUE)
    return new


def test_set_scale_and_remove_by_path() -> None:
    voice = example("healthcare_scheduler")
    new = edited(
        voice,
        {"op": "scale", "path": "voice_settings.model_settings.speed", "factor": 0.8},
        {"op": "set", "path": "llm_config.parameters.temperature", "value": 0.2},
        {"op": "set", "path": "voice_settings.stop_speaking_plan", "value": None},
        {"op": "set", "path": "knowledge.faq_namespace", "value": "faq"},  # made on the way
    )
    assert new["voice_settings"]["model_settings"]["speed"] == 0.8
    assert new["llm_config"]["parameters"]["temperature"] == 0.2
    assert "stop_speaking_plan" not in new["voice_settings"]
    assert new["knowledge"] == {"faq_namespace": "faq"}
    patch = merge_patch_between(voice, new)
    assert patch["voice_settings"]["stop_speaking_plan"] is None
    assert merge_patch(voice, patch) == new


def test_scaling_needs_a_number_or_a_default() -> None:
    acme = example("acme_support_bot")
    with pytest.raises(InvalidInput, match="no number to scale"):
        edited(acme, {"op": "scale", "path": "voice_settings.model_settings.speed", "factor": 0.8})
    new = edited(acme, {"op": "scale", "path": "voice_settings.model_settings.speed", "factor": 0.8, "default": 1})
    assert new["voice_settings"]["model_settings"]["speed"] == 0.8
    with pytest.raises(InvalidInput, match=r"'system_prompt\.role' is not an object"):
        edited(acme, {"op": "set", "path": "system_prompt.role.name", "value": "x"})


def test_the_greeting_changes_in_the_widget_too_when_it_has_its_own() -> None:
    acme = example("acme_support_bot") | {"webchat": {"greeting": "Old hello", "title": "Acme"}}
    new = edited(acme, {"op": "set_greeting", "text": "New hello"})
    assert (new["first_message"], new["webchat"]["greeting"]) == ("New hello", "New hello")
    plain = edited(example("acme_support_bot"), {"op": "set_greeting", "text": "New hello"})
    assert plain["first_message"] == "New hello" and "webchat" not in plain


def test_tools_by_name() -> None:
    voice = example("healthcare_scheduler")
    new = edited(voice, {"op": "add_tool", "tool_name": "refund"}, {"op": "remove_tool", "tool_name": "escalate"})
    names = {t["tool_name"]: t["status"] for t in new["tools_available"]}
    assert names["initiate_refund"] == "implemented" and "escalate_to_human" not in names
    assert resolve_tool("Initiate Refund", CATALOGUE, what="in the catalogue") == ("initiate_refund", True)
    with pytest.raises(InvalidInput, match="did you mean 'fetch_order_status'") as raised:
        resolve_tool("fetch_order_statos", CATALOGUE, what="in the catalogue")
    assert raised.value.errors[0]["suggestions"] == ["fetch_order_status"]
    with pytest.raises(InvalidInput, match="already has the tool 'initiate_refund'"):
        edited(example("acme_support_bot"), {"op": "add_tool", "tool_name": "initiate_refund"})
    with pytest.raises(InvalidInput, match="on this bot"):
        edited(voice, {"op": "remove_tool", "tool_name": "fetch_order_status"})


@pytest.mark.parametrize(
    "raw",
    [
        [],
        [{"op": "explode"}],
        [{"op": "set", "path": "tools_available[0].status", "value": "missing"}],
        [{"op": "scale", "path": "llm_config.parameters.temperature", "factor": -1}],
        "not a list",
    ],
)
def test_malformed_edits_are_refused_with_paths(raw: Any) -> None:
    if raw == []:
        assert parse_edits(raw) == []  # the tool's schema asks for at least one
        return
    with pytest.raises(InvalidInput) as raised:
        parse_edits(raw)
    assert raised.value.errors and all(e["path"].startswith("$.edits") for e in raised.value.errors)
