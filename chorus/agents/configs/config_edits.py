"""The edits of the config editor chat (config_chat.py): what a person asks for, in terms a model can produce
(set a path, scale a number, set the greeting, add or remove a tool), applied to a copy of a config. The
propose_change tool's input schema is `ProposeArguments`'s. Pure functions: no I/O."""

from __future__ import annotations

import copy
import difflib
import json
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from chorus.agents.errors import InvalidInput

_PATH = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*){0,7}$"

Confidence = Annotated[float | None, Field(default=None, ge=0, le=1, description="How sure the request means this")]
DottedPath = Annotated[str, Field(pattern=_PATH, description="A dotted path, e.g. llm_config.parameters.temperature")]


class _Edit(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SetValue(_Edit):
    """Set a value at a dotted path (null removes it)."""

    op: Literal["set"]
    path: DottedPath
    value: Any = None
    confidence: Confidence = None


class ScaleValue(_Edit):
    """Multiply a number at a path (speak 20% slower: factor 0.8); `default` when it has no value yet."""

    op: Literal["scale"]
    path: DottedPath
    factor: Annotated[float, Field(gt=0, le=10)]
    default: float | None = None
    confidence: Confidence = None


class SetGreeting(_Edit):
    """The first message; also the widget's greeting when the config sets one of its own."""

    op: Literal["set_greeting"]
    text: Annotated[str, Field(min_length=1, max_length=1000)]
    confidence: Confidence = None


class AddTool(_Edit):
    """Bind a tool of the catalogue (the built-ins, and the config's own tools_needed) to the bot."""

    op: Literal["add_tool"]
    tool_name: Annotated[str, Field(min_length=1, max_length=64)]
    confidence: Confidence = None


class RemoveTool(_Edit):
    op: Literal["remove_tool"]
    tool_name: Annotated[str, Field(min_length=1, max_length=64)]
    confidence: Confidence = None


Edit = Annotated[SetValue | ScaleValue | SetGreeting | AddTool | RemoveTool, Field(discriminator="op")]
_EDITS: TypeAdapter[list[Edit]] = TypeAdapter(list[Edit])


class ProposeArguments(BaseModel):
    """The arguments of the propose_change tool (its JSON Schema is the tool's input schema)."""

    model_config = ConfigDict(extra="forbid")
    edits: Annotated[list[Edit], Field(min_length=1, max_length=20, description="The changes, applied in order")]
    summary: Annotated[str | None, Field(default=None, max_length=500, description="What the person asked")] = None


def parse_edits(raw: Any) -> list[Edit]:
    try:
        return _EDITS.validate_python(raw)
    except ValidationError as exc:
        errors = [
            {
                "path": "$.edits" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in e["loc"]),
                "message": e["msg"],
            }
            for e in exc.errors()
        ]
        raise InvalidInput(
            "the edits are not valid; each is one of set, scale, set_greeting, add_tool, remove_tool", errors=errors
        ) from None


def _suggest(name: str, names: list[str]) -> list[str]:
    words = [w for w in re.split(r"[\s_-]+", name.lower()) if w]
    containing = [n for n in names if words and all(w in n.lower() for w in words)]
    close = difflib.get_close_matches(name.lower().replace(" ", "_"), names, n=3, cutoff=0.5)
    return list(dict.fromkeys([*containing, *close]))[:5]


def resolve_tool(name: str, names: list[str], *, what: str) -> tuple[str, bool]:
    """The tool `name` stands for among `names`, and whether it was exact; InvalidInput with a "did you mean"
    when it names none of them or several."""
    wanted = name.strip().lower().replace(" ", "_").replace("-", "_")
    if wanted in names:
        return wanted, True
    suggestions = _suggest(name, names)
    containing = [n for n in names if all(w in n for w in wanted.split("_") if w)]
    if len(containing) == 1:
        return containing[0], False
    hint = f"; did you mean {' or '.join(repr(s) for s in suggestions)}?" if suggestions else ""
    raise InvalidInput(
        f"there is no tool '{name}' {what}{hint} The tools are: {', '.join(names) or 'none'}",
        errors=[{"path": "$.tool_name", "message": "unknown tool", "suggestions": suggestions}],
    )


def _parent(doc: dict[str, Any], path: str, *, create: bool) -> tuple[dict[str, Any] | None, str]:
    parts = path.split(".")
    node: Any = doc
    for i, part in enumerate(parts[:-1]):
        nxt = node.get(part)
        if nxt is None:
            if not create:
                return None, parts[-1]
            nxt = node[part] = {}
        if not isinstance(nxt, dict):
            where = ".".join(parts[: i + 1])
            raise InvalidInput(
                f"'{where}' is not an object, so '{path}' cannot be set inside it; set '{where}' whole instead",
                errors=[{"path": f"$.{where}", "message": "not an object"}],
            )
        node = nxt
    return node, parts[-1]


def apply_edit(doc: dict[str, Any], edit: Edit, catalogue: list[str]) -> tuple[str, bool]:
    """Apply one edit to `doc` in place; the path it touched and whether a tool name was resolved exactly."""
    if isinstance(edit, SetValue):
        parent, key = _parent(doc, edit.path, create=edit.value is not None)
        if parent is not None:
            if edit.value is None:
                parent.pop(key, None)
            else:
                parent[key] = copy.deepcopy(edit.value)
        return edit.path, True
    if isinstance(edit, ScaleValue):
        parent, key = _parent(doc, edit.path, create=True)
        assert parent is not None
        current = parent.get(key, edit.default)
        if isinstance(current, bool) or not isinstance(current, int | float):
            raise InvalidInput(
                f"'{edit.path}' has no number to scale (it is {json.dumps(current)}); set it to a value instead",
                errors=[{"path": f"$.{edit.path}", "message": "not a number"}],
            )
        parent[key] = round(current * edit.factor, 2)
        return edit.path, True
    if isinstance(edit, SetGreeting):
        doc["first_message"] = edit.text
        webchat = doc.get("webchat")
        if isinstance(webchat, dict) and webchat.get("greeting"):
            webchat["greeting"] = edit.text
        return "first_message", True
    tools = doc.setdefault("tools_available", [])
    if isinstance(edit, AddTool):
        name, exact = resolve_tool(edit.tool_name, catalogue, what="in the catalogue")
        entry = next((t for t in tools if isinstance(t, dict) and t.get("tool_name") == name), None)
        if entry is not None and entry.get("status") == "implemented":
            raise InvalidInput(
                f"the bot already has the tool '{name}'", errors=[{"path": "$.tool_name", "message": "already bound"}]
            )
        if entry is not None:
            entry["status"] = "implemented"
        else:
            tools.append({"tool_name": name, "status": "implemented"})
        return "tools_available", exact
    bound = [t["tool_name"] for t in tools if isinstance(t, dict) and isinstance(t.get("tool_name"), str)]
    name, exact = resolve_tool(edit.tool_name, bound, what="on this bot")
    doc["tools_available"] = [t for t in tools if not (isinstance(t, dict) and t.get("tool_name") == name)]
    return "tools_available", exact


def merge_patch_between(old: Any, new: Any) -> Any:
    """The JSON merge patch (RFC 7396) that turns `old` into `new` (lists are replaced whole)."""
    if not isinstance(old, dict) or not isinstance(new, dict):
        return copy.deepcopy(new)
    patch: dict[str, Any] = {k: None for k in old if k not in new}
    for key, value in new.items():
        if key not in old:
            patch[key] = copy.deepcopy(value)
        elif old[key] != value:
            patch[key] = merge_patch_between(old[key], value)
    return patch
