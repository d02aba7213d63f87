"""Bad input to the store answers a 422 naming the field (never a 500), and nothing is written."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

GOOD = {"namespace": ["a"], "key": "k", "value": {"x": 1}}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"namespace": []}, "$.namespace"),
        ({"namespace": "a"}, "$.namespace"),
        ({"namespace": ["a.b"]}, "$.namespace[0]"),
        ({"namespace": [""]}, "$.namespace[0]"),
        ({"namespace": ["a\u0000"]}, "$.namespace[0]"),
        ({"namespace": ["n"] * 11}, "$.namespace"),
        ({"namespace": ["x" * 129]}, "$.namespace[0]"),
        ({"key": ""}, "$.key"),
        ({"key": "k" * 513}, "$.key"),
        ({"key": "a\u0000b"}, "$.key"),
        ({"value": [1, 2]}, "$.value"),
        ({"value": "text"}, "$.value"),
        ({"ttl": 0}, "$.ttl"),
        ({"ttl": -5}, "$.ttl"),
        ({"ttl": 1.5}, "$.ttl"),
        ({"ttl": "10"}, "$.ttl"),
        ({"ttl": 10**9}, "$.ttl"),
        ({"index": True}, "$.index"),
        ({"index": []}, "$.index"),
        ({"index": [""]}, "$.index"),
        ({"surprise": 1}, "$.surprise"),
    ],
)
async def test_bad_put_names_the_field(http: httpx.AsyncClient, change: dict[str, Any], field: str) -> None:
    response = await http.put("/store/items", json={**GOOD, **change})
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"] == "invalid_input"
    assert any(e["path"].startswith(field) for e in body["errors"]), body
    assert (await http.post("/store/items/search", json={})).json()["items"] == []


async def test_an_index_field_the_value_lacks_stores_the_item_unindexed(http: httpx.AsyncClient) -> None:
    response = await http.put("/store/items", json={**GOOD, "value": {"tags": ["a"]}, "index": ["tags[x]", "nope"]})
    assert response.status_code == 204, response.text
    assert [i["key"] for i in (await http.post("/store/items/search", json={})).json()["items"]] == ["k"]
    assert (await http.post("/store/items/search", json={"query": "a"})).json()["items"] == []


async def test_a_value_postgres_cannot_store_is_a_422(http: httpx.AsyncClient) -> None:
    response = await http.put("/store/items", json={**GOOD, "value": {"text": "nul \u0000 inside"}})
    assert response.status_code == 422, response.text


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"namespace": "", "key": "k"}, "cannot be empty"),
        ({"namespace": "a..b", "key": "k"}, "cannot be empty"),
        ({"namespace": ".".join(["n"] * 11), "key": "k"}, "at most 10 labels"),
        ({"namespace": "a", "key": ""}, "at least 1 character"),
        ({"namespace": "a", "key": "k", "refresh_ttl": "sometimes"}, "boolean"),
        ({"key": "k"}, "Field required"),
    ],
)
async def test_bad_get_names_the_parameter(http: httpx.AsyncClient, params: dict[str, str], message: str) -> None:
    response = await http.get("/store/items", params=params)
    assert response.status_code == 422, response.text
    body = response.json()
    assert message in body["detail"] and body["errors"][0]["path"].startswith("$.query."), body


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"namespace_prefix": ["a.b"]}, "$.namespace_prefix[0]"),
        ({"limit": 0}, "$.limit"),
        ({"limit": 1001}, "$.limit"),
        ({"offset": -1}, "$.offset"),
        ({"query": ""}, "$.query"),
        ({"query": "q" * 2001}, "$.query"),
        ({"filter": {"stars": {"$regex": ".*"}}}, "$.filter"),
        ({"filter": {"stars": {}}}, "$.filter"),
        ({"filter": {"": 1}}, "$.filter"),
        ({"filter": ["a"]}, "$.filter"),
        ({"refresh_ttl": "yes please"}, "$.refresh_ttl"),
    ],
)
async def test_bad_search_names_the_field(http: httpx.AsyncClient, body: dict[str, Any], field: str) -> None:
    response = await http.post("/store/items/search", json=body)
    assert response.status_code == 422, response.text
    assert any(e["path"].startswith(field) for e in response.json()["errors"]), response.json()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"prefix": ["a.b"]}, "$.prefix[0]"),
        ({"suffix": [""]}, "$.suffix[0]"),
        ({"max_depth": 0}, "$.max_depth"),
        ({"max_depth": 11}, "$.max_depth"),
        ({"limit": 0}, "$.limit"),
        ({"offset": 10**9}, "$.offset"),
    ],
)
async def test_bad_namespace_listing_names_the_field(http: httpx.AsyncClient, body: dict[str, Any], field: str) -> None:
    response = await http.post("/store/namespaces", json=body)
    assert response.status_code == 422, response.text
    assert any(e["path"].startswith(field) for e in response.json()["errors"]), response.json()


async def test_bad_delete_names_the_field(http: httpx.AsyncClient) -> None:
    response = await http.request("DELETE", "/store/items", json={"namespace": ["a.b"], "key": "k"})
    assert response.status_code == 422 and response.json()["errors"][0]["path"] == "$.namespace[0]"
    response = await http.request("DELETE", "/store/items")
    assert response.status_code == 422, response.text


async def test_a_value_over_the_body_limit_is_a_413(http: httpx.AsyncClient) -> None:
    response = await http.put("/store/items", json={**GOOD, "value": {"text": "x" * 300_000}})
    assert response.status_code == 413, response.text
