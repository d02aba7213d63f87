"""The OpenAPI document, told truthfully: how each operation authenticates (an API key, or the widget's
publishable key / visitor token), the error shape every failure answers with (not FastAPI's default), the
statuses an operation can answer, and streams as `text/event-stream`."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

PUBLIC = frozenset({"/health", "/info", "/metrics"})
KEY_ROUTES = frozenset({"/widget/v1/config", "/widget/v1/session"})  # the publishable key itself
# Operations that name an assistant, a thread or a run in their body or query (not their path): it can
# be not found.
NAMES_AN_ID = frozenset(
    {
        ("post", "/threads"),  # supersteps run on the assistant named by metadata.graph_id
        ("post", "/runs/stream"),
        ("post", "/runs/wait"),
        ("post", "/runs/batch"),
        ("post", "/runs/cancel"),
        ("post", "/runs/crons"),
        ("post", "/runs/crons/search"),
        ("post", "/runs/crons/count"),
        ("get", "/widget/v1/config"),
        ("post", "/widget/v1/threads"),
    }
)
_ERROR_REF = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error", "detail"],
    "properties": {
        "error": {"type": "string", "description": "a stable code, e.g. `thread_not_found`, `invalid_input`"},
        "detail": {"type": "string", "description": "what is wrong and how to fix it"},
        "errors": {
            "type": "array",
            "description": "for invalid input: each problem with its JSON path",
            "items": {
                "type": "object",
                "properties": {"path": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
}
SECURITY_SCHEMES = {
    "ApiKey": {"type": "apiKey", "in": "header", "name": "X-Api-Key", "description": "a tenant's API key"},
    "PublishableKey": {
        "type": "apiKey",
        "in": "header",
        "name": "X-Publishable-Key",
        "description": "a widget's publishable key (only the widget API)",
    },
    "VisitorToken": {"type": "http", "scheme": "bearer", "description": "a widget visitor's token"},
}


def _statuses(path: str, method: str, op: dict[str, Any]) -> dict[str, str]:
    out = {
        "401": "no key, or an unknown, revoked or expired one",
        "403": "the key may not do this (its role, its bots, its origin)",
        "422": "invalid input: `errors` names each problem's JSON path",
        "429": "rate limited: retry after `Retry-After` seconds",
        "503": "the database is unavailable or the server busy: retry after `Retry-After` seconds",
    }
    if "multipart/form-data" in op.get("requestBody", {}).get("content", {}):
        out["400"] = "the multipart body cannot be parsed"
    if "{" in path or (method, path) in NAMES_AN_ID:
        out["404"] = "not found (another tenant's ids are not found either)"
    if method in ("post", "put", "patch", "delete"):
        out["409"] = "the resource's current state forbids it (e.g. a run is active on the thread)"
    if method in ("post", "put", "patch"):
        out["413"] = "the body is larger than the server accepts"
    return out


def _documented(schema: dict[str, Any]) -> dict[str, Any]:
    """A route that answers with the dicts it builds (not validated, see docs/decisions.md) documents its model
    in `responses=`; FastAPI merges that model into the open object of the return annotation. The model wins."""
    if "$ref" in schema:
        return {"$ref": schema["$ref"]}
    items = schema.get("items")
    if schema.get("type") == "array" and isinstance(items, dict) and "$ref" in items:
        return {"type": "array", "items": {"$ref": items["$ref"]}}
    return schema


def describe(doc: dict[str, Any]) -> dict[str, Any]:
    """Add security, error responses and stream content types to a generated document (in place)."""
    components = doc.setdefault("components", {})
    components.setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    components["securitySchemes"] = SECURITY_SCHEMES
    for path, operations in doc.get("paths", {}).items():
        for method, op in operations.items():
            if path in PUBLIC:
                op["security"] = []
                continue
            if path.startswith("/widget/"):
                op["security"] = [{"PublishableKey": []}] if path in KEY_ROUTES else [{"VisitorToken": []}]
            else:
                op["security"] = [{"ApiKey": []}]
            responses = op.setdefault("responses", {})
            for code, response in responses.items():
                json_body = response.get("content", {}).get("application/json")
                if code.startswith("2") and json_body and "schema" in json_body:
                    json_body["schema"] = _documented(json_body["schema"])
            for code, description in _statuses(path, method, op).items():
                responses[code] = {"description": description, "content": _ERROR_REF}
            if path.endswith("/stream"):
                responses["200"] = {
                    "description": "server-sent events: `metadata`, then the run's events (each with an `id` to "
                    "resume from with `Last-Event-ID`) until the run ends",
                    "content": {"text/event-stream": {"schema": {"type": "string"}}},
                }
    schemas = components["schemas"]
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    return doc


def install(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = describe(
                get_openapi(
                    title=app.title,
                    version=app.version,
                    summary=app.summary,
                    description=app.description,
                    routes=app.routes,
                )
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to customise the document
