"""The eval API's and suite files' shapes: suites, cases (evals) with their assertions, execute requests.

Field names follow the seed (000 §1): a suite's `name` and `evaluator_config`; a case's `evaluator_types`,
`expected_values`, `user_input`, `conversation_context`, `source_conversation_id`. Chorus adds to a case its
scripted `turns`, `vars`, `assertions`, `threshold`, `repeat` and mocked tool results (`tool_mocks`).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, field_validator, model_validator

from chorus.agents.knowledge.embedders import MODELS as EMBEDDING_MODELS
from chorus.evals.judge import JudgeConfig
from chorus.evals.metrics_deterministic import METRICS
from chorus.evals.metrics_judged import JUDGED, MODEL_METRICS

# LLM-judged metrics of the seed and the issue (reported "skipped: no judge model" when the suite has no judge).
JUDGED_TYPES = tuple(JUDGED)
# What a case's `evaluator_types` may name: the judged metrics, the embedding and the retrieval metrics.
EVALUATOR_TYPES = tuple(MODEL_METRICS)
ASSERTION_METRICS = sorted([*METRICS, *MODEL_METRICS])
MAX_TEXT = 20_000


def base_type(name: str) -> str:
    return name.removeprefix("not-")


class Assertion(BaseModel):
    """One check of a case's outcome: `type` (prefix `not-` to negate), its `value`, an optional
    `threshold` (for scored metrics) and a `weight` in the case's score."""

    model_config = ConfigDict(extra="forbid")
    type: str = Field(min_length=1, max_length=64)
    value: Any = None
    threshold: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    weight: float = Field(default=1.0, ge=0, le=1000)
    metric: str | None = Field(default=None, max_length=100, description="a name for the summary (default: type)")

    @field_validator("type")
    @classmethod
    def _known(cls, value: str) -> str:
        if base_type(value) not in METRICS and base_type(value) not in MODEL_METRICS:
            raise ValueError(f"unknown assertion type '{value}'; the types are {ASSERTION_METRICS} (prefix 'not-')")
        return value

    @model_validator(mode="after")
    def _value(self) -> Assertion:
        base = base_type(self.type)
        if base in MODEL_METRICS:
            MODEL_METRICS[base](self.value)
        else:
            METRICS[base].check(self.value)
        return self


class AssertionSet(BaseModel):
    """Several assertions scored as one: passes when all pass, or when their weighted score reaches its
    `threshold`."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    type: Literal["assert-set"]
    assertions: list[Assertion] = Field(alias="assert", min_length=1, max_length=50)
    threshold: float | None = Field(default=None, ge=0, le=1)
    weight: float = Field(default=1.0, ge=0, le=1000)
    metric: str | None = Field(default=None, max_length=100)


def assertion_kind(value: Any) -> str:
    """Which model an assertion is (one error list for what was meant, not one per possible model)."""
    if isinstance(value, dict):
        if "template" in value:
            return "TemplateRef"
        if value.get("type") == "assert-set":
            return "AssertionSet"
        return "Assertion"
    return type(value).__name__ if isinstance(value, BaseModel) else "Assertion"


AnyAssertion = Annotated[
    Annotated[AssertionSet, Tag("AssertionSet")] | Annotated[Assertion, Tag("Assertion")],
    Discriminator(assertion_kind),
]


class EvaluatorConfig(BaseModel):
    model_config = ConfigDict(extra="allow")
    default_threshold: float | None = Field(default=None, ge=0, le=1)
    timeout_seconds: float = Field(default=120, gt=0, le=3600)
    min_pass_rate: float = Field(default=1.0, ge=0, le=1, description="the suite passes at this share of trials")
    judge: JudgeConfig | None = Field(default=None, description="the judge model of the LLM-judged metrics")
    embedding_model: str | None = Field(
        default=None, max_length=100, description="semantic_similarity's embedder (default: CHORUS_EMBEDDING_MODEL)"
    )

    @field_validator("embedding_model")
    @classmethod
    def _embedder(cls, value: str | None) -> str | None:
        if value is not None and value not in EMBEDDING_MODELS:
            raise ValueError(f"unknown embedding model '{value}'; choose one of {sorted(EMBEDDING_MODELS)}")
        return value


class SuiteCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=255)
    description: str | None = Field(default=None, max_length=2000)
    evaluator_config: EvaluatorConfig = Field(default_factory=EvaluatorConfig)


# -- simulated users (docs/evals.md, "Simulated users"; run by chorus/evals/simulation.py) ----------------------

MAX_SIMULATED_TURNS = 30
ScriptLine = Annotated[str, Field(min_length=1, max_length=MAX_TEXT)]
Fact = Annotated[str, Field(min_length=1, max_length=2000)] | int | float | bool


class Persona(BaseModel):
    """Who the simulated user is. `script` makes it play the same way every time (the offline model follows
    it; a real model is told it): ordered user lines, or facts it gives when the bot asks for them by name."""

    model_config = ConfigDict(extra="forbid")
    description: str = Field(min_length=1, max_length=2000, description="who the user is and how they talk")
    name: str | None = Field(default=None, max_length=255)
    opening: str | None = Field(
        default=None, min_length=1, max_length=MAX_TEXT, description="the user's first message (default: see docs)"
    )
    script: list[ScriptLine] | dict[Annotated[str, Field(min_length=1, max_length=100)], Fact] | None = Field(
        default=None, description="ordered user lines, or facts by name ({'order id': 'ORD-1001'})"
    )

    @field_validator("script")
    @classmethod
    def _bounded(cls, value: list[str] | dict[str, Any] | None) -> list[str] | dict[str, Any] | None:
        if value is not None and not 1 <= len(value) <= 50:
            raise ValueError("a script holds 1 to 50 lines or facts")
        return value


class ExpectedOutcome(BaseModel):
    """What the conversation should achieve: `assertions` (the deterministic metrics, checked on the whole
    conversation) and/or a `description` judged as goal completion when a judge model is configured."""

    model_config = ConfigDict(extra="forbid")
    description: str | None = Field(default=None, min_length=1, max_length=2000)
    assertions: list[AnyAssertion] = Field(default_factory=list, max_length=100)

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"description": value}
        if isinstance(value, list):
            return {"assertions": value}
        return value

    @model_validator(mode="after")
    def _something(self) -> ExpectedOutcome:
        if self.description is None and not self.assertions:
            raise ValueError("an expected outcome needs a description or at least one assertion")
        return self


class SimulatedUser(BaseModel):
    """A simulated user instead of scripted turns: plays `persona` in `scenario` against the bot for up to
    `max_turns` user turns; the conversation is judged by `expected_outcome`."""

    model_config = ConfigDict(extra="forbid")
    persona: Persona
    scenario: str = Field(min_length=1, max_length=2000, description="what the user wants, in their situation")
    expected_outcome: ExpectedOutcome
    max_turns: int = Field(default=6, ge=1, le=MAX_SIMULATED_TURNS, description="user turns at most")


class Checks(BaseModel):
    """What judges a conversation: `assertions`, the LLM-judged `evaluator_types` with their
    `expected_values`, the `conversation_context`, and a `threshold` for the weighted score."""

    model_config = ConfigDict(extra="forbid")
    evaluator_types: list[str] = Field(default_factory=list, max_length=20)
    expected_values: dict[str, Any] | None = None
    conversation_context: dict[str, Any] | None = None
    assertions: list[AnyAssertion] = Field(default_factory=list, max_length=100)
    threshold: float | None = Field(default=None, ge=0, le=1)

    @field_validator("evaluator_types")
    @classmethod
    def _judged(cls, value: list[str]) -> list[str]:
        unknown = [t for t in value if t not in EVALUATOR_TYPES]
        if unknown:
            raise ValueError(
                f"unknown evaluator types {unknown}; the evaluator types are {list(EVALUATOR_TYPES)} "
                "(deterministic checks go in `assertions`)"
            )
        return list(dict.fromkeys(value))

    @model_validator(mode="after")
    def _evaluator_thresholds(self) -> Checks:
        for kind in self.evaluator_types:
            given = (self.expected_values or {}).get(kind)
            for name in ("threshold", "min_score", "max_score"):
                value = given.get(name) if isinstance(given, dict) else None
                if value is not None and (
                    isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1
                ):
                    raise ValueError(f"expected_values.{kind}.{name} must be a number from 0 to 1, got {value!r}")
        return self

    def has_checks(self) -> bool:
        return bool(self.assertions or self.evaluator_types)


class CaseCreate(Checks):
    """A test case. `user_input` is the first user turn; `turns` the user turns that follow, in the same
    conversation (`{{var}}` in either is replaced by `vars`). Or, instead of both, a `simulated_user`."""

    name: str | None = Field(default=None, max_length=255)
    user_input: str | None = Field(default=None, min_length=1, max_length=MAX_TEXT)
    simulated_user: SimulatedUser | None = None
    turns: list[Annotated[str, Field(min_length=1, max_length=MAX_TEXT)]] = Field(default_factory=list, max_length=50)
    source_conversation_id: str | None = Field(default=None, max_length=255)
    vars: dict[str, str | int | float | bool] = Field(default_factory=dict)
    repeat: int = Field(default=1, ge=1, le=100)
    tool_mocks: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _something_to_check(self) -> CaseCreate:
        if (self.user_input is None) == (self.simulated_user is None):
            raise ValueError("give either user_input (with optional turns) or simulated_user, not both")
        if self.simulated_user is not None and self.turns:
            raise ValueError(
                "a simulated_user writes its own turns: drop `turns`, or give user_input and turns instead"
            )
        if not self.has_checks() and self.simulated_user is None:
            raise ValueError("a case needs at least one assertion (or an evaluator type) to be judged by")
        return self

    def user_turns(self) -> list[str]:
        if self.user_input is None:
            return []
        return [render(t, self.vars) for t in (self.user_input, *self.turns)]


def render(text: str, variables: dict[str, Any]) -> str:
    for key, value in variables.items():
        text = text.replace("{{" + key + "}}", str(value)).replace("{{ " + key + " }}", str(value))
    return text


class ExecuteRequest(BaseModel):
    """POST /api/v1/evaluation/suites/{id}/execute: which config version to evaluate, and how fast."""

    model_config = ConfigDict(extra="forbid")
    config_id: str | None = Field(default=None, min_length=1, max_length=128, description="a stored config")
    version: int | None = Field(default=None, ge=1, description="default: the config's current version")
    config: dict[str, Any] | None = Field(
        default=None, description="or a bot config not uploaded (validated first; it never gates a deploy)"
    )
    batch_size: int = Field(default=10, ge=1, le=100)
    max_concurrent: int = Field(default=5, ge=1, le=32)
    name: str | None = Field(default=None, max_length=255)
    conversation_spec_id: str | None = Field(default=None, max_length=255)
    flow_name: str | None = Field(default=None, max_length=255)

    @model_validator(mode="after")
    def _one_target(self) -> ExecuteRequest:
        if (self.config_id is None) == (self.config is None):
            raise ValueError("give either config_id (a stored config, with an optional version) or config (a body)")
        if self.config is not None and self.version is not None:
            raise ValueError("version goes with config_id; an unsaved config has no versions")
        return self
