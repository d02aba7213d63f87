"""Validate a bot config: the JSON Schema, then the cross-field rules. Every problem has a JSON path."""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from jsonschema import Draft202012Validator
from pydantic import ValidationError

from chorus.agents.configs.escalation_rules import parse_trigger
from chorus.agents.configs.models import BotConfig
from chorus.agents.configs.schema import bot_schema
from chorus.agents.pii import has_extractor
from chorus.agents.secrets.references import config_references
from chorus.agents.tools.registry import ToolRegistry
from chorus.agents.tools.schemas import InvalidToolSchema, normalize_input_schema


@dataclass(frozen=True)
class Problem:
    path: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"path": self.path, "message": self.message}


@dataclass
class ValidationReport:
    errors: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    config: BotConfig | None = None

    @property
    def valid(self) -> bool:
        return not self.errors and self.config is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            "valid": self.valid,
            "validation_status": "passed" if self.valid else "failed",
            "errors": [p.to_dict() for p in self.errors],
            "warnings": [p.to_dict() for p in self.warnings],
        }


_NAMESPACE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def _json_path(parts: list[Any]) -> str:
    return "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts)


@cache
def _validator() -> Draft202012Validator:
    """One validator per process: it resolves the schema's references once, not per config."""
    return Draft202012Validator(bot_schema())


def _schema_problems(data: Any) -> list[Problem]:
    validator = _validator()
    problems = []
    for err in validator.iter_errors(data):
        # For anyOf/oneOf failures the innermost error (nested ones too) says more than "is not valid under
        # any", and names the field it is about.
        best = err
        while best.context:
            best = max(best.context, key=lambda e: len(e.absolute_path))
        message = best.message
        if err.validator == "additionalProperties":
            extra = sorted(set(err.instance) - set(err.schema.get("properties", {})))
            extra = [k for k in extra if not k.startswith("_")]
            names = ", ".join(map(repr, extra))
            message = f"unknown field(s) {names}; check the spelling (keys starting with '_' are comments)"
        path = best.absolute_path if len(best.absolute_path) > len(err.absolute_path) else err.absolute_path
        problems.append(Problem(_json_path(list(path)), message))
    return sorted(problems, key=lambda p: p.path)


def _cross_field_problems(cfg: BotConfig, registry: ToolRegistry) -> tuple[list[Problem], list[Problem]]:
    errors: list[Problem] = []
    warnings: list[Problem] = []
    voice = cfg.product_type == "voicebot"

    if voice and cfg.integrations:
        errors.append(
            Problem(
                "$.integrations",
                "voicebots carry no external integrations: the phone is "
                "their only channel; remove these or put them in a chatbot config",
            )
        )
    if voice and cfg.integrations_needed:
        errors.append(
            Problem(
                "$.integrations_needed",
                "voicebots carry no external integrations; remove integrations_needed",
            )
        )
    if not voice:
        for name in ("sip_config", "livekit_config", "voice_settings"):
            if getattr(cfg, name) is not None:
                errors.append(
                    Problem(
                        f"$.{name}",
                        f"chatbots have no {name}; remove it or set config_metadata.product_type to 'voicebot'",
                    )
                )
        if cfg.system_prompt.voice_specific is not None:
            warnings.append(Problem("$.system_prompt.voice_specific", "ignored: this is a chatbot"))

    needed = {t.tool_name: (i, t) for i, t in enumerate(cfg.tools_needed)}
    for i, spec in enumerate(cfg.tools_needed):
        try:
            normalize_input_schema(spec.input_schema)
        except InvalidToolSchema as exc:
            errors.append(Problem(f"$.tools_needed[{i}].input_schema", str(exc)))

    seen: set[str] = set()
    for i, tool in enumerate(cfg.tools_available):
        path = f"$.tools_available[{i}]"
        if tool.tool_name in seen:
            errors.append(Problem(f"{path}.tool_name", f"tool '{tool.tool_name}' is listed twice"))
        seen.add(tool.tool_name)
        declared = needed.get(tool.tool_name)
        if tool.status == "implemented":
            if tool.tool_name not in registry and not (declared and declared[1].http):
                known = ", ".join(registry.names())
                errors.append(
                    Problem(
                        f"{path}.tool_name",
                        f"tool '{tool.tool_name}' is marked implemented but does not exist: register it, "
                        f"declare it in tools_needed with an http block, or mark it missing (known: {known})",
                    )
                )
        else:
            issue = f" ({tool.github_issue})" if tool.github_issue else ""
            warnings.append(
                Problem(
                    f"{path}.status",
                    f"tool '{tool.tool_name}' is {tool.status}{issue}: "
                    "the bot runs without it, with reduced functionality",
                )
            )
    for name, (i, spec) in needed.items():
        if spec.http and name not in seen:
            warnings.append(
                Problem(
                    f"$.tools_needed[{i}]",
                    f"HTTP tool '{name}' is declared but not listed "
                    "in tools_available as implemented, so the bot cannot call it",
                )
            )

    if cfg.llm_config.provider == "openai_compatible" and not cfg.llm_config.base_url:
        errors.append(Problem("$.llm_config.base_url", "provider openai_compatible needs base_url"))
    for j, fb in enumerate(cfg.llm_config.fallbacks()):
        if fb.provider == "openai_compatible" and not fb.base_url:
            suffix = "" if not isinstance(cfg.llm_config.fallback, list) else f"[{j}]"
            errors.append(
                Problem(f"$.llm_config.fallback{suffix}.base_url", "provider openai_compatible needs base_url")
            )

    knowledge = cfg.knowledge
    bound = {
        "knowledge_search": bool(knowledge and knowledge.namespaces),
        "faq_search": bool(knowledge and knowledge.faq_namespace),
    }
    for i, tool in enumerate(cfg.tools_available):
        if tool.status == "implemented" and tool.tool_name in bound and not bound[tool.tool_name]:
            needs = "knowledge.namespaces" if tool.tool_name == "knowledge_search" else "knowledge.faq_namespace"
            errors.append(Problem(f"$.tools_available[{i}]", f"tool '{tool.tool_name}' needs {needs} in the config"))
    if knowledge:
        for k, ns_name in enumerate([*knowledge.namespaces, knowledge.faq_namespace]):
            if ns_name is not None and not _NAMESPACE.match(ns_name):
                path = f"$.knowledge.namespaces[{k}]" if k < len(knowledge.namespaces) else "$.knowledge.faq_namespace"
                errors.append(Problem(path, f"invalid namespace '{ns_name}': 1-64 letters, digits, '_', '-', '.'"))
        if knowledge.auto_answer_threshold is not None and not knowledge.faq_namespace:
            warnings.append(
                Problem("$.knowledge.auto_answer_threshold", "ignored: auto-answer needs knowledge.faq_namespace")
            )

    wf = cfg.workflow_features
    if wf.human_escalation and wf.human_escalation.enabled:
        for k, trig in enumerate(wf.human_escalation.triggers):
            if parse_trigger(trig) is None:
                warnings.append(
                    Problem(
                        f"$.workflow_features.human_escalation.triggers[{k}].condition",
                        f"condition '{trig.condition}' is not understood and is ignored; use 'sentiment_score < X', "
                        "'ai_confidence < X', 'user_requests_human' or 'emergency_keywords_detected'",
                    )
                )
    if wf.pii_collection and wf.pii_collection.enabled:
        for k, fname in enumerate(wf.pii_collection.fields):
            if not has_extractor(fname):
                warnings.append(
                    Problem(
                        f"$.workflow_features.pii_collection.fields[{k}]",
                        f"no extractor for '{fname}': it will not be captured",
                    )
                )
    return errors, warnings


def _secret_problems(data: Any, secret_names: Collection[str] | None) -> tuple[list[Problem], list[Problem]]:
    """`${…}` in HTTP tools: only `${secret:NAME}` in headers, naming a secret the tenant has. Without
    `secret_names` (no tenant, e.g. `chorus config validate`) existence is left to the upload."""
    errors: list[Problem] = []
    warnings: list[Problem] = []
    for found in config_references(data):
        errors.extend(Problem(found.path, message) for message in found.scan.problems)
        for name in found.scan.names:
            if secret_names is None:
                warnings.append(Problem(found.path, f"uses secret '{name}'; the upload checks that it exists"))
            elif name not in secret_names:
                errors.append(
                    Problem(
                        found.path,
                        f"secret '{name}' does not exist for this tenant; create it first "
                        f"(POST /api/v1/secrets or `chorus secrets set {name}`)",
                    )
                )
    return errors, warnings


def validate_config(
    data: Any, *, registry: ToolRegistry, secret_names: Collection[str] | None = None
) -> ValidationReport:
    """Validate `data`; `secret_names` (the tenant's secrets) checks that referenced secrets exist."""
    if not isinstance(data, dict):
        return ValidationReport(errors=[Problem("$", "a bot config must be a JSON object")])
    report = ValidationReport(errors=_schema_problems(data))
    if report.errors:
        return report
    try:
        cfg = BotConfig.model_validate(data)
    except ValidationError as exc:
        report.errors = [Problem(_json_path(list(e["loc"])), e["msg"]) for e in exc.errors()]
        return report
    report.errors, report.warnings = _cross_field_problems(cfg, registry)
    secret_errors, secret_warnings = _secret_problems(data, secret_names)
    report.errors += secret_errors
    report.warnings += secret_warnings
    if not report.errors:
        report.config = cfg
    return report
