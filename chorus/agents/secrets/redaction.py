"""Scrub revealed secret values out of what a tool call returns, before it reaches run state or events.

An endpoint may echo a request's headers back (or put them in an error page); whatever comes back passes
through `Redactor.scrub`, which replaces each value (as sent, URL-encoded or JSON-escaped) with a marker
naming the secret. A value the endpoint transforms some other way (hashed, re-encoded) is not recognised.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote


class Redactor:
    def __init__(self) -> None:
        self._marks: dict[str, str] = {}

    def add(self, name: str, value: str) -> None:
        mark = f"[secret {name} redacted]"
        for form in (value, quote(value, safe=""), json.dumps(value)[1:-1]):
            if form:
                self._marks[form] = mark

    def scrub(self, value: Any) -> Any:
        if not self._marks:
            return value
        if isinstance(value, str):
            for form in sorted(self._marks, key=len, reverse=True):
                value = value.replace(form, self._marks[form])
            return value
        if isinstance(value, dict):
            return {self.scrub(k): self.scrub(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.scrub(v) for v in value]
        return value
