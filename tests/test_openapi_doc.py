"""The OpenAPI document tells the truth: every operation says how it authenticates, errors have Chorus's
shape (and real error bodies match it), streams are `text/event-stream`, ids can be not found."""

from __future__ import annotations

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
