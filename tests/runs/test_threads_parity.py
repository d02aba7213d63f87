"""Agent Server parity of threads as the official SDK calls them: search (ids, sort, select, extract) with
the pagination headers, count, copy, ttl, minimal updates. Malformed options and fields the server does
not serve answer 422 naming them; another tenant's ids answer 404 and never show up."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from langgraph_sdk.client import LangGraphClient
from langgraph_sdk.errors import ConflictError, NotFoundError

from chorus.agents.storage.database import Database
from chorus.graphs.checkpointer import ChorusCheckpointer
from chorus.runs.expiry import delete_expired_threads
from chorus.runs.threads_repository import ThreadRepository
from tests.conftest import RunningServer, make_tenant, slow_bot

ORDER = {"messages": [{"role": "user", "content": "Where is my order ORD-1001?"}]}


async def _threads(sdk: LangGraphClient, tag: str, n: int) -> list[str]:
    ids = []
    for i in range(n):
        ids.append((await sdk.threads.create(metadata={"suite": tag, "n": i}))["thread_id"])
        await asyncio.sleep(0.002)  # distinct created_at
    return ids


async def test_search_sorts_selects_extracts_and_pages(
    sdk: LangGraphClient, http: httpx.AsyncClient, assistant_id: str
) -> None:
    ids = await _threads(sdk, "page", 3)
    await sdk.runs.wait(ids[1], assistant_id, input=ORDER)
    oldest_first = await sdk.threads.search(metadata={"suite": "page"}, sort_by="created_at", sort_order="asc")
    assert [t["thread_id"] for t in oldest_first] == ids
    by_id = await sdk.threads.search(metadata={"suite": "page"}, sort_by="thread_id", sort_order="desc")
    assert [t["thread_id"] for t in by_id] == sorted(ids, reverse=True)
    touched = await sdk.threads.search(metadata={"suite": "page"}, sort_by="state_updated_at", sort_order="desc")
    assert touched[0]["thread_id"] == ids[1]  # the one with a run

    picked = await sdk.threads.search(ids=[ids[0], ids[2]], select=["thread_id", "metadata"], sort_order="asc")
    assert picked == [  # type: ignore[comparison-overlap]
        {"thread_id": ids[0], "metadata": {"suite": "page", "n": 0}},
        {"thread_id": ids[2], "metadata": {"suite": "page", "n": 2}},
    ]

    extracted = await sdk.threads.search(
        ids=[ids[1]],
        select=["thread_id"],
        extract={"n": "metadata.n", "answer": "values.messages[-1].content", "first": "values.messages[0].type"},
    )
    assert extracted[0]["extracted"]["n"] == 1
    assert "shipped" in extracted[0]["extracted"]["answer"]
    assert extracted[0]["extracted"]["first"] == "human"
    missing = await sdk.threads.search(ids=[ids[0]], extract={"nothing": "values.messages[5].content"})
    assert missing[0]["extracted"] == {"nothing": None}

    first = await http.post("/threads/search", json={"metadata": {"suite": "page"}, "limit": 2})
    assert first.headers["X-Pagination-Next"] == "2" and first.headers["X-Pagination-Total"] == "3"
    last = await http.post("/threads/search", json={"metadata": {"suite": "page"}, "limit": 2, "offset": 2})
    assert "X-Pagination-Next" not in last.headers and last.headers["X-Pagination-Total"] == "3"
    assert len(last.json()) == 1

    assert await sdk.threads.count(metadata={"suite": "page"}) == 3
    assert await sdk.threads.count(metadata={"suite": "page"}, values={"suggest_handoff": False}) == 1
    assert await sdk.threads.count(metadata={"suite": "page"}, status="busy") == 0


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"sort_by": "name"}, "$.sort_by"),
        ({"sort_order": "sideways"}, "$.sort_order"),
        ({"select": ["thread_id", "password"]}, "$.select[1]"),
        ({"select": []}, "$.select"),
        ({"extract": {"x": "values'); DROP TABLE threads; --"}}, "$.extract"),
        ({"extract": {"x": "secrets.key"}}, "$.extract"),
        ({"extract": {"x": "values.messages[one]"}}, "$.extract"),
        ({"extract": {"bad alias": "values.messages"}}, "$.extract"),
        ({"extract": {"values": "values.messages"}}, "$.extract"),
        ({"extract": {f"a{i}": "metadata.n" for i in range(11)}}, "$.extract"),
        ({"ids": ["not-a-uuid"]}, "$.ids[0]"),
        ({"limit": 0}, "$.limit"),
        ({"sort": "created_at"}, "$.sort"),
    ],
)
async def test_malformed_search_is_a_422_naming_the_field(
    http: httpx.AsyncClient, body: dict[str, Any], named: str
) -> None:
    answer = await http.post("/threads/search", json=body)
    assert answer.status_code == 422, answer.text
    assert named in [e["path"] for e in answer.json()["errors"]], answer.json()


async def test_another_tenants_threads_stay_out_of_search_and_copy(
    sdk: LangGraphClient, server: RunningServer, db: Database
) -> None:
    ours = (await sdk.threads.create(metadata={"suite": "private"}))["thread_id"]
    other = await make_tenant(db)
    async with httpx.AsyncClient(base_url=server.url, headers={"x-api-key": other.key}) as stranger:
        found = await stranger.post("/threads/search", json={"ids": [ours], "extract": {"m": "metadata.suite"}})
        assert found.status_code == 200 and found.json() == []
        assert (await stranger.post("/threads/count", json={"metadata": {"suite": "private"}})).json() == 0
        copied = await stranger.post(f"/threads/{ours}/copy")
        assert copied.status_code == 404 and ours in copied.json()["detail"]  # only the id it sent
    assert await sdk.threads.count(metadata={"suite": "private"}) == 1


async def test_copy_carries_metadata_and_every_checkpoint(sdk: LangGraphClient, assistant_id: str) -> None:
    source = (await sdk.threads.create(metadata={"customer": "c-1"}))["thread_id"]
    await sdk.runs.wait(source, assistant_id, input=ORDER)
    copy: Any = await sdk.threads.copy(source)
    assert copy["thread_id"] != source and copy["metadata"]["customer"] == "c-1"
    assert copy["status"] == "idle" and copy["assistant_id"] == assistant_id
    before = await sdk.threads.get_state(source)
    after = await sdk.threads.get_state(copy["thread_id"])
    assert after["values"] == before["values"] and after["checkpoint"]["thread_id"] == copy["thread_id"]
    assert len(await sdk.threads.get_history(copy["thread_id"], limit=100)) == len(
        await sdk.threads.get_history(source, limit=100)
    )
    # The copy goes on by itself: its next turn sees the copied history; the source is unchanged.
    more = {"messages": [{"role": "user", "content": "How do I return an item?"}]}
    final: Any = await sdk.runs.wait(copy["thread_id"], assistant_id, input=more)
    assert [m["type"] for m in final["messages"]].count("human") == 2
    assert (await sdk.threads.get_state(source))["values"] == before["values"]
    with pytest.raises(NotFoundError):
        await sdk.threads.copy("00000000-0000-0000-0000-000000000000")


async def test_copy_and_delete_wait_for_no_run_but_refuse_a_busy_thread(
    sdk: LangGraphClient, acme_config: dict[str, Any]
) -> None:
    slow = await sdk.assistants.create(graph_id="chatbot", context=slow_bot(acme_config, delay_ms=40))
    thread = (await sdk.threads.create())["thread_id"]
    run = await sdk.runs.create(thread, slow["assistant_id"], input=ORDER)
    with pytest.raises(ConflictError):
        await sdk.threads.copy(thread)
    await sdk.runs.join(thread, run["run_id"])
    assert (await sdk.threads.copy(thread))["thread_id"] != thread


async def test_ttl_on_create_and_update(
    sdk: LangGraphClient, http: httpx.AsyncClient, db: Database, assistant_id: str
) -> None:
    thread: Any = await sdk.threads.create(ttl=30)
    got: Any = await sdk.threads.get(thread["thread_id"], include=["ttl"])
    assert got["ttl"]["strategy"] == "delete" and got["ttl"]["ttl_minutes"] == 30
    expires = datetime.fromisoformat(got["ttl"]["expires_at"])
    assert timedelta(minutes=29) < expires - datetime.now(UTC) <= timedelta(minutes=30)

    updated: Any = await sdk.threads.update(
        thread["thread_id"], metadata={"k": 1}, ttl={"ttl": 5, "strategy": "delete"}
    )
    assert updated["metadata"] == {"k": 1}
    assert datetime.fromisoformat(updated["expires_at"]) - datetime.now(UTC) <= timedelta(minutes=5)
    # A run counts the thread's own ttl again from its end, not the server's.
    await sdk.runs.wait(thread["thread_id"], assistant_id, input=ORDER)
    after_run: Any = await sdk.threads.get(thread["thread_id"])
    assert (
        timedelta(minutes=4)
        < datetime.fromisoformat(after_run["expires_at"]) - datetime.now(UTC)
        <= timedelta(minutes=5)
    )
    assert (await sdk.threads.get(thread["thread_id"]))["metadata"]["k"] == 1
    assert "ttl" not in await sdk.threads.get(thread["thread_id"])

    # Expired threads go with the existing sweep.
    async with db.connection() as conn:
        await conn.execute(
            "UPDATE threads SET expires_at = now() - interval '1 minute' WHERE thread_id = %s", (thread["thread_id"],)
        )
    await delete_expired_threads(ThreadRepository(db, ttl_days=None), ChorusCheckpointer(db.pool))
    with pytest.raises(NotFoundError):
        await sdk.threads.get(thread["thread_id"])

    for ttl in ({"ttl": 10, "strategy": "keep_latest"}, {"ttl": -1}, {"strategy": "delete"}, {"ttl": 5, "x": 1}):
        refused = await http.post("/threads", json={"ttl": ttl})
        assert refused.status_code == 422 and refused.json()["errors"][0]["path"].startswith("$.ttl"), refused.text
    plain = (await sdk.threads.create())["thread_id"]
    bad_include = await http.get(f"/threads/{plain}", params={"include": "ttl,secrets"})
    assert bad_include.status_code == 422 and "secrets" in bad_include.json()["detail"]
    assert (await sdk.threads.get(plain, include=["ttl"]))["ttl"] is None  # type: ignore[typeddict-item]


async def test_update_with_return_minimal_and_graph_id(sdk: LangGraphClient, http: httpx.AsyncClient) -> None:
    thread = await sdk.threads.create(graph_id="chatbot", metadata={"a": 1})
    assert thread["metadata"] == {"a": 1, "graph_id": "chatbot"}
    assert await sdk.threads.update(thread["thread_id"], metadata={"b": 2}, return_minimal=True) is None
    assert (await sdk.threads.get(thread["thread_id"]))["metadata"] == {"a": 1, "graph_id": "chatbot", "b": 2}
    top_level = await http.post("/threads", json={"graph_id": "chatbot"})
    assert top_level.status_code == 200 and top_level.json()["metadata"] == {"graph_id": "chatbot"}


@pytest.mark.parametrize(
    ("method", "path", "body", "named"),
    [
        ("POST", "/threads", {"metadata": {}, "webhook": "https://example.com"}, "$.webhook"),
        ("POST", "/threads", {"thread_id": "not-a-uuid"}, "$.thread_id"),
        ("POST", "/threads", {"supersteps": [{"updates": [{"values": {}}]}]}, "$.supersteps[0].updates[0].as_node"),
        ("POST", "/threads/count", {"ids": []}, "$.ids"),
    ],
)
async def test_fields_not_served_are_refused_by_name(
    http: httpx.AsyncClient, method: str, path: str, body: dict[str, Any], named: str
) -> None:
    answer = await http.request(method, path, json=body)
    assert answer.status_code == 422, answer.text
    assert named in [e["path"] for e in answer.json()["errors"]], answer.json()
