"""Comparing two versions of a config: a JSON Patch that turns one into the other and the seed's dotted map;
named lists (tools, integrations, transfer destinations) compare by name, so reordering them is no change."""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch

from chorus.agents.configs.diff import diff_configs, same_content
from tests.conftest import example


def reordered(config: dict[str, Any]) -> dict[str, Any]:
    cfg = copy.deepcopy(config)
    for key in ("tools_needed", "tools_available", "integrations"):
        cfg.get(key, []).reverse()
    if "workflow_features" in cfg and "call_transfer" in cfg["workflow_features"]:
        cfg["workflow_features"]["call_transfer"]["transfer_destinations"].reverse()
    return cfg


def test_reordering_named_lists_or_a_new_version_number_is_no_change() -> None:
    for name in ("acme_support_bot", "healthcare_scheduler"):
        config = example(name)
        moved = reordered(config)
        moved["config_metadata"]["version"] = 7
        assert same_content(config, moved), name
        assert diff_configs(config, moved).patch == []


def test_a_voice_setting_reads_as_the_seed_shows_it() -> None:
    old = example("healthcare_scheduler")
    new = copy.deepcopy(old)
    new["voice_settings"]["model_settings"]["speed"] = 0.8
    new["voice_settings"]["stop_speaking_plan"]["number_of_words"] = 5
    diff = diff_configs(old, new)
    assert diff.changes == {
        "voice_settings.model_settings.speed": {"old": 1.0, "new": 0.8},
        "voice_settings.stop_speaking_plan.number_of_words": {"old": 3, "new": 5},
    }
    assert {"op": "replace", "path": "/voice_settings/model_settings/speed", "value": 0.8} in diff.patch


def test_items_of_named_lists_are_named_and_the_patch_applies_to_the_older_version() -> None:
    old = example("acme_support_bot")
    new = reordered(old)
    refund = next(t for t in new["tools_needed"] if t["tool_name"] == "initiate_refund")
    refund["description"] = "Refund an order (manager approval above 100 USD)."
    new["tools_needed"].insert(0, {"tool_name": "lookup_loyalty_points", "input_schema": {"email": "string"}})
    new["tools_available"] = [t for t in new["tools_available"] if t["tool_name"] != "fetch_order_status"]
    new["system_prompt"]["constraints"].append("Answer in English")
    diff = diff_configs(old, new)

    assert diff.changes["tools_needed[initiate_refund].description"]["new"] == refund["description"]
    assert diff.changes["tools_needed[lookup_loyalty_points]"] == {
        "old": None,
        "new": {"tool_name": "lookup_loyalty_points", "input_schema": {"email": "string"}},
    }
    removed = diff.changes["tools_available[fetch_order_status]"]
    assert removed["old"]["tool_name"] == "fetch_order_status" and removed["new"] is None
    at = len(old["system_prompt"]["constraints"])
    assert diff.changes[f"system_prompt.constraints[{at}]"] == {"old": None, "new": "Answer in English"}
    assert len(diff.changes) == 4

    patched = jsonpatch.apply_patch(old, diff.patch)
    assert same_content(patched, new)  # the same config, its named lists in the older version's order
    assert [t["tool_name"] for t in patched["tools_needed"]][:2] == [t["tool_name"] for t in old["tools_needed"]]


def test_a_list_with_a_name_twice_compares_by_position() -> None:
    old = example("acme_support_bot")
    new = copy.deepcopy(old)
    new["tools_needed"].append(copy.deepcopy(new["tools_needed"][0]))
    diff = diff_configs(old, new)
    assert list(diff.changes) == [f"tools_needed[{len(old['tools_needed'])}]"]
    assert jsonpatch.apply_patch(old, diff.patch) == new


def test_a_whole_named_list_added_or_removed() -> None:
    old = example("acme_support_bot")
    new = copy.deepcopy(old)
    del new["tools_needed"]
    gone = diff_configs(old, new)
    assert gone.patch == [{"op": "remove", "path": "/tools_needed"}]
    assert gone.changes == {"tools_needed": {"old": old["tools_needed"], "new": None}}
    back = diff_configs(new, old)
    assert back.patch == [{"op": "add", "path": "/tools_needed", "value": old["tools_needed"]}]
