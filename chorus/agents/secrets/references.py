"""How a config names a secret: `${secret:NAME}` inside an HTTP tool's header value.

`"Authorization": "Bearer ${secret:SHOP_API_KEY}"` sends the tenant's own SHOP_API_KEY. Nothing else in
`${…}` form is expanded, and a config is never read against the server's environment: `${OPENAI_API_KEY}`
is a validation error (and, in a config stored before this rule, a tool error), not a lookup.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

NAME_RULE = "1-64 characters: an upper-case letter, then upper-case letters, digits or '_'"
NAME_PATTERN = r"^[A-Z][A-Z0-9_]{0,63}$"
_NAME = re.compile(NAME_PATTERN)
_REF = re.compile(r"\$\{([^{}]*)\}")
_SECRET_REF = re.compile(r"^secret:([A-Z][A-Z0-9_]{0,63})$")


def is_valid_name(name: str) -> bool:
    return bool(_NAME.match(name))


@dataclass(frozen=True)
class Scan:
    """The secret names a text references, and what is wrong with the rest of its `${…}`."""

    names: list[str]
    problems: list[str]


def scan(text: str) -> Scan:
    names: list[str] = []
    problems: list[str] = []
    for match in _REF.finditer(text):
        inner = match.group(1)
        secret = _SECRET_REF.match(inner)
        if secret:
            names.append(secret.group(1))
        elif inner.startswith("secret:"):
            problems.append(f"'{match.group(0)}' does not name a secret: names are {NAME_RULE}")
        else:
            problems.append(
                f"'{match.group(0)}' is not a vault reference: configs cannot read the server's environment; "
                f"store the value with POST /api/v1/secrets and write '${{secret:{inner or 'NAME'}}}'"
            )
    if "${" in _REF.sub("", text):
        problems.append("an unclosed '${': write '${secret:NAME}'")
    return Scan(names, problems)


def expand(text: str, values: Mapping[str, str]) -> str:
    """Replace each `${secret:NAME}` with its value (every name must be in `values`)."""
    return _REF.sub(lambda m: values[m.group(1).removeprefix("secret:")], text)


@dataclass(frozen=True)
class Found:
    path: str
    scan: Scan


def config_references(config: Any) -> list[Found]:
    """Every `${…}` of a raw config's HTTP tools: in header values (where references belong) and in URLs
    (where they never expand, so any is a problem), each with its JSON path."""
    found: list[Found] = []
    if not isinstance(config, dict) or not isinstance(config.get("tools_needed"), list):
        return found
    for i, spec in enumerate(config["tools_needed"]):
        http = spec.get("http") if isinstance(spec, dict) else None
        if not isinstance(http, dict):
            continue
        url = http.get("url")
        if isinstance(url, str) and "${" in url:
            path = f"$.tools_needed[{i}].http.url"
            found.append(Found(path, Scan([], ["secret references expand only in http.headers, not in the URL"])))
        headers = http.get("headers")
        if not isinstance(headers, dict):
            continue
        for header, value in headers.items():
            if isinstance(value, str) and "${" in value:
                found.append(Found(f"$.tools_needed[{i}].http.headers.{header}", scan(value)))
    return found


def referenced_names(config: Any) -> set[str]:
    return {name for f in config_references(config) for name in f.scan.names}
