"""What changed between two versions of a bot config: an RFC 6902 JSON Patch (made by `jsonpatch`) and the
seed's dotted-path map, `{"voice_settings.speed": {"old": 1.0, "new": 0.8}}`.

Lists whose items are named (tools by `tool_name`, integrations by `integration_name`, transfer
destinations by `name`) are compared by that name, so reordering them is not a change; the version number
Chorus stamps into `config_metadata` is not part of a config's content and is never a change either.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import jsonpatch
from jsonpointer import JsonPointer

# The lists compared by a key, by their path from the config's root, and that key.
KEYED_LISTS: dict[tuple[str, ...], str] = {
    ("tools_available",): "tool_name",
    ("tools_needed",): "tool_name",
    ("integrations",): "integration_name",
    ("integrations_needed",): "integration_name",
    ("workflow_features", "call_transfer", "transfer_destinations"): "name",
}


Path = tuple[str, ...]


@dataclass(frozen=True)
class ConfigDiff:
    """`patch` turns the older config into the newer (reordered named lists aside); `changes` says the same
    per field, keyed by a readable path: `tools_needed[lookup_order].http.url`, `system_prompt.constraints[1]`."""

    patch: list[dict[str, Any]]
    changes: dict[str, dict[str, Any]]

    @property
    def changed(self) -> bool:
        return bool(self.patch)


def diff_configs(old: dict[str, Any], new: dict[str, Any]) -> ConfigDiff:
    """`jsonpatch` compares the two with each named list turned into an object keyed by the names (so an
    item is matched by name, wherever it stands); its operations are then put back into list indices."""
    before, after = content(old), content(new)
    keyed = {p: k for p, k in KEYED_LISTS.items() if _keyed(_at(before, p), k) and _keyed(_at(after, p), k)}
    by_name = jsonpatch.make_patch(_by_name(before, keyed), _by_name(after, keyed)).patch
    return _translate(before, by_name, keyed)


def same_content(old: dict[str, Any], new: dict[str, Any]) -> bool:
    return not diff_configs(old, new).changed


def content(config: dict[str, Any]) -> dict[str, Any]:
    """The config without the version number Chorus stamps into it."""
    meta = config.get("config_metadata")
    if not isinstance(meta, dict) or "version" not in meta:
        return config
    return {**config, "config_metadata": {k: v for k, v in meta.items() if k != "version"}}


def _at(doc: Any, path: Path) -> Any:
    for part in path:
        doc = doc.get(part) if isinstance(doc, dict) else None
    return doc


def _keyed(items: Any, key: str) -> bool:
    """Whether `items` is a list whose items each carry a distinct `key` (a list that is not is compared by
    position, as any other)."""
    if not isinstance(items, list) or not all(isinstance(i, dict) and isinstance(i.get(key), str) for i in items):
        return False
    return len({i[key] for i in items}) == len(items)


def _by_name(value: Any, keyed: dict[Path, str], path: Path = ()) -> Any:
    if path in keyed and isinstance(value, list):
        return {item[keyed[path]]: _by_name(item, keyed, (*path, item[keyed[path]])) for item in value}
    if isinstance(value, dict):
        return {k: _by_name(v, keyed, (*path, k)) for k, v in value.items()}
    return value


def _as_lists(value: Any, keyed: dict[Path, str], path: Path) -> Any:
    """A value of the by-name form (at `path`) in the config's own form."""
    if path in keyed and isinstance(value, dict):
        return [_as_lists(v, keyed, (*path, k)) for k, v in value.items()]
    if isinstance(value, dict):
        return {k: _as_lists(v, keyed, (*path, k)) for k, v in value.items()}
    return copy.deepcopy(value)


def _simple(op: dict[str, Any], doc: Any) -> list[dict[str, Any]]:
    """A move as a remove and an add, a copy as an add: each operation then changes one place."""
    if op["op"] == "move":
        value = JsonPointer(op["from"]).resolve(doc)
        return [{"op": "remove", "path": op["from"]}, {"op": "add", "path": op["path"], "value": value}]
    if op["op"] == "copy":
        return [{"op": "add", "path": op["path"], "value": JsonPointer(op["from"]).resolve(doc)}]
    return [op] if op["op"] in ("add", "remove", "replace") else []


def _place(doc: Any, parts: list[str], keyed: dict[Path, str]) -> tuple[str, str]:
    """A by-name path as a JSON Pointer into `doc` (a name in a named list: its index, or `-` to append)
    and as the readable path of the dotted map."""
    pointer: list[str] = []
    readable = ""
    node = doc
    for i, part in enumerate(parts):
        here = tuple(parts[:i])
        if isinstance(node, list) and here in keyed:
            index = next((n for n, item in enumerate(node) if item.get(keyed[here]) == part), None)
            pointer.append("-" if index is None else str(index))
            readable += f"[{part}]"
            node = None if index is None else node[index]
        elif isinstance(node, list):
            pointer.append(part)
            readable += f"[{part}]"
            node = node[int(part)] if part.isdigit() and int(part) < len(node) else None
        else:
            pointer.append(part)
            readable += f".{part}" if readable else part
            node = node.get(part) if isinstance(node, dict) else None
    return JsonPointer.from_parts(pointer).path, readable


def _translate(before: dict[str, Any], by_name: list[dict[str, Any]], keyed: dict[Path, str]) -> ConfigDiff:
    """The by-name operations, one at a time, as operations on the config itself and as the dotted map
    (indices refer to the document as the operations before have left it)."""
    doc, named = copy.deepcopy(before), _by_name(before, keyed)
    patch: list[dict[str, Any]] = []
    changes: dict[str, dict[str, Any]] = {}
    for each in by_name:
        for op in _simple(each, named):
            parts = JsonPointer(op["path"]).parts
            path = tuple(parts)
            pointer, readable = _place(doc, parts, keyed)
            parent = JsonPointer.from_parts(parts[:-1]).resolve(named)
            had = op["op"] != "add" or (isinstance(parent, dict) and parts[-1] in parent)
            old = _as_lists(JsonPointer(op["path"]).resolve(named), keyed, path) if had else None
            new = None if op["op"] == "remove" else _as_lists(op["value"], keyed, path)
            real = {"op": op["op"], "path": pointer} | ({} if op["op"] == "remove" else {"value": new})
            patch.append(real)
            doc = jsonpatch.apply_patch(doc, [real])
            named = jsonpatch.apply_patch(named, [op])
            if readable in changes:
                changes[readable]["new"] = new  # touched twice: its first old value, its last new one
            else:
                changes[readable] = {"old": old, "new": new}
    return ConfigDiff(patch, {k: v for k, v in changes.items() if v["old"] != v["new"]})
