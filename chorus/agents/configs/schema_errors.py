"""The JSON Schema stage of validation, in words a config's author understands: each problem at the exact field
(`$.tools_needed[0].http.url`, the misspelt key itself), "unknown key 'trigers' — did you mean 'triggers'?"
rather than regular expressions and `additionalProperties`.

A valid config is checked by jsonschema-rs (compiled once, ~20 µs); only an invalid one goes through the
Python `jsonschema` validator, whose errors carry what the messages need (the failing sub-schemas of an
`anyOf`, the schema of the object with the unknown key)."""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable
from functools import cache
from typing import Any, cast

import jsonschema_rs
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from chorus.agents.configs.problems import CheckName, Problem, json_path
from chorus.agents.configs.schema import bot_schema
from chorus.agents.configs.urls import url_problem

# What each pattern of the schema asks for, in words (keyed by the pattern itself).
_PATTERNS = {
    r"^[A-Za-z_][A-Za-z0-9_\-]{0,63}$": "1-64 letters, digits, '_' or '-', starting with a letter or '_'",
    r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$": "letters, digits, '_', '.', ':' or '-', starting with a letter or digit",
    r"^\+?[0-9]{3,15}$": "a phone number: 3-15 digits, optionally after a '+' (E.164, e.g. +14155551234)",
    r"^#(?:[0-9a-fA-F]{3}){1,2}$": "a hex colour such as #1a73e8 or #fff",
    r"^https://[^\s\"'<>()\\]+$": "an https:// URL without spaces, quotes or brackets",
    r"^(\*|[A-Za-z0-9_.-]{1,64})$": "a tool name (1-64 letters, digits, '_', '.', '-') or '*'",
}
_JSON_TYPES = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "object": "an object",
    "array": "a list",
    "null": "null",
}


@cache
def _fast() -> jsonschema_rs.Validator:
    return jsonschema_rs.validator_for(bot_schema())


@cache
def _explaining() -> Draft202012Validator:
    """One validator per process: it resolves the schema's references once, not per config."""
    return Draft202012Validator(bot_schema())


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "a list" if isinstance(value, list) else "an object"


def _shown(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def did_you_mean(word: str, known: Iterable[str]) -> str:
    """ " — did you mean 'x'?" when a known word is close, else ''."""
    close = difflib.get_close_matches(word, list(known), n=1, cutoff=0.6)
    return f" — did you mean '{close[0]}'?" if close else ""


def _is_null_branch(err: ValidationError) -> bool:
    return err.validator == "type" and err.validator_value == "null"


def _innermost(err: ValidationError) -> ValidationError:
    """For an `anyOf` (how an optional field reads in the schema), the error of the branch that was meant:
    not "is not null", and the deepest, which names the field it is about."""
    while err.context:
        meant = [e for e in err.context if not _is_null_branch(e)] or list(err.context)
        err = max(meant, key=lambda e: len(e.absolute_path))
    return err


def _unknown_keys(err: ValidationError) -> list[Problem]:
    schema, instance = cast(dict[str, Any], err.schema), cast(dict[str, Any], err.instance)
    known = list(schema.get("properties", {}))
    extra = sorted(k for k in set(instance) - set(known) if not k.startswith("_"))
    problems = []
    for key in extra:
        hint = did_you_mean(key, known) or (
            f"; the keys allowed here are {', '.join(known)}" if known else "; this object takes no keys"
        )
        shown = key if len(key) <= 80 else key[:77] + "..."
        problems.append(
            Problem(
                json_path([*err.absolute_path, key]),
                f"unknown key '{shown}'{hint} (keys starting with '_' are comments)",
            )
        )
    return problems


def _message(err: ValidationError, path: str) -> tuple[str, CheckName]:
    value: Any = err.instance
    wants: Any = err.validator_value  # the schema's value for the keyword that failed
    if err.validator == "pattern":
        if path.endswith(".url") or path.endswith("_url"):
            problem = url_problem(str(value), placeholders=path.endswith(".http.url"))
            return (problem or f"'{value}' is not an http:// or https:// URL"), "json_schema_compliance"
        wanted = _PATTERNS.get(str(wants), f"text matching {wants}")
        return f"'{value}' is not valid here: write {wanted}", "json_schema_compliance"
    if err.validator in ("enum", "const"):
        allowed = wants if err.validator == "enum" else [wants]
        hint = did_you_mean(str(value), [str(a) for a in allowed]) if isinstance(value, str) else ""
        return f"{_shown(value)} is not allowed{hint}; use one of: {', '.join(map(str, allowed))}", (
            "json_schema_compliance"
        )
    if err.validator == "type":
        types = [str(t) for t in (wants if isinstance(wants, list) else [wants])]
        wanted = " or ".join(_JSON_TYPES.get(t, t) for t in types)
        return f"expected {wanted}, got {_kind(value)} ({_shown(value)})", "json_schema_compliance"
    if err.validator in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"):
        bound = {"minimum": ">=", "exclusiveMinimum": ">", "maximum": "<=", "exclusiveMaximum": "<"}[str(err.validator)]
        return f"{_shown(value)} is out of range: it must be {bound} {wants}", "json_schema_compliance"
    if err.validator in ("minLength", "maxLength", "minItems", "maxItems", "minProperties", "maxProperties"):
        what = "characters" if "Length" in str(err.validator) else "entries"
        least = str(err.validator).startswith("min")
        return (
            f"{'at least' if least else 'at most'} {wants} {what} expected, got {len(value)}",
            "json_schema_compliance",
        )
    return err.message, "json_schema_compliance"


def schema_problems(data: Any) -> list[Problem]:
    """Every place `data` breaks the bot config schema, sorted by path; [] when it conforms."""
    if _fast().is_valid(data):
        return []
    problems: list[Problem] = []
    for top in _explaining().iter_errors(data):
        err = _innermost(top)
        if err.validator == "additionalProperties":
            problems += _unknown_keys(err)
            continue
        if err.validator == "required":
            wanted: Any = err.validator_value
            instance: Any = err.instance
            missing = [k for k in wanted if isinstance(instance, dict) and k not in instance]
            for key in missing:
                path = json_path([*err.absolute_path, key])
                problems.append(Problem(path, f"required field '{key}' is missing", "required_fields_present"))
            continue
        path = json_path(list(err.absolute_path))
        message, check = _message(err, path)
        problems.append(Problem(path, message, check))
    return sorted(problems, key=lambda p: p.path)
