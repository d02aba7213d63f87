"""Bot config validation: the examples pass; each kind of bad config is reported with its JSON path."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import pytest

from chorus.agents.configs.schema import SCHEMA_PATH, render_schema
from chorus.agents.configs.validation import validate_config
from chorus.agents.tools.builtins import build_registry
from tests.conftest import example


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


def http_tool(cfg: dict[str, Any]) -> dict[str, Any]:
    """The example's HTTP tool (check_product_availability), listed as implemented."""
    cfg["tools_available"][4]["status"] = "implemented"
    tool: dict[str, Any] = cfg["tools_needed"][1]
    return tool


def test_url_placeholders_must_be_the_tools_arguments() -> None:
    cfg = example("acme_support_bot")
    tool = http_tool(cfg)
    tool["http"]["url"] = "https://shop.example.com/orders/{order_id}/items/{prodct_id}"
    report = check(cfg)
    messages = [e["message"] for e in report["errors"] if e["path"] == "$.tools_needed[1].http.url"]
    assert len(messages) == 2, report["errors"]
    assert any("{order_id} is not an argument" in m and "product_id" in m for m in messages)
    assert any("{prodct_id}" in m and "did you mean 'product_id'?" in m for m in messages)


def test_optional_placeholder_argument_is_a_warning_and_header_placeholders_an_error() -> None:
    cfg = example("acme_support_bot")
    tool = http_tool(cfg)
    tool["input_schema"] = {"product_id": "string?"}
    tool["http"]["headers"] = {"X-Product": "{product_id}", "Authorization": "Bearer ${secret:SHOP_KEY}"}
    report = validate_config(cfg, registry=build_registry(), secret_names={"SHOP_KEY"}).to_dict()
    assert paths(report) == ["$.tools_needed[1].http.headers['X-Product']"]
    assert "header values are not filled" in report["errors"][0]["message"]
    assert any(
        w["path"] == "$.tools_needed[1].http.url" and "optional argument" in w["message"] for w in report["warnings"]
    )


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("shop.example.com/items/{product_id}", "no scheme: write it as https://shop.example.com"),
        ("ftp://shop.example.com/{product_id}", "the scheme 'ftp', which HTTP calls do not support"),
        ("https:///items/{product_id}", "has no host"),
        ("https://shop.example.com/my items/{product_id}", "contains a space"),
        ("https://shop.example.com/items/{product_id", "not a placeholder"),
        ("https://shop.example.com:99999/{product_id}", "not a valid URL"),
    ],
)
def test_malformed_urls_are_explained(url: str, says: str) -> None:
    cfg = example("acme_support_bot")
    http_tool(cfg)["http"]["url"] = url
    report = check(cfg)
    problems = [e for e in report["errors"] if e["path"] == "$.tools_needed[1].http.url"]
    assert problems, report["errors"]
    assert says in problems[0]["message"], problems
    assert "does not match" not in problems[0]["message"]  # no regular expressions shown


def test_unknown_keys_are_named_with_a_suggestion_at_their_own_path() -> None:
    cfg = example("acme_support_bot")
    cfg["workflow_features"]["human_escalation"]["trigers"] = cfg["workflow_features"]["human_escalation"].pop(
        "triggers"
    )
    cfg["tools_needed"][1]["http"]["timeout"] = 5
    cfg["tools_available"][0]["status"] = "implemnted"
    report = check(cfg)
    by_path = {e["path"]: e["message"] for e in report["errors"]}
    assert by_path["$.workflow_features.human_escalation.trigers"].startswith(
        "unknown key 'trigers' — did you mean 'triggers'?"
    )
    assert "did you mean 'timeout_ms'?" in by_path["$.tools_needed[1].http.timeout"]
    assert "did you mean 'implemented'?" in by_path["$.tools_available[0].status"]
    for message in by_path.values():
        assert "additionalProperties" not in message and "regexes" not in message


def test_type_and_pattern_errors_are_in_words() -> None:
    cfg = example("acme_support_bot")
    cfg["llm_config"]["parameters"]["temperature"] = "hot"
    cfg["webchat"] = {"colors": {"primary": "red"}}
    by_path = {e["path"]: e["message"] for e in check(cfg)["errors"]}
    assert by_path["$.llm_config.parameters.temperature"] == 'expected a number, got a string ("hot")'
    assert "hex colour" in by_path["$.webchat.colors.primary"]


def test_knowledge_namespaces_the_tenant_lacks_are_warnings() -> None:
    cfg = example("acme_support_bot")
    report = validate_config(cfg, registry=build_registry(), namespaces={"acme_support"})
    assert report.valid
    missing = [w for w in report.warnings if w.check == "knowledge_available"]
    assert [w.path for w in missing] == ["$.knowledge.faq_namespace"]
    assert "'acme_support_faq' does not exist" in missing[0].message


def test_model_of_another_provider_is_a_warning_and_a_bad_base_url_an_error() -> None:
    cfg = example("acme_support_bot")
    cfg["llm_config"]["model"] = "claude-3-5-sonnet"
    cfg["llm_config"]["fallback"] = [
        {"provider": "openai_compatible", "model": "llama3", "base_url": "localhost:11434/v1"},
    ]
    report = check(cfg)
    assert paths(report) == ["$.llm_config.fallback[0].base_url"]
    assert "no scheme" in report["errors"][0]["message"]
    assert any(w["path"] == "$.llm_config.model" and "openai model" in w["message"] for w in report["warnings"])


def test_circular_dependencies() -> None:
    cfg = example("acme_support_bot")
    cfg["llm_config"]["fallback"] = [
        {"provider": "anthropic", "model": "claude-sonnet-4"},
        {"provider": "openai", "model": "gpt-4o"},
    ]
    report = validate_config(cfg, registry=build_registry())
    assert [(p.path, p.check) for p in report.errors] == [("$.llm_config.fallback[1]", "circular_dependencies")]
    assert "the primary model again" in report.errors[0].message

    voice = example("healthcare_scheduler")
    own = voice["sip_config"]["primary_endpoint"]
    voice["workflow_features"]["call_transfer"] = {
        "enabled": True,
        "transfer_destinations": [{"name": "front desk", "phone": own}],
    }
    voice["sip_config"]["failover_endpoint"] = own
    got = {p.path for p in validate_config(voice, registry=build_registry()).errors}
    assert got == {
        "$.workflow_features.call_transfer.transfer_destinations[0].phone",
        "$.sip_config.failover_endpoint",
    }


def test_the_fast_schema_check_agrees_with_the_explaining_one() -> None:
    """A valid config is checked by jsonschema-rs alone: it must refuse whatever the Python validator refuses."""
    from chorus.agents.configs.schema_errors import _explaining, _fast

    good = example("acme_support_bot")
    bad = []
    for mutate in (
        lambda c: c.update(tpyo=1),
        lambda c: c["llm_config"].update(provider="gemini"),
        lambda c: c["tools_needed"][1]["http"].update(url="ftp://x"),
        lambda c: c["system_prompt"].pop("role"),
        lambda c: c["llm_config"]["parameters"].update(top_p=1.5),
        lambda c: c.update(webchat={"avatar_url": "https://x.example/a b.png"}),
        lambda c: c["tools_available"].append({"tool_name": "9bad", "status": "implemented"}),
    ):
        cfg = copy.deepcopy(good)
        mutate(cfg)
        bad.append(cfg)
    assert _fast().is_valid(good) and _explaining().is_valid(good)
    for cfg in bad:
        assert not _fast().is_valid(cfg) and not _explaining().is_valid(cfg)


def resolve(data: Any, path: str) -> bool:
    """Whether `path` ($.a[0]['b-c'].d) leads through `data` to a field, or to a missing key of an object
    that exists (a missing required field is reported where it belongs)."""
    parts = re.findall(r"\.([A-Za-z_]\w*)|\[(\d+)\]|\['((?:[^'\\]|\\.)*)'\]", path[1:])
    node = data
    for n, (name, index, quoted) in enumerate(parts):
        last = n == len(parts) - 1
        if index:
            if not isinstance(node, list) or int(index) >= len(node):
                return False
            node = node[int(index)]
        else:
            key = name or quoted
            if not isinstance(node, dict):
                return False
            if key not in node:
                return last
            node = node[key]
    return True


def test_every_problem_points_at_a_field_of_the_config() -> None:
    cfg = example("acme_support_bot")
    cfg["workflow_features"]["human_escalation"]["trigers"] = []
    del cfg["system_prompt"]["instructions"]
    cfg["webchat"] = {"colors": {"primary": "red"}, "tool_status": {"no_such_tool": "Working…"}}
    schema_broken = cfg
    cfg = example("acme_support_bot")
    tool = http_tool(cfg)
    tool["http"]["url"] = "https://shop.example.com/{sku}"
    tool["http"]["headers"] = {"X-Sku": "{sku}"}
    cfg["llm_config"]["fallback"] = [{"provider": "openai", "model": "gpt-4o"}]
    cfg["webchat"] = {"tool_status": {"no_such_tool": "Working…"}}
    cfg["tools_available"].append({"tool_name": "faq_search", "status": "implemented"})
    del cfg["knowledge"]
    rules_broken = cfg
    for data in (schema_broken, rules_broken):
        report = check(data)
        problems = report["errors"] + report["warnings"]
        assert len(problems) >= 3, problems
        unresolved = [p["path"] for p in problems if not resolve(data, p["path"])]
        assert not unresolved, unresolved
