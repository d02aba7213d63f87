"""The OpenAPI document tells the truth: every operation says how it authenticates, errors have Chorus's
shape (and real error bodies match it), streams are `text/event-stream`, ids can be not found."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx
import jsonschema

from tests.conftest import RunningServer


async def _doc(server: RunningServer) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=server.url) as client:
        doc: dict[str, Any] = (await client.get("/openapi.json")).json()
    return doc


async def test_every_operation_says_how_it_authenticates_and_how_it_fails(server: RunningServer) -> None:
    doc = await _doc(server)
    assert set(doc["components"]["securitySchemes"]) == {"ApiKey", "PublishableKey", "VisitorToken"}
    for path, operations in doc["paths"].items():
        for method, op in operations.items():
            where = f"{method.upper()} {path}"
            if path in ("/health", "/info", "/metrics"):
                assert op["security"] == [], where
                continue
            assert op["security"], where
            for code in ("401", "403", "422", "429", "503"):
                assert op["responses"][code]["content"]["application/json"]["schema"] == {
                    "$ref": "#/components/schemas/Error"
                }, (where, code)
            if "{" in path:
                assert "404" in op["responses"], where
            if path.endswith("/stream"):
                assert list(op["responses"]["200"]["content"]) == ["text/event-stream"], where
    assert "HTTPValidationError" not in str(doc)  # FastAPI's error shape is not what Chorus answers


async def test_real_error_bodies_match_the_documented_shape(
    server: RunningServer, http: httpx.AsyncClient, assistant_id: str
) -> None:
    schema = (await _doc(server))["components"]["schemas"]["Error"]
    thread = (await http.post("/threads", json={})).json()["thread_id"]
    bodies = [
        (await http.post(f"/threads/{thread}/runs", json={"assistant_id": assistant_id, "stream_mode": "x"})).json(),
        (await http.get("/threads/00000000-0000-0000-0000-000000000000")).json(),
        (await http.get("/threads", headers={"x-api-key": "chorus_wrong"})).json(),
    ]
    for body in bodies:
        jsonschema.validate(body, schema)


AGENT_SERVER = ("/assistants", "/threads", "/runs", "/store", "/widget/", "/info", "/health")
# What a client of each resource reads (the Agent Server's names, from langgraph_sdk.schema), and more.
RESOURCES = {
    "Assistant": {"assistant_id", "graph_id", "config", "context", "metadata", "version", "name", "created_at"},
    "Thread": {"thread_id", "created_at", "updated_at", "metadata", "status", "values", "interrupts"},
    "ThreadState": {"values", "next", "checkpoint", "metadata", "created_at", "parent_checkpoint", "tasks"},
    "Run": {"run_id", "thread_id", "assistant_id", "created_at", "updated_at", "status", "metadata"},
    "Cron": {"cron_id", "assistant_id", "thread_id", "schedule", "payload", "next_run_date", "end_time", "user_id"},
    "Item": {"namespace", "key", "value", "created_at", "updated_at"},
    "SearchItem": {"namespace", "key", "value", "created_at", "updated_at", "score"},
    "Checkpoint": {"thread_id", "checkpoint_ns", "checkpoint_id"},
}


def _names_its_shape(schema: dict[str, Any]) -> bool:
    """A named component, a list of them, a choice among them, or a plain count; never an anonymous object."""
    if "$ref" in schema or schema.get("type") in ("integer", "string"):
        return True
    if schema.get("type") == "array":
        return _names_its_shape(schema["items"])
    return bool(schema.get("anyOf")) and all(_names_its_shape(s) for s in schema["anyOf"])


async def test_every_success_answer_names_its_schema(server: RunningServer) -> None:
    doc = await _doc(server)
    checked = 0
    for path, operations in doc["paths"].items():
        if not path.startswith(AGENT_SERVER):
            continue
        for method, op in operations.items():
            for code, response in op["responses"].items():
                body = response.get("content", {}).get("application/json")
                if code.startswith("2") and body is not None:
                    assert _names_its_shape(body["schema"]), (method.upper(), path, code, body["schema"])
                    checked += 1
            if method in ("post", "put", "patch", "delete"):
                assert "409" in op["responses"] or path in ("/health", "/info"), (method, path)
    assert checked > 40
    schemas = doc["components"]["schemas"]
    for name, fields in RESOURCES.items():
        assert fields <= set(schemas[name]["properties"]), name
        assert fields - {"score"} <= set(schemas[name]["required"]), name
    # Nullability as sent: a thread's assistant is null until its first run, a run's error until it fails.
    assert {"type": "null"} in schemas["Thread"]["properties"]["assistant_id"]["anyOf"]
    assert {"type": "null"} in schemas["Run"]["properties"]["error"]["anyOf"]
    assert schemas["Run"]["properties"]["created_at"] == {
        "type": "string",
        "format": "date-time",
        "title": "Created At",
    }
    # Statuses that no id in the path announces: an assistant, thread or run named in a body can be not
    # found; a multipart body can be unreadable.
    for path in ("/runs/wait", "/runs/crons", "/runs/batch", "/runs/cancel", "/runs/crons/search"):
        assert "404" in doc["paths"][path]["post"]["responses"], path
    assert "400" in doc["paths"]["/api/v1/rag/ingest/file"]["post"]["responses"]
    assert "503" in doc["paths"]["/health"]["get"]["responses"]


def _validator(doc: dict[str, Any], method: str, path: str) -> jsonschema.Validator:
    schema = doc["paths"][path][method]["responses"]["200"]["content"]["application/json"]["schema"]
    return jsonschema.Draft202012Validator(
        {**schema, "components": doc["components"]}, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


async def test_real_answers_match_their_documented_schemas(
    server: RunningServer, http: httpx.AsyncClient, assistant_id: str
) -> None:
    doc = await _doc(server)

    async def check(method: str, path: str, template: str, **kwargs: Any) -> Any:
        response = await http.request(method, path, **kwargs)
        assert response.status_code == 200, (path, response.text)
        body = response.json()
        _validator(doc, method.lower(), template).validate(body)
        return body

    T, R = "/threads/{thread_id}", "/threads/{thread_id}/runs/{run_id}"
    await check("POST", "/assistants/search", "/assistants/search", json={"limit": 2})
    await check("GET", f"/assistants/{assistant_id}", "/assistants/{assistant_id}")
    thread = await check("POST", "/threads", "/threads", json={"metadata": {"who": "doc"}})
    tid = thread["thread_id"]
    assert thread["assistant_id"] is None and thread["values"] == {}
    await check("GET", f"/threads/{tid}/state", f"{T}/state")  # before any run: the empty state
    with_ttl = await check("GET", f"/threads/{tid}", T, params={"include": "ttl"})
    assert "ttl" in with_ttl and "extracted" not in with_ttl  # a field sent only sometimes stays out otherwise
    question = {"messages": [{"role": "user", "content": "Where is my order ORD-1001?"}]}
    run = await check(
        "POST", f"/threads/{tid}/runs", f"{T}/runs", json={"assistant_id": assistant_id, "input": question}
    )
    assert datetime.fromisoformat(run["created_at"]).tzinfo is not None  # times: ISO 8601 with their offset
    output = await check("GET", f"/threads/{tid}/runs/{run['run_id']}/join", f"{R}/join")
    assert output["messages"]
    await check("GET", f"/threads/{tid}/runs/{run['run_id']}", R)
    await check("GET", f"/threads/{tid}/runs", f"{T}/runs")
    state = await check("GET", f"/threads/{tid}/state", f"{T}/state")
    assert state["values"]["messages"] == output["messages"]
    await check("POST", f"/threads/{tid}/history", f"{T}/history", json={"limit": 3})
    await check("GET", f"/threads/{tid}", T)
    await check("POST", "/threads/search", "/threads/search", json={"ids": [tid]})
    cron = {"assistant_id": assistant_id, "schedule": "0 9 * * *", "input": question}
    await check("POST", "/runs/crons", "/runs/crons", json=cron)
    await check("POST", "/runs/crons/search", "/runs/crons/search", json={"assistant_id": assistant_id})
    item = {"namespace": ["docs", "openapi"], "key": "k1", "value": {"text": "hello"}}
    assert (await http.put("/store/items", json=item)).status_code == 204
    got = await check("GET", "/store/items", "/store/items", params={"namespace": "docs.openapi", "key": "k1"})
    assert got["value"] == {"text": "hello"}
    await check("POST", "/store/items/search", "/store/items/search", json={"namespace_prefix": ["docs"]})
    await check("GET", "/info", "/info")
