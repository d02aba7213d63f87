"""Agent Server parity of assistants as the official SDK calls them: PATCH merges metadata (and sets the
description), search sorts, selects and pages (X-Pagination-Next, which the SDK's `response_format="object"`
reads), count, versions filtered by metadata. What Chorus does not serve is a 422 naming it."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from langgraph_sdk.client import LangGraphClient


@pytest.mark.parametrize(
    ("method", "path", "body", "named"),
    [
        ("POST", "/assistants/search", {"sort_by": "version"}, "$.sort_by"),
        ("POST", "/assistants/search", {"select": ["secret"]}, "$.select[0]"),
        ("POST", "/assistants/count", {"limit": 5}, "$.limit"),
        ("POST", "/assistants", {"graph_id": "chatbot", "config": {"recursion_limit": 5}}, "$.config.recursion_limit"),
        ("PATCH", "/assistants/00000000-0000-4000-8000-000000000000", {"tags": ["x"]}, "$.tags"),
    ],
)
async def test_fields_not_served_are_refused_by_name(
    http: httpx.AsyncClient, method: str, path: str, body: dict[str, Any], named: str
) -> None:
    answer = await http.request(method, path, json=body)
    assert answer.status_code == 422, answer.text
    assert named in [e["path"] for e in answer.json()["errors"]], answer.json()


async def test_assistant_patch_merges_metadata_and_search_sorts_and_selects(
    sdk: LangGraphClient, http: httpx.AsyncClient, acme_config: dict[str, Any]
) -> None:
    made = []
    for name in ("Charlie", "Alpha", "Bravo"):
        made.append(await sdk.assistants.create(graph_id="chatbot", context=acme_config, name=name, metadata={"a": 1}))
    patched = await sdk.assistants.update(made[0]["assistant_id"], metadata={"b": 2}, description="Front desk")
    assert patched["metadata"] == {"a": 1, "b": 2} and patched["description"] == "Front desk"
    assert patched["version"] == 2 and patched["context"]["system_prompt"] == made[0]["context"]["system_prompt"]
    versions = await sdk.assistants.get_versions(made[0]["assistant_id"], metadata={"b": 2})
    assert [v["version"] for v in versions] == [2]

    by_name = await sdk.assistants.search(sort_by="name", sort_order="asc", select=["name", "version"])
    assert by_name == [  # type: ignore[comparison-overlap]
        {"name": "Alpha", "version": 1},
        {"name": "Bravo", "version": 1},
        {"name": "Charlie", "version": 2},
    ]
    page: Any = await sdk.assistants.search(limit=2, sort_by="created_at", response_format="object")
    assert len(page["assistants"]) == 2 and page["next"] == "2"
    rest: Any = await sdk.assistants.search(limit=2, offset=2, response_format="object")
    assert len(rest["assistants"]) == 1 and rest["next"] is None
    assert await sdk.assistants.count(metadata={"b": 2}) == 1
    assert await sdk.assistants.count(name="a") == 3  # Charlie, Alpha, Bravo
    assert await sdk.assistants.count(name="%") == 0  # a wildcard is a character like any other

    wrong_kind = await http.patch(f"/assistants/{made[1]['assistant_id']}", json={"graph_id": "voicebot"})
    assert wrong_kind.status_code == 422 and wrong_kind.json()["errors"][0]["path"] == "$.graph_id"
