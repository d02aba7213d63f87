"""The `tool_dependencies_met` rules: every tool a config names exists (in the tool registry, or as a well-formed
HTTP tool it declares), is declared once, and an HTTP tool's URL and headers use only its own arguments."""

from __future__ import annotations

from chorus.agents.configs.models import BotConfig, ToolNeeded
from chorus.agents.configs.problems import CheckName, Problem, json_path
from chorus.agents.configs.schema_errors import did_you_mean
from chorus.agents.configs.urls import placeholders_in, url_problem
from chorus.agents.tools.registry import ToolRegistry
from chorus.agents.tools.schemas import InvalidToolSchema, normalize_input_schema

_CHECK: CheckName = "tool_dependencies_met"


def _http_problems(i: int, spec: ToolNeeded) -> tuple[list[Problem], list[Problem]]:
    """An HTTP tool's URL is well-formed and its placeholders are its arguments; headers have no placeholders
    (http_tool.py fills placeholders in the URL only; headers expand `${secret:NAME}` and nothing else)."""
    errors: list[Problem] = []
    warnings: list[Problem] = []
    http = spec.http
    if http is None:
        return errors, warnings
    base = f"$.tools_needed[{i}].http"
    try:
        schema = normalize_input_schema(spec.input_schema)
    except InvalidToolSchema:
        return errors, warnings  # reported on its own; the arguments are unknown
    arguments = list(schema.get("properties", {}))
    required = set(schema.get("required", []))
    if problem := url_problem(http.url, placeholders=True):
        errors.append(Problem(f"{base}.url", problem, _CHECK))
    for name in dict.fromkeys(placeholders_in(http.url)):
        if name not in arguments:
            declared = f"its arguments are {', '.join(arguments)}" if arguments else "it declares no arguments"
            errors.append(
                Problem(
                    f"{base}.url",
                    f"placeholder {{{name}}} is not an argument of tool '{spec.tool_name}'"
                    f"{did_you_mean(name, arguments)} ({declared}): "
                    f"add '{name}' to input_schema, or fix the placeholder",
                    _CHECK,
                )
            )
        elif name not in required:
            warnings.append(
                Problem(
                    f"{base}.url",
                    f"placeholder {{{name}}} is an optional argument: a call without it fails; make it required",
                    _CHECK,
                )
            )
    for header, value in http.headers.items():
        for name in dict.fromkeys(placeholders_in(value)):
            errors.append(
                Problem(
                    json_path(["tools_needed", i, "http", "headers", header]),
                    f"{{{name}}} would be sent as written: header values are not filled from arguments (only "
                    "${secret:NAME} is expanded there); move it into the URL or the arguments",
                    _CHECK,
                )
            )
    return errors, warnings


def tool_problems(cfg: BotConfig, registry: ToolRegistry) -> tuple[list[Problem], list[Problem]]:
    errors: list[Problem] = []
    warnings: list[Problem] = []
    needed: dict[str, tuple[int, ToolNeeded]] = {}
    for i, spec in enumerate(cfg.tools_needed):
        if spec.tool_name in needed:
            errors.append(
                Problem(
                    f"$.tools_needed[{i}].tool_name",
                    f"tool '{spec.tool_name}' is declared twice (also at $.tools_needed[{needed[spec.tool_name][0]}]);"
                    " keep one declaration",
                    _CHECK,
                )
            )
            continue
        needed[spec.tool_name] = (i, spec)
        try:
            normalize_input_schema(spec.input_schema)
        except InvalidToolSchema as exc:
            errors.append(Problem(f"$.tools_needed[{i}].input_schema", str(exc), _CHECK))
        more_errors, more_warnings = _http_problems(i, spec)
        errors += more_errors
        warnings += more_warnings

    seen: set[str] = set()
    for i, tool in enumerate(cfg.tools_available):
        path = f"$.tools_available[{i}]"
        if tool.tool_name in seen:
            errors.append(Problem(f"{path}.tool_name", f"tool '{tool.tool_name}' is listed twice", _CHECK))
        seen.add(tool.tool_name)
        declared = needed.get(tool.tool_name)
        if tool.status == "implemented":
            if tool.tool_name not in registry and not (declared and declared[1].http):
                known = [*registry.names(), *(n for n, (_, s) in needed.items() if s.http)]
                errors.append(
                    Problem(
                        f"{path}.tool_name",
                        f"tool '{tool.tool_name}' is marked implemented but does not exist"
                        f"{did_you_mean(tool.tool_name, known)}: register it, declare it in tools_needed with an "
                        f"http block, or mark it missing (known: {', '.join(known)})",
                        _CHECK,
                    )
                )
        else:
            issue = f" ({tool.github_issue})" if tool.github_issue else ""
            warnings.append(
                Problem(
                    f"{path}.status",
                    f"tool '{tool.tool_name}' is {tool.status}{issue}: "
                    "the bot runs without it, with reduced functionality",
                    _CHECK,
                )
            )
    for name, (i, spec) in needed.items():
        if spec.http and name not in seen:
            warnings.append(
                Problem(
                    f"$.tools_needed[{i}].tool_name",
                    f"HTTP tool '{name}' is declared but not listed in tools_available as implemented, so the bot "
                    "cannot call it",
                    _CHECK,
                )
            )

    knowledge = cfg.knowledge
    bound = {
        "knowledge_search": bool(knowledge and knowledge.namespaces),
        "faq_search": bool(knowledge and knowledge.faq_namespace),
    }
    for i, tool in enumerate(cfg.tools_available):
        if tool.status == "implemented" and tool.tool_name in bound and not bound[tool.tool_name]:
            needs = "knowledge.namespaces" if tool.tool_name == "knowledge_search" else "knowledge.faq_namespace"
            errors.append(
                Problem(
                    f"$.tools_available[{i}].tool_name", f"tool '{tool.tool_name}' needs {needs} in the config", _CHECK
                )
            )

    if cfg.webchat and cfg.webchat.tool_status:
        callable_tools = {*cfg.implemented_tools(), *(n for n, ok in bound.items() if ok), "*"}
        for name in cfg.webchat.tool_status:
            if name not in callable_tools:
                warnings.append(
                    Problem(
                        json_path(["webchat", "tool_status", name]),
                        f"no tool '{name}'{did_you_mean(name, callable_tools)}: this line is never shown",
                        _CHECK,
                    )
                )
    return errors, warnings
