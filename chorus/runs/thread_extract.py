"""`extract` of thread search: aliases for JSON paths into a thread's values or metadata
(`{"last": "values.messages[-1].content"}`), parsed strictly here and read in SQL with the path as a
parameter of `#>`, so nothing a client sends becomes part of a statement."""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_PATHS = 10
# The SQL each root reads from. `config` and `interrupts` are always empty on Chorus threads.
ROOTS = {"values": '"values"', "metadata": "metadata", "config": "'{}'::jsonb", "interrupts": "'{}'::jsonb"}
_ALIAS = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_ROOT = re.compile(r"[a-z]+")
_STEP = re.compile(r"\.([A-Za-z0-9_\-]{1,128})|\[(-?\d{1,6})\]")
_MAX_STEPS = 16
GRAMMAR = (
    "a path is a root (values, metadata, config or interrupts) followed by .key (letters, digits, _ or -) "
    "and [index] steps (a negative index counts from the end), e.g. values.messages[-1].content"
)


@dataclass(frozen=True)
class ExtractPath:
    alias: str
    root: str
    steps: tuple[str, ...]  # keys and array indexes, as Postgres's `#>` takes them


def parse_path(alias: str, path: str) -> ExtractPath:
    """One alias and its path; ValueError saying what is wrong."""
    if not _ALIAS.fullmatch(alias):
        raise ValueError(f"alias '{alias[:64]}' must be an identifier (letters, digits, _; not starting with a digit)")
    root_match = _ROOT.match(path)
    root = root_match.group(0) if root_match else ""
    if root not in ROOTS:
        raise ValueError(f"path '{path[:128]}' of '{alias}' must start with values, metadata, config or interrupts")
    steps: list[str] = []
    at = len(root)
    while at < len(path):
        step = _STEP.match(path, at)
        if step is None:
            raise ValueError(f"path '{path[:128]}' of '{alias}' is malformed at character {at + 1}: {GRAMMAR}")
        steps.append(step.group(1) if step.group(1) is not None else step.group(2))
        at = step.end()
    if len(steps) > _MAX_STEPS:
        raise ValueError(f"path of '{alias}' is deeper than {_MAX_STEPS} steps")
    return ExtractPath(alias, root, tuple(steps))


def parse_extract(extract: dict[str, str], *, reserved: frozenset[str]) -> list[ExtractPath]:
    if len(extract) > MAX_PATHS:
        raise ValueError(f"at most {MAX_PATHS} extract paths per request, got {len(extract)}")
    taken = sorted(set(extract) & reserved)
    if taken:
        raise ValueError(f"extract aliases cannot be thread fields: {taken}")
    return [parse_path(alias, path) for alias, path in extract.items()]
