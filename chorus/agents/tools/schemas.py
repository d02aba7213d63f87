"""Tool input schemas: JSON Schema as given, or the seed's shorthand {"field": "type"}."""

from __future__ import annotations

from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

_SHORTHAND_TYPES = {"string", "number", "integer", "boolean", "array", "object"}
_SCHEMA_KEYWORDS = {"type", "properties", "$schema", "$ref", "anyOf", "oneOf", "allOf"}


class InvalidToolSchema(ValueError):
    pass


def is_shorthand(schema: dict[str, Any]) -> bool:
    return bool(schema) and not (_SCHEMA_KEYWORDS & schema.keys()) and all(isinstance(v, str) for v in schema.values())


def normalize_input_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """Return a JSON Schema object for the tool arguments; raise InvalidToolSchema saying why not."""
    if not schema:
        return {"type": "object", "properties": {}, "additionalProperties": False}
    if is_shorthand(schema):
        props: dict[str, Any] = {}
        for field, typ in schema.items():
            base = typ.rstrip("?")
            if base not in _SHORTHAND_TYPES:
                raise InvalidToolSchema(
                    f"field '{field}' has type '{typ}'; use one of {sorted(_SHORTHAND_TYPES)} "
                    "(suffix '?' marks it optional)"
                )
            props[field] = {"type": base}
        required = [f for f, t in schema.items() if not t.endswith("?")]
        return {"type": "object", "properties": props, "required": required, "additionalProperties": False}
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        raise InvalidToolSchema(f"not a valid JSON Schema: {exc.message}") from exc
    if schema.get("type") != "object":
        raise InvalidToolSchema('tool arguments must be an object: set "type": "object"')
    return schema


def argument_errors(schema: dict[str, Any], arguments: Any) -> list[dict[str, str]]:
    """Every way `arguments` breaks `schema`, each with its JSON path."""
    validator = Draft202012Validator(schema)
    errors = []
    for err in sorted(validator.iter_errors(arguments), key=lambda e: list(e.absolute_path)):
        path = "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err.absolute_path)
        errors.append({"path": path, "message": err.message})
    return errors
