"""Post-call analysis from a config's analysis_plan: the plan is validated (its JSON Schema too); the offline
model gives a deterministic summary, structured data found in the caller's words and checked against the
schema, and success from the outcome; a configured model (an OpenAI-compatible stand-in) is asked for each
part, and what it answers off the rubric or the schema, or its failure, is an {error} on a kept record."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from chorus.agents.configs.models import AnalysisPlan, LlmConfig
from chorus.agents.configs.validation import validate_config
from chorus.agents.tools.builtins import build_registry
from chorus.voice.post_call_analysis import analyse_call
from tests.conftest import example
from tests.fakes import openai_api, serve

SCHEMA = {
    "type": "object",
    "properties": {
        "appointment_date": {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}$"},
        "patient_name": {"type": "string"},
    },
    "required": ["appointment_date"],
}
PLAN = AnalysisPlan.model_validate(
    {
        "summary": {"enabled": True},
        "structured_data": {"json_schema": SCHEMA},
        "success_evaluation": {"rubric": "pass_fail"},
    }
)


def record(outcome: str = "completed") -> dict[str, Any]:
    return {
        "call_id": str(uuid.uuid4()),
        "outcome": outcome,
        "transcript": [
            {"role": "bot", "text": "Hello, this is the clinic."},
            {"role": "caller", "text": "My name is Dana Smith. I need an appointment on 2030-01-07."},
            {"role": "bot", "text": "I have 09:00 free on 2030-01-07."},
            {"role": "caller", "text": "Thanks, bye"},
            {"role": "bot", "text": "Your appointment is booked. Goodbye."},
        ],
    }


def offline_llm() -> LlmConfig:
    return LlmConfig(provider="offline", model="chorus-offline")


async def test_the_offline_analysis_is_deterministic() -> None:
    analysis = await analyse_call(record(), PLAN, offline_llm(), offline=False)
    assert analysis["summary"] == (
        "The caller said: My name is Dana Smith. I need an appointment on 2030-01-07. "
        "The bot's last answer: Your appointment is booked. Goodbye. Outcome: completed."
    )
    assert analysis["structured_data"] == {"data": {"appointment_date": "2030-01-07", "patient_name": "Dana Smith"}}
    assert analysis["success_evaluation"] == {"rubric": "pass_fail", "value": True}
    assert analysis == await analyse_call(record(), PLAN, offline_llm(), offline=False)


@pytest.mark.parametrize(
    ("rubric", "outcome", "value"),
    [
        ("pass_fail", "failed", False),
        ("numeric_scale", "completed", 8),
        ("numeric_scale", "voicemail", 3),
        ("descriptive_scale", "transferred", "Fair"),
    ],
)
async def test_offline_success_follows_the_outcome(rubric: str, outcome: str, value: Any) -> None:
    plan = AnalysisPlan.model_validate({"success_evaluation": {"rubric": rubric}})
    analysis = await analyse_call(record(outcome), plan, offline_llm(), offline=True)
    assert analysis == {"success_evaluation": {"rubric": rubric, "value": value}}


async def test_data_that_does_not_fit_the_schema_is_reported_not_stored_as_valid() -> None:
    schema = {
        "type": "object",
        "properties": {"appointment_date": {"type": "string", "pattern": "^never$"}},
        "required": ["appointment_date"],
    }
    plan = AnalysisPlan.model_validate({"structured_data": {"json_schema": schema}})
    analysis = await analyse_call(record(), plan, offline_llm(), offline=True)
    data = analysis["structured_data"]
    assert data["data"] == {"appointment_date": "2030-01-07"}
    assert data["error"].startswith("the data does not fit json_schema: appointment_date:")
    missing = await analyse_call({**record(), "transcript": []}, plan, offline_llm(), offline=True)
    assert "'appointment_date' is a required property" in missing["structured_data"]["error"]


def validate(plan: Any) -> list[dict[str, Any]]:
    cfg = example("healthcare_scheduler")
    cfg["analysis_plan"] = plan
    errors: list[dict[str, Any]] = validate_config(cfg, registry=build_registry()).to_dict()["errors"]
    return errors


def test_the_plan_and_its_json_schema_are_validated() -> None:
    assert validate({"summary": {"prompt": "Two lines."}, "structured_data": {"json_schema": SCHEMA}}) == []
    broken = validate({"structured_data": {"json_schema": {"type": "object", "properties": {"x": {"type": "nope"}}}}})
    assert [e["path"] for e in broken] == ["$.analysis_plan.structured_data"]
    assert "not a valid JSON Schema at properties/x/type" in broken[0]["message"]
    not_object = validate({"structured_data": {"json_schema": {"type": "string"}}})
    assert 'must describe an object: set "type": "object"' in not_object[0]["message"]
    rubric = validate({"success_evaluation": {"rubric": "stars"}})
    assert [e["path"] for e in rubric] == ["$.analysis_plan.success_evaluation.rubric"]
    webhook = example("healthcare_scheduler") | {"call_webhook": {"url": "ftp://example.com/hook"}}
    assert [e.path for e in validate_config(webhook, registry=build_registry()).errors] == ["$.call_webhook.url"]


def stand_in(base: str) -> LlmConfig:
    return LlmConfig(provider="openai_compatible", model="stand-in", base_url=f"{base}/v1")


async def test_the_configured_model_is_asked_for_each_part() -> None:
    app = openai_api(reply="```json\n" + '{"appointment_date": "2030-01-07"}' + "\n```")
    async with serve(app) as base:
        plan = AnalysisPlan.model_validate({"structured_data": {"json_schema": SCHEMA, "prompt": "Find the date."}})
        analysis = await analyse_call(record(), plan, stand_in(base), offline=False)
    assert analysis == {"structured_data": {"data": {"appointment_date": "2030-01-07"}}}
    asked = app.state.calls[0]["messages"]
    assert "Find the date." in asked[0]["content"] and '"appointment_date"' in asked[0]["content"]
    assert "caller: My name is Dana Smith" in asked[1]["content"] and "Outcome: completed" in asked[1]["content"]
    for reply, rubric, value in (
        ("true", "pass_fail", True),
        ("7.", "numeric_scale", 7),
        ("good", "descriptive_scale", "Good"),
    ):
        plan = AnalysisPlan.model_validate({"success_evaluation": {"rubric": rubric}})
        async with serve(openai_api(reply=reply)) as base:
            analysis = await analyse_call(record(), plan, stand_in(base), offline=False)
        assert analysis == {"success_evaluation": {"rubric": rubric, "value": value}}


@pytest.mark.parametrize(
    ("reply", "plan", "error"),
    [
        ("I think it went well", {"success_evaluation": {"rubric": "numeric_scale"}}, "is not on the numeric_scale"),
        ("no JSON here", {"structured_data": {"json_schema": SCHEMA}}, "the model did not answer JSON"),
    ],
)
async def test_an_answer_off_the_rubric_or_not_json_is_an_error(reply: str, plan: Any, error: str) -> None:
    async with serve(openai_api(reply=reply)) as base:
        analysis = await analyse_call(record(), AnalysisPlan.model_validate(plan), stand_in(base), offline=False)
    assert list(analysis) == ["error"] and error in analysis["error"]


async def test_a_failing_or_unconfigured_model_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    async with serve(openai_api(fail_first=100)) as base:
        analysis = await analyse_call(record(), PLAN, stand_in(base), offline=False)
    assert analysis["error"].startswith("the model failed:")
    name = f"UNSET_{uuid.uuid4().hex[:6].upper()}"
    monkeypatch.setenv("CHORUS_MODEL_KEY_ENVS", name)  # allowed by the operator, but not set
    unset = LlmConfig(provider="openai", model="gpt-4o-mini", api_key_env=name)
    analysis = await analyse_call(record(), PLAN, unset, offline=False)
    assert "needs the environment variable UNSET_" in analysis["error"]
