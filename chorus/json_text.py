"""Finds text a JSON body may carry that Postgres and orjson cannot store: unpaired UTF-16 surrogates.

JSON allows `"\\ud800"`, and Python's parser turns it into a str that no UTF-8 encoder accepts, so such a
body is refused at the door (422) instead of failing deep inside a handler (orjson, psycopg) with a 500.
"""

from __future__ import annotations

import json
import re
from typing import Any

_SURROGATE_HINT = re.compile(rb"\\u[dD][89a-fA-F]")
# One escape at a time, left to right, so an escaped backslash (`\\`) never starts a `\u` escape.
_ESCAPE = re.compile(rb"\\(?:u([0-9a-fA-F]{4})|.)", re.DOTALL)


def lone_surrogate(body: bytes) -> str | None:
    """The first unpaired surrogate escape in a JSON text (e.g. `\\ud800`), or None if there is none."""
    if not _SURROGATE_HINT.search(body):
        return None
    pending: tuple[int, str] | None = None  # a high surrogate waiting for its low half: (end, text)
    for match in _ESCAPE.finditer(body):
        hex_digits = match.group(1)
        code = int(hex_digits, 16) if hex_digits else None
        if pending is not None:
            if match.start() == pending[0] and code is not None and 0xDC00 <= code <= 0xDFFF:
                pending = None
                continue
            return pending[1]
        if code is None:
            continue
        if 0xD800 <= code <= 0xDBFF:
            pending = (match.end(), match.group(0).decode("ascii"))
        elif 0xDC00 <= code <= 0xDFFF:
            return match.group(0).decode("ascii")
    return pending[1] if pending else None


def unstorable_path(body: bytes) -> str:
    """The JSON path (`$.messages[0].content`) of the first key or string that cannot be encoded as UTF-8,
    or `$` when the body does not parse (its own error comes later, from validation)."""
    try:
        value = json.loads(body)
    except ValueError:
        return "$"
    found = _find_unstorable(value, "$")
    return found or "$"


def _storable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _find_unstorable(value: Any, path: str) -> str | None:
    if isinstance(value, str):
        return None if _storable(value) else path
    if isinstance(value, list):
        for i, item in enumerate(value):
            if found := _find_unstorable(item, f"{path}[{i}]"):
                return found
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if _storable(key) else f"{path}.<key>"
            if not _storable(key):
                return where
            if found := _find_unstorable(item, where):
                return found
    return None


MAX_NESTING = 100  # levels of arrays and objects a JSON body may nest (no API shape comes close)
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET = re.compile(rb"[\[\]{}]")


def nesting_over(body: bytes, limit: int = MAX_NESTING) -> bool:
    """Whether a JSON text nests arrays and objects more than `limit` deep. Cheap for ordinary bodies (fewer
    brackets than the limit: no scan); otherwise strings are skipped and the brackets counted, in C-speed
    regex passes. Such a body would otherwise be stored, then fail when it is serialized back (a 500)."""
    if body.count(b"[") + body.count(b"{") <= limit:
        return False
    depth = 0
    for match in _BRACKET.finditer(_JSON_STRING.sub(b"", body)):
        depth += 1 if match.group(0) in (b"[", b"{") else -1
        if depth > limit:
            return True
    return False
