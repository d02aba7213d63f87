"""Suite files (YAML or JSON, kept in git next to the bot configs): a suite's settings, reusable assertion
templates, defaults every case gets, and its cases. Read here into a suite and its cases; errors name the
field by its JSON path and, for a file, its line. The JSON Schema is configs/schema/eval-suite.schema.json."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, ValidationError, model_validator

from chorus.agents.errors import InvalidInput
from chorus.evals.schemas import (
    ASSERTION_METRICS,
    MAX_TEXT,
    AnyAssertion,
    Assertion,
    AssertionSet,
    CaseCreate,
    EvaluatorConfig,
    SimulatedUser,
    SuiteCreate,
    assertion_kind,
)

ASSERTION_TYPES = sorted([*ASSERTION_METRICS, *(f"not-{m}" for m in ASSERTION_METRICS)])


class TemplateRef(BaseModel):
    """An assertion written once under `templates` and used by name; `weight`/`metric` may be set here."""

    model_config = ConfigDict(extra="forbid")
    template: str = Field(min_length=1, max_length=100)
    weight: float | None = Field(default=None, ge=0, le=1000)
    metric: str | None = Field(default=None, max_length=100)


FileAssertion = Annotated[
    Annotated[TemplateRef, Tag("TemplateRef")]
    | Annotated[AssertionSet, Tag("AssertionSet")]
    | Annotated[Assertion, Tag("Assertion")],
    Discriminator(assertion_kind),
]


class CaseDefaults(BaseModel):
    """What every case gets unless it says otherwise (assertions are added to the case's own)."""

    model_config = ConfigDict(extra="forbid")
    assertions: list[FileAssertion] = Field(default_factory=list, max_length=100)
    vars: dict[str, str | int | float | bool] = Field(default_factory=dict)
    tool_mocks: dict[str, Any] = Field(default_factory=dict)
    threshold: float | None = Field(default=None, ge=0, le=1)
    repeat: int | None = Field(default=None, ge=1, le=100)


class CaseFile(BaseModel):
    """A case: `user_input` (one turn), `turns` (scripted user turns, in one conversation) or `simulated_user`
    (a simulator plays the user)."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, max_length=255)
    description: str | None = Field(default=None, max_length=2000)
    user_input: str | None = Field(default=None, min_length=1, max_length=MAX_TEXT)
    turns: list[Annotated[str, Field(min_length=1, max_length=MAX_TEXT)]] = Field(default_factory=list, max_length=50)
    conversation_context: dict[str, Any] | None = None
    source_conversation_id: str | None = Field(default=None, max_length=255)
    vars: dict[str, str | int | float | bool] = Field(default_factory=dict)
    expected_values: dict[str, Any] | None = None
    evaluator_types: list[str] = Field(default_factory=list, max_length=20)
    assertions: list[FileAssertion] = Field(default_factory=list, max_length=100)
    threshold: float | None = Field(default=None, ge=0, le=1)
    repeat: int | None = Field(default=None, ge=1, le=100)
    tool_mocks: dict[str, Any] = Field(default_factory=dict)
    simulated_user: SimulatedUser | None = None

    @model_validator(mode="after")
    def _one_input(self) -> CaseFile:
        given = [self.user_input is not None, bool(self.turns), self.simulated_user is not None]
        if sum(given) != 1:
            raise ValueError(
                "give one of user_input (one turn), turns (scripted user turns) or simulated_user (a simulator "
                "plays the user)"
            )
        return self


class SuiteFile(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"$id": "https://chorus.dev/schema/eval-suite.json"})
    name: str = Field(min_length=1, max_length=255)
    description: str | None = Field(default=None, max_length=2000)
    evaluator_config: EvaluatorConfig = Field(default_factory=EvaluatorConfig)
    templates: dict[str, AnyAssertion] = Field(default_factory=dict)
    defaults: CaseDefaults = Field(default_factory=CaseDefaults)
    cases: list[CaseFile] = Field(min_length=1, max_length=1000)

    def definition(self) -> tuple[SuiteCreate, list[CaseCreate]]:
        """The suite and its cases, templates and defaults resolved; InvalidInput naming a bad reference."""
        suite = SuiteCreate(name=self.name, description=self.description, evaluator_config=self.evaluator_config)
        cases = []
        for i, case in enumerate(self.cases):
            where = f"$.cases[{i}]"
            assertions = [
                self._resolve(a, f"$.defaults.assertions[{j}]") for j, a in enumerate(self.defaults.assertions)
            ]
            assertions += [self._resolve(a, f"{where}.assertions[{j}]") for j, a in enumerate(case.assertions)]
            given: list[str | None] = [case.user_input] if case.user_input is not None else [*case.turns]
            first, *rest = given or [None]
            try:
                cases.append(
                    CaseCreate(
                        name=case.name or f"case {i + 1}",
                        user_input=first,
                        turns=[t for t in rest if t is not None] if case.user_input is None else case.turns,
                        simulated_user=case.simulated_user,
                        conversation_context=case.conversation_context,
                        source_conversation_id=case.source_conversation_id,
                        vars={**self.defaults.vars, **case.vars},
                        expected_values=case.expected_values,
                        evaluator_types=case.evaluator_types,
                        assertions=assertions,
                        threshold=case.threshold if case.threshold is not None else self.defaults.threshold,
                        repeat=case.repeat or self.defaults.repeat or 1,
                        tool_mocks={**self.defaults.tool_mocks, **case.tool_mocks},
                    )
                )
            except ValidationError as exc:
                raise invalid(exc, prefix=where) from None
        return suite, cases

    def _resolve(self, item: TemplateRef | AssertionSet | Assertion, where: str) -> AssertionSet | Assertion:
        if not isinstance(item, TemplateRef):
            return item
        found = self.templates.get(item.template)
        if found is None:
            known = sorted(self.templates) or "none"
            raise InvalidInput(
                f"{where}.template: no template '{item.template}' (the suite's templates: {known})",
                errors=[{"path": f"{where}.template", "message": f"unknown template '{item.template}'"}],
            )
        changes = {k: v for k, v in (("weight", item.weight), ("metric", item.metric)) if v is not None}
        return found.model_copy(update=changes)


def _path(loc: tuple[int | str, ...], prefix: str = "$") -> str:
    return prefix + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc)


def invalid(exc: ValidationError, *, prefix: str = "$", lines: dict[str, int] | None = None) -> InvalidInput:
    """InvalidInput listing each problem's JSON path (and line, when the file's lines are known)."""
    errors = []
    for e in exc.errors():
        # Pydantic names the union member tried ("Assertion", "TemplateRef"...): not a field of the file.
        loc = tuple(p for p in e["loc"] if not (isinstance(p, str) and (p[:1].isupper() or "[" in p)))
        path = _path(loc, prefix)
        problem: dict[str, Any] = {"path": path, "message": e["msg"]}
        line = (lines or {}).get(path)
        if line is None and lines:
            parent = path
            while line is None and ("." in parent[1:] or "[" in parent):
                parent = parent[: max(parent.rfind("."), parent.rfind("["))]
                line = lines.get(parent)
        if line is not None:
            problem["line"] = line
        errors.append(problem)
    shown = "; ".join(
        f"{p['path']}" + (f" (line {p['line']})" if "line" in p else "") + f": {p['message']}" for p in errors[:5]
    )
    return InvalidInput(f"the suite is invalid: {shown}", errors=errors)


def _lines(node: yaml.Node, path: str, out: dict[str, int]) -> None:
    out.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            out[f"{path}.{key.value}"] = key.start_mark.line + 1
            _lines(value, f"{path}.{key.value}", out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _lines(item, f"{path}[{i}]", out)


@dataclass(frozen=True)
class LoadedSuite:
    suite: SuiteFile
    lines: dict[str, int]


def parse(text: str, *, source: str = "suite") -> LoadedSuite:
    """A suite file's text (YAML, of which JSON is a subset), validated; InvalidInput with paths and lines."""
    try:
        data = yaml.safe_load(text)
        node = yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise InvalidInput(
            f"{source} is not valid YAML or JSON{at}: {getattr(exc, 'problem', None) or exc}",
            errors=[{"path": "$", "message": "not YAML or JSON", **({"line": mark.line + 1} if mark else {})}],
        ) from None
    lines: dict[str, int] = {}
    if node is not None:
        _lines(node, "$", lines)
    if not isinstance(data, dict):
        raise InvalidInput(
            f"{source} must hold an object with `name` and `cases`",
            errors=[{"path": "$", "message": "expected an object"}],
        )
    try:
        return LoadedSuite(SuiteFile.model_validate(data), lines)
    except ValidationError as exc:
        raise invalid(exc, lines=lines) from None


def load(path: Path) -> LoadedSuite:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"cannot read the suite file {path}: {exc}") from None
    return parse(text, source=str(path))


def json_schema() -> dict[str, Any]:
    """The JSON Schema of suite files (published as configs/schema/eval-suite.schema.json)."""
    schema = SuiteFile.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Chorus eval suite"
    for name in ("Assertion",):
        schema["$defs"][name]["properties"]["type"]["enum"] = ASSERTION_TYPES
    # expected_outcome's shorthands (ExpectedOutcome reads them before validating): a description alone, or
    # a list of assertions alone.
    outcome = schema["$defs"]["ExpectedOutcome"]["properties"]
    schema["$defs"]["SimulatedUser"]["properties"]["expected_outcome"] = {
        "anyOf": [
            {"$ref": "#/$defs/ExpectedOutcome"},
            {**outcome["description"]["anyOf"][0], "description": "a description alone"},
            {**outcome["assertions"], "minItems": 1, "description": "assertions alone"},
        ]
    }
    return schema


def schema_text() -> str:
    return json.dumps(json_schema(), indent=2, ensure_ascii=False) + "\n"
