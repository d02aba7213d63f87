"""Validate a bot config: the JSON Schema, then the rules across fields. Every problem has the JSON path of the
field it is about and the named check it belongs to (problems.py); the check list a client sees is checks.py."""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Any

from pydantic import ValidationError

from chorus.agents.configs.cycles import cycle_problems
from chorus.agents.configs.escalation_rules import parse_trigger
from chorus.agents.configs.model_keys import key_env_problem
from chorus.agents.configs.models import BotConfig, LlmConfig, LlmFallback
from chorus.agents.configs.problems import Problem, ValidationReport, json_path
from chorus.agents.configs.schema_errors import schema_problems
from chorus.agents.configs.tool_checks import tool_problems
from chorus.agents.configs.urls import url_problem
from chorus.agents.destinations import literal_problem, private_allowed
from chorus.agents.pii import has_extractor
from chorus.agents.secrets.references import config_references
from chorus.agents.tools.registry import ToolRegistry

__all__ = ["NAMESPACE", "Problem", "ValidationReport", "validate_config"]

NAMESPACE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
# The model names each provider serves, by prefix: a model of another family is most likely a slip (a warning,
# not an error: providers add families, and an OpenAI-compatible server serves whatever it serves).
_MODEL_FAMILIES = {
    "openai": ("gpt-", "o1", "o3", "o4", "chatgpt-", "ft:", "davinci", "babbage", "text-", "computer-use"),
    "anthropic": ("claude-",),
}


def _structure_problems(cfg: BotConfig) -> tuple[list[Problem], list[Problem]]:
    errors: list[Problem] = []
    warnings: list[Problem] = []
    if cfg.product_type == "voicebot":
        if cfg.integrations:
            errors.append(
                Problem(
                    "$.integrations",
                    "voicebots carry no external integrations: the phone is their only channel; remove these or put "
                    "them in a chatbot config",
                    "integration_dependencies_met",
                )
            )
        if cfg.integrations_needed:
            errors.append(
                Problem(
                    "$.integrations_needed",
                    "voicebots carry no external integrations; remove integrations_needed",
                    "integration_dependencies_met",
                )
            )
        return errors, warnings
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
    return errors, warnings


def _llm_problems(llm: LlmConfig) -> tuple[list[Problem], list[Problem]]:
    errors: list[Problem] = []
    warnings: list[Problem] = []
    listed = isinstance(llm.fallback, list)
    specs: list[tuple[str, LlmConfig | LlmFallback]] = [("$.llm_config", llm)]
    specs += [
        (f"$.llm_config.fallback[{j}]" if listed else "$.llm_config.fallback", fb)
        for j, fb in enumerate(llm.fallbacks())
    ]
    for path, spec in specs:
        if spec.provider == "openai_compatible" and not spec.base_url:
            errors.append(Problem(f"{path}.base_url", "provider openai_compatible needs base_url", "llm_config_valid"))
        if (spec.base_url is not None and (problem := url_problem(spec.base_url))) or (
            spec.base_url is not None
            and (problem := literal_problem(spec.base_url, who="a model's base_url", private_ok=True))
        ):
            errors.append(Problem(f"{path}.base_url", problem, "llm_config_valid"))
        if spec.api_key_env is not None and (problem := key_env_problem(spec.api_key_env)):
            errors.append(Problem(f"{path}.api_key_env", problem, "llm_config_valid"))
        families = _MODEL_FAMILIES.get(spec.provider)
        if families and not spec.model.lower().startswith(families):
            warnings.append(
                Problem(
                    f"{path}.model",
                    f"'{spec.model}' does not look like a {spec.provider} model (theirs start with "
                    f"{', '.join(families[:4])}…): check provider and model; the first call fails if the provider "
                    "does not serve it",
                    "llm_config_valid",
                )
            )
    return errors, warnings


def _webhook_problems(cfg: BotConfig) -> list[Problem]:
    """The post-call webhook's URL, as its sender will check it (without resolving a host name)."""
    hook = getattr(cfg, "call_webhook", None)
    if hook is None:
        return []
    problem = literal_problem(hook.url, who="call_webhook.url", private_ok=private_allowed())
    return [Problem("$.call_webhook.url", problem)] if problem else []


def _knowledge_problems(cfg: BotConfig, namespaces: Collection[str] | None) -> tuple[list[Problem], list[Problem]]:
    """Namespace names are well-formed; with the tenant's `namespaces`, a missing one is a warning: the config
    may come before its documents (`chorus kb ingest` creates the namespace), and until then the search finds
    nothing there and the bot says it does not know, rather than failing."""
    errors: list[Problem] = []
    warnings: list[Problem] = []
    knowledge = cfg.knowledge
    if knowledge is None:
        return errors, warnings
    named = [(f"$.knowledge.namespaces[{k}]", ns) for k, ns in enumerate(knowledge.namespaces)]
    if knowledge.faq_namespace is not None:
        named.append(("$.knowledge.faq_namespace", knowledge.faq_namespace))
    for path, ns_name in named:
        if not NAMESPACE.match(ns_name):
            errors.append(
                Problem(
                    path,
                    f"invalid namespace '{ns_name}': 1-64 letters, digits, '_', '-', '.'",
                    "knowledge_available",
                )
            )
        elif namespaces is not None and ns_name not in namespaces:
            how = (
                "create an FAQ in it (POST /api/v1/rag/faq, or `chorus kb faq import FILE`)"
                if path.endswith("faq_namespace")
                else f"ingest documents into it (`chorus kb ingest PATH --namespace {ns_name}`, "
                "or POST /api/v1/rag/ingest)"
            )
            warnings.append(
                Problem(
                    path,
                    f"knowledge namespace '{ns_name}' does not exist for this tenant yet: the bot finds nothing there "
                    f"until you {how}",
                    "knowledge_available",
                )
            )
    if knowledge.auto_answer_threshold is not None and not knowledge.faq_namespace:
        warnings.append(
            Problem(
                "$.knowledge.auto_answer_threshold",
                "ignored: auto-answer needs knowledge.faq_namespace",
                "knowledge_available",
            )
        )
    return errors, warnings


def _workflow_warnings(cfg: BotConfig) -> list[Problem]:
    warnings: list[Problem] = []
    wf = cfg.workflow_features
    if wf.human_escalation and wf.human_escalation.enabled:
        for k, trig in enumerate(wf.human_escalation.triggers):
            if parse_trigger(trig) is None:
                warnings.append(
                    Problem(
                        f"$.workflow_features.human_escalation.triggers[{k}].condition",
                        f"condition '{trig.condition}' is not understood and is ignored; use 'sentiment_score < X', "
                        "'ai_confidence < X', 'user_requests_human' or 'emergency_keywords_detected'",
                        "workflow_features_supported",
                    )
                )
    if wf.pii_collection and wf.pii_collection.enabled:
        for k, fname in enumerate(wf.pii_collection.fields):
            if not has_extractor(fname):
                warnings.append(
                    Problem(
                        f"$.workflow_features.pii_collection.fields[{k}]",
                        f"no extractor for '{fname}': it will not be captured",
                        "workflow_features_supported",
                    )
                )
    return warnings


def _secret_problems(data: Any, secret_names: Collection[str] | None) -> tuple[list[Problem], list[Problem]]:
    """`${…}` in HTTP tools: only `${secret:NAME}` in headers, naming a secret the tenant has. Without
    `secret_names` (no tenant) existence is left to the upload."""
    errors: list[Problem] = []
    warnings: list[Problem] = []
    for found in config_references(data):
        errors.extend(Problem(found.path, message, "credentials_present") for message in found.scan.problems)
        for name in found.scan.names:
            if secret_names is None:
                warnings.append(
                    Problem(
                        found.path, f"uses secret '{name}'; the upload checks that it exists", "credentials_present"
                    )
                )
            elif name not in secret_names:
                errors.append(
                    Problem(
                        found.path,
                        f"secret '{name}' does not exist for this tenant; create it first "
                        f"(POST /api/v1/secrets or `chorus secrets set {name}`)",
                        "credentials_present",
                    )
                )
    return errors, warnings


MAX_DEPTH = 32  # far deeper than any field of the format; deeper input is refused before the schema sees it


def _too_deep(data: Any) -> str | None:
    """The path of a value nested more than MAX_DEPTH levels deep, else None (iterative: no recursion)."""
    stack: list[tuple[Any, str, int]] = [(data, "$", 0)]
    while stack:
        value, path, depth = stack.pop()
        if depth > MAX_DEPTH:
            return path
        if isinstance(value, dict):
            stack.extend((v, f"{path}.{k}", depth + 1) for k, v in value.items())
        elif isinstance(value, list):
            stack.extend((v, f"{path}[{i}]", depth + 1) for i, v in enumerate(value))
    return None


def validate_config(
    data: Any,
    *,
    registry: ToolRegistry,
    secret_names: Collection[str] | None = None,
    namespaces: Collection[str] | None = None,
) -> ValidationReport:
    """Validate `data`. With the tenant's `secret_names`, referenced secrets must exist; with its knowledge
    `namespaces`, a namespace the config names that does not exist is a warning."""
    if not isinstance(data, dict):
        return ValidationReport(errors=[Problem("$", "a bot config must be a JSON object")])
    if (deep := _too_deep(data)) is not None:
        return ValidationReport(errors=[Problem(deep, f"nested more than {MAX_DEPTH} levels deep; no config field is")])
    report = ValidationReport(errors=schema_problems(data))
    if report.errors:
        return report
    try:
        cfg = BotConfig.model_validate(data)
    except ValidationError as exc:
        report.errors = [Problem(json_path(list(e["loc"])), e["msg"]) for e in exc.errors()]
        return report
    report.parsed = cfg
    for errors, warnings in (
        _structure_problems(cfg),
        tool_problems(cfg, registry),
        _llm_problems(cfg.llm_config),
        (_webhook_problems(cfg), []),
        _knowledge_problems(cfg, namespaces),
        ([], _workflow_warnings(cfg)),
        (cycle_problems(cfg), []),
        _secret_problems(data, secret_names),
    ):
        report.errors += errors
        report.warnings += warnings
    if not report.errors:
        report.config = cfg
    return report
