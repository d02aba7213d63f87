"""Change classification (chorus/agents/configs/change_risk.py) over the example bots: each rule, keyed lists
compared by name, unknown and comment keys, nested escalation rules, tone against instructions, and the docs
table in docs/config-format.md kept equal to the module's."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from typing import Any

import pytest

from chorus.agents.configs.change_risk import (
    APPROVERS,
    RULES,
    ChangeClassification,
    DetectedChange,
    classify_changes,
    rule_for,
)
from tests.conftest import ROOT, example

Config = dict[str, Any]


def changed(name: str, edit: Callable[[Config], object]) -> tuple[Config, ChangeClassification]:
    old = example(name)
    new = copy.deepcopy(old)
    edit(new)
    return old, classify_changes(old, new)


def only(result: ChangeClassification) -> DetectedChange:
    assert len(result.changes) == 1, [c.to_dict() for c in result.changes]
    return result.changes[0]


@pytest.mark.parametrize("name", ["acme_support_bot", "healthcare_scheduler"])
def test_an_unchanged_config_has_no_changes_and_needs_no_approval(name: str) -> None:
    result = classify_changes(example(name), example(name))
    assert result.changes == ()
    assert result.to_dict() == {
        "changes": [],
        "risk_level": "low",
        "requires_approval": False,
        "approval_required_from": [],
        "permissions_needed": [],
    }


def test_a_tone_change_is_low_risk_and_approved_by_itself() -> None:
    _, result = changed("acme_support_bot", lambda c: c["system_prompt"].update(tone="casual"))
    change = only(result)
    assert change.to_dict() == {
        "type": "system_prompt_change",
        "action": "modify",
        "field": "system_prompt.tone",
        "old_value": "friendly_professional",
        "new_value": "casual",
        "risk_level": "low",
        "permission": "edit_system_prompt",
    }
    assert (result.risk_level, result.requires_approval, result.approval_required_from) == ("low", False, ())


@pytest.mark.parametrize(
    ("field", "value"),
    [("instructions", "Answer only about orders."), ("role", "sales_agent"), ("objective", "Sell more.")],
)
def test_prompt_instructions_role_and_objective_are_medium_and_need_an_organization_admin(
    field: str, value: str
) -> None:
    _, result = changed("acme_support_bot", lambda c: c["system_prompt"].update({field: value}))
    change = only(result)
    assert (change.type, change.field) == ("system_prompt_change", f"system_prompt.{field}")
    assert change.risk_level == "medium"
    assert result.requires_approval and result.approval_required_from == ("organization_admin",)


def test_adding_a_constraint_is_an_added_item_of_the_prompt() -> None:
    _, result = changed(
        "acme_support_bot", lambda c: c["system_prompt"]["constraints"].append("Verify identity before refunds")
    )
    change = only(result)
    assert (change.type, change.action, change.risk_level) == ("system_prompt_change", "add", "medium")
    assert change.new_value[-1] == "Verify identity before refunds"


def test_tone_and_instructions_together_take_the_higher_risk() -> None:
    _, result = changed(
        "acme_support_bot", lambda c: c["system_prompt"].update(tone="casual", instructions="Be brief and kind.")
    )
    assert sorted(c.risk_level for c in result.changes) == ["low", "medium"]
    assert result.risk_level == "medium" and result.approval_required_from == ("organization_admin",)


def test_voice_parameters_are_low_risk_at_their_dotted_paths() -> None:
    def slower(c: Config) -> None:
        c["voice_settings"]["model_settings"]["speed"] = 0.8
        c["voice_settings"]["stop_speaking_plan"]["number_of_words"] = 5
        c["system_prompt"]["voice_specific"]["speaking_rate"] = "slow"

    _, result = changed("healthcare_scheduler", slower)
    assert {c.field: (c.type, c.old_value, c.new_value, c.risk_level) for c in result.changes} == {
        "voice_settings.model_settings.speed": ("voice_parameter_change", 1.0, 0.8, "low"),
        "voice_settings.stop_speaking_plan.number_of_words": ("voice_parameter_change", 3, 5, "low"),
        "system_prompt.voice_specific.speaking_rate": ("voice_parameter_change", "normal", "slow", "low"),
    }
    assert {c.permission for c in result.changes} == {"change_voice_params"}
    assert not result.requires_approval


def test_adding_a_tool_is_medium_and_removing_one_is_high() -> None:
    refund = {"tool_name": "issue_coupon", "status": "implemented"}
    _, added = changed("acme_support_bot", lambda c: c["tools_available"].append(refund))
    change = only(added)
    assert change.to_dict() | {"new_value": None} == {
        "type": "tool_change",
        "action": "add",
        "field": "tools_available[issue_coupon]",
        "old_value": None,
        "new_value": None,
        "risk_level": "medium",
        "permission": "add_remove_tools",
        "tool_name": "issue_coupon",
    }
    assert change.new_value == refund and added.approval_required_from == ("organization_admin",)

    def drop_refunds(c: Config) -> None:
        c["tools_available"] = [t for t in c["tools_available"] if t["tool_name"] != "initiate_refund"]

    _, removed = changed("acme_support_bot", drop_refunds)
    change = only(removed)
    assert (change.action, change.field, change.risk_level) == ("remove", "tools_available[initiate_refund]", "high")
    assert change.old_value["status"] == "implemented" and change.new_value is None
    assert removed.approval_required_from == ("organization_admin", "platform_engineer")


@pytest.mark.parametrize(
    ("tool", "status", "action", "risk"),
    [
        ("initiate_refund", "missing", "remove", "high"),  # no longer bound to the model
        ("check_product_availability", "implemented", "add", "medium"),  # now bound
        ("check_product_availability", "in_progress", "modify", "low"),  # still unbound
    ],
)
def test_a_tool_status_change_is_an_add_or_remove_when_it_binds_or_unbinds_the_tool(
    tool: str, status: str, action: str, risk: str
) -> None:
    def set_status(c: Config) -> None:
        next(t for t in c["tools_available"] if t["tool_name"] == tool)["status"] = status

    _, result = changed("acme_support_bot", set_status)
    change = only(result)
    assert (change.type, change.action, change.field, change.risk_level) == (
        "tool_change",
        action,
        f"tools_available[{tool}].status",
        risk,
    )
    assert change.to_dict()["tool_name"] == tool


def test_where_a_tool_sends_requests_is_high_and_its_description_medium() -> None:
    def edit(c: Config) -> None:
        tool = next(t for t in c["tools_needed"] if t["tool_name"] == "check_product_availability")
        tool["http"]["url"] = "https://inventory.example.com/{product_id}"
        tool["description"] = "Whether a product is in stock, and how many."

    _, result = changed("acme_support_bot", edit)
    risks = {c.field: (c.risk_level, c.permission) for c in result.changes}
    assert risks == {
        "tools_needed[check_product_availability].http.url": ("high", "modify_integrations"),
        "tools_needed[check_product_availability].description": ("medium", "add_remove_tools"),
    }


def test_bookkeeping_fields_are_low() -> None:
    def edit(c: Config) -> None:
        c["tools_needed"][0]["metadata"]["priority"] = "low"
        c["tools_available"][4]["github_issue"] = "https://github.com/workflow/tools/issues/158"
        c["config_metadata"]["description"] = "Support for Acme."

    _, result = changed("acme_support_bot", edit)
    assert {c.type for c in result.changes} == {"tool_change", "metadata_change"}
    assert result.risk_level == "low"


@pytest.mark.parametrize("keyed", ["tools_available", "tools_needed", "integrations", "integrations_needed"])
def test_reordering_a_list_keyed_by_name_is_not_a_change(keyed: str) -> None:
    _, result = changed("acme_support_bot", lambda c: c[keyed].reverse())
    assert result.changes == ()


def test_reordering_transfer_destinations_is_not_a_change_but_a_new_number_is_high() -> None:
    destinations: Callable[[Config], list[Config]] = lambda c: c["workflow_features"]["call_transfer"][  # noqa: E731
        "transfer_destinations"
    ]
    _, reordered = changed("healthcare_scheduler", lambda c: destinations(c).reverse())
    assert reordered.changes == ()

    _, renumbered = changed("healthcare_scheduler", lambda c: destinations(c)[0].update(phone="+14155550000"))
    change = only(renumbered)
    assert change.to_dict() == {
        "type": "workflow_change",
        "action": "modify",
        "field": "workflow_features.call_transfer.transfer_destinations[front_desk].phone",
        "old_value": "+14155556789",
        "new_value": "+14155550000",
        "risk_level": "high",
        "permission": "modify_integrations",
        "destination": "front_desk",
    }
    _, added = changed("healthcare_scheduler", lambda c: destinations(c).append({"name": "billing", "phone": "+1415"}))
    assert only(added).action == "add" and added.approval_required_from == ("organization_admin", "platform_engineer")


def test_reordering_a_plain_list_is_a_change() -> None:
    """Order can mean something in unkeyed lists (fallback order, the prompt's constraints)."""
    _, result = changed("acme_support_bot", lambda c: c["system_prompt"]["constraints"].reverse())
    assert only(result).action == "modify"


def test_integrations_are_high_whatever_the_change() -> None:
    def edit(c: Config) -> None:
        c["integrations"][0]["config"]["auth_type"] = "api_key"
        c["integrations"].append({"integration_name": "zendesk", "status": "missing"})
        c["integrations_needed"].pop()

    _, result = changed("acme_support_bot", edit)
    assert {(c.field, c.action, c.risk_level) for c in result.changes} == {
        ("integrations[salesforce_crm].config.auth_type", "modify", "high"),
        ("integrations[zendesk]", "add", "high"),
        ("integrations_needed[sentiment_api]", "remove", "high"),
    }
    assert {c.type for c in result.changes} == {"integration_change"}
    assert {c.to_dict()["integration_name"] for c in result.changes} == {"salesforce_crm", "zendesk", "sentiment_api"}


def test_model_and_provider_changes_are_high_and_parameters_medium() -> None:
    _, model = changed("acme_support_bot", lambda c: c["llm_config"].update(model="gpt-4o-mini"))
    assert (only(model).type, only(model).risk_level) == ("llm_change", "high")
    _, fallback = changed("acme_support_bot", lambda c: c["llm_config"]["fallback"].update(provider="openai"))
    assert (only(fallback).field, only(fallback).risk_level) == ("llm_config.fallback.provider", "high")
    _, temperature = changed("acme_support_bot", lambda c: c["llm_config"]["parameters"].update(temperature=0.2))
    change = only(temperature)
    assert (change.type, change.field) == ("llm_change", "llm_config.parameters.temperature")
    assert change.risk_level == "medium"


def test_escalation_rules_are_medium_workflow_changes_however_deep() -> None:
    def edit(c: Config) -> None:
        escalation = c["workflow_features"]["human_escalation"]
        escalation["triggers"].append({"condition": "user_requests_manager", "action": "immediate_handoff"})
        escalation["unavailable_action"] = "take_voicemail"

    _, result = changed("acme_support_bot", edit)
    assert {(c.field, c.action) for c in result.changes} == {
        ("workflow_features.human_escalation.triggers", "add"),
        ("workflow_features.human_escalation.unavailable_action", "modify"),
    }
    assert {(c.type, c.risk_level) for c in result.changes} == {("workflow_change", "medium")}


def test_a_section_that_appears_is_classified_key_by_key() -> None:
    """Adding human_escalation to a config without workflow_features yields its leaves, each by its rule."""
    old = example("acme_support_bot")
    del old["workflow_features"]
    new = copy.deepcopy(old)
    new["workflow_features"] = {
        "human_escalation": {"enabled": True, "triggers": [{"condition": "user_requests_human", "action": "handoff"}]},
        "call_transfer": {"enabled": True, "transfer_destinations": [{"name": "desk", "phone": "+14155556789"}]},
    }
    result = classify_changes(old, new)
    assert {(c.field, c.action, c.risk_level) for c in result.changes} == {
        ("workflow_features.human_escalation.enabled", "add", "medium"),
        ("workflow_features.human_escalation.triggers", "add", "medium"),
        ("workflow_features.call_transfer.enabled", "add", "high"),
        ("workflow_features.call_transfer.transfer_destinations[desk]", "add", "high"),
    }
    removed = classify_changes(new, old)
    assert {c.action for c in removed.changes} == {"remove"} and removed.risk_level == "high"


def test_knowledge_greeting_webchat_and_telephony_have_their_own_types() -> None:
    def edit(c: Config) -> None:
        c["knowledge"]["namespaces"].append("acme_billing")
        c["first_message"] = "Hello!"
        c["webchat"] = {"colors": {"primary": "#ff0000"}, "greeting": "Hi there"}

    _, result = changed("acme_support_bot", edit)
    assert {c.field: (c.type, c.risk_level) for c in result.changes} == {
        "knowledge.namespaces": ("knowledge_change", "medium"),
        "first_message": ("greeting_change", "medium"),
        "webchat.colors.primary": ("webchat_change", "low"),
        "webchat.greeting": ("greeting_change", "medium"),
    }

    def voice(c: Config) -> None:
        c["sip_config"]["call_recording"] = False
        c["livekit_config"]["tts_voice_id"] = "another-voice"
        c["livekit_config"]["tts_provider"] = "cartesia"

    _, result = changed("healthcare_scheduler", voice)
    assert {c.field: (c.type, c.risk_level) for c in result.changes} == {
        "sip_config.call_recording": ("telephony_change", "high"),
        "livekit_config.tts_voice_id": ("voice_parameter_change", "low"),
        "livekit_config.tts_provider": ("voice_provider_change", "high"),
    }


def test_unknown_keys_are_high_at_the_top_and_take_their_section_rule_below_it() -> None:
    _, top = changed("acme_support_bot", lambda c: c.update(routing={"mode": "fast"}))
    assert {(c.type, c.field, c.risk_level) for c in top.changes} == {("unknown_change", "routing.mode", "high")}
    _, nested = changed("healthcare_scheduler", lambda c: c["voice_settings"].update(pitch=1.2))
    assert (only(nested).type, only(nested).field, only(nested).risk_level) == (
        "voice_parameter_change",
        "voice_settings.pitch",
        "low",
    )


def test_comment_keys_are_low_wherever_they_are() -> None:
    def edit(c: Config) -> None:
        c["_comment"] = "changed"
        c["llm_config"]["_comment"] = "a note on the model"
        c["tools_available"][0]["_why"] = "customers ask"

    _, result = changed("healthcare_scheduler", edit)
    assert {(c.type, c.risk_level) for c in result.changes} == {("comment_change", "low")}
    assert {c.field for c in result.changes} == {
        "_comment",
        "llm_config._comment",
        "tools_available[check_appointment_availability]._why",
    }


def test_null_empty_and_absent_are_the_same() -> None:
    old = example("acme_support_bot")
    new = copy.deepcopy(old)
    new["tools_available"][0].pop("github_issue")  # was null
    new["system_prompt"]["voice_specific"] = None
    new["integrations_needed"][0]["metadata"]["assigned_to"] = None
    new["webchat"] = {}
    new["sip_config"] = None
    old["database_config"]["tables"] = []
    del new["database_config"]["tables"]
    assert classify_changes(old, new).changes == ()


def test_a_list_whose_names_repeat_is_compared_as_a_whole() -> None:
    _, result = changed("acme_support_bot", lambda c: c["tools_available"].append(dict(c["tools_available"][0])))
    change = only(result)
    assert (change.field, change.action, change.risk_level) == ("tools_available", "add", "high")


def test_a_new_config_is_every_key_added() -> None:
    config = example("healthcare_scheduler")
    result = classify_changes(None, config)
    assert result.changes and {c.action for c in result.changes} == {"add"}
    assert result.risk_level == "high"
    assert "tools_available[book_appointment]" in {c.field for c in result.changes}


def test_classifying_leaves_the_configs_as_they_were() -> None:
    old, new = example("acme_support_bot"), example("acme_support_bot")
    new["tools_available"].reverse()
    new["integrations"].pop()
    before = (copy.deepcopy(old), copy.deepcopy(new))
    classify_changes(old, new)
    assert (old, new) == before


def test_every_rule_path_answers_every_action() -> None:
    for path in {r.path for r in RULES}:
        concrete = path.replace("[]", "[x]") if path not in ("", "_") else ("unknown_key" if path == "" else "_note")
        for action in ("add", "remove", "modify"):
            assert rule_for(concrete, action).path == path, (path, action)  # type: ignore[arg-type]


def test_approvers_follow_the_seed() -> None:
    assert APPROVERS == {
        "low": (),
        "medium": ("organization_admin",),
        "high": ("organization_admin", "platform_engineer"),
    }
    seed_types = {
        "system_prompt_change",
        "tool_change",
        "voice_parameter_change",
        "integration_change",
        "llm_change",
        "workflow_change",
        "knowledge_change",
    }
    assert seed_types <= {r.change_type for r in RULES}


def test_the_docs_table_is_the_modules_table() -> None:
    text = (ROOT / "docs" / "config-format.md").read_text(encoding="utf-8")
    section = text.split("## Change classification", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([^`]*)` \| (\w+) \| (\w+) \| (\w+) \| ([^|]+?) \| (\w+) \| ([^|]+?) \|$", section, re.M)
    documented = [
        (path, action, kind, risk, () if approvers == "—" else tuple(approvers.split(", ")), permission, what)
        for path, action, kind, risk, approvers, permission, what in rows
    ]
    expected = [(r.path, r.action, r.change_type, r.risk, r.approvers, r.permission, r.what) for r in RULES]
    assert documented == expected, "docs/config-format.md's change table differs from change_risk.RULES:\n" + "\n".join(
        f"| `{r.path}` | {r.action} | {r.change_type} | {r.risk} | {', '.join(r.approvers) or '—'} | {r.permission}"
        f" | {r.what} |"
        for r in RULES
    )
