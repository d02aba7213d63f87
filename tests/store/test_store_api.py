"""The store through the official Python SDK: put, get, delete, search (by filter and by meaning), list
namespaces, TTL; each tenant sees only its own items."""

from __future__ import annotations

import uuid

import httpx
import pytest
from langgraph_sdk import get_client
from langgraph_sdk.client import LangGraphClient

from chorus.agents.storage.database import Database
from tests.conftest import RunningServer, Tenant, make_tenant


def ns(*labels: str) -> list[str]:
    """A namespace of this test alone (tenants are fresh per test, but keep names readable)."""
    return ["memories", *labels]


async def test_put_get_replace_delete(sdk: LangGraphClient) -> None:
    await sdk.store.put_item(ns("u1"), key="prefs", value={"theme": "dark", "lang": "fr"})
    item = await sdk.store.get_item(ns("u1"), key="prefs")
    assert item["namespace"] == ["memories", "u1"] and item["key"] == "prefs"
    assert item["value"] == {"theme": "dark", "lang": "fr"}
    assert set(item) == {"namespace", "key", "value", "created_at", "updated_at"}

    await sdk.store.put_item(ns("u1"), key="prefs", value={"theme": "light"})
    replaced = await sdk.store.get_item(ns("u1"), key="prefs")
    assert replaced["value"] == {"theme": "light"}
    assert replaced["created_at"] == item["created_at"] and replaced["updated_at"] > item["updated_at"]

    await sdk.store.delete_item(ns("u1"), key="prefs")
    with pytest.raises(httpx.HTTPStatusError) as gone:
        await sdk.store.get_item(ns("u1"), key="prefs")
    assert gone.value.response.status_code == 404
    assert gone.value.response.json()["error"] == "not_found"
    await sdk.store.delete_item(ns("u1"), key="prefs")  # deleting again is fine (204)


async def test_search_by_prefix_and_filter_with_paging(sdk: LangGraphClient) -> None:
    for i in range(5):
        await sdk.store.put_item(ns("u2", "notes"), key=f"n{i}", value={"kind": "note", "stars": i}, index=False)
    await sdk.store.put_item(ns("u2", "todos"), key="t1", value={"kind": "todo"}, index=False)
    await sdk.store.put_item(["other"], key="o1", value={"kind": "note"}, index=False)

    everything = (await sdk.store.search_items(["memories", "u2"]))["items"]
    assert {i["key"] for i in everything} == {"n0", "n1", "n2", "n3", "n4", "t1"}
    assert all(i["score"] is None for i in everything)  # no query: newest first, no score
    assert [i["key"] for i in everything][:2] == ["t1", "n4"]

    notes = (await sdk.store.search_items(["memories"], filter={"kind": "note"}, limit=2, offset=1))["items"]
    assert [i["key"] for i in notes] == ["n3", "n2"]
    good = (await sdk.store.search_items(["memories"], filter={"stars": {"$gte": 3}}))["items"]
    assert {i["key"] for i in good} == {"n3", "n4"}
    assert (await sdk.store.search_items(["memories", "u"]))["items"] == []  # labels match whole, not "u2"


async def test_semantic_search_ranks_by_meaning(sdk: LangGraphClient) -> None:
    facts = {
        "refunds": "Refunds are paid back to the original card within 5 business days of the return.",
        "shipping": "Orders ship from our Berlin warehouse; delivery takes two to four days.",
        "hours": "Our support team answers the phone Monday to Friday, 9am to 6pm.",
        "password": "To reset your password, click 'Forgot password' on the sign-in page.",
    }
    for key, text in facts.items():
        await sdk.store.put_item(["kb", "facts"], key=key, value={"text": text, "lang": "en"})
    found = (await sdk.store.search_items(["kb"], query="How long until I get my money back?", limit=4))["items"]
    assert found[0]["key"] == "refunds", [(i["key"], i["score"]) for i in found]
    scores = [i["score"] for i in found]
    assert scores == sorted(scores, reverse=True) and 0 < scores[0] <= 1
    assert len(found) == 4

    # Only the named fields are embedded; an item put with index=False is never found by meaning.
    await sdk.store.put_item(["kb", "facts"], key="hidden", value={"text": "Refunds refunds refunds."}, index=False)
    await sdk.store.put_item(
        ["kb", "tagged"], key="t", value={"title": "Money back", "body": "unrelated words"}, index=["title"]
    )
    found = (await sdk.store.search_items(["kb"], query="refund my money", limit=10))["items"]
    keys = [i["key"] for i in found]
    assert "hidden" not in keys and "t" in keys
    # Put again without indexing (or with other fields), an item is no longer found by its old text.
    await sdk.store.put_item(["kb", "facts"], key="refunds", value={"text": "Refunds: see the FAQ."}, index=False)
    found = (await sdk.store.search_items(["kb"], query="How long until I get my money back?", limit=10))["items"]
    assert "refunds" not in [i["key"] for i in found]
    await sdk.store.put_item(["kb", "facts"], key="refunds", value={"text": facts["refunds"], "lang": "en"})
    # A filter narrows a semantic search.
    narrowed = await sdk.store.search_items(["kb"], query="refund", filter={"lang": "en"}, limit=10)
    assert {i["key"] for i in narrowed["items"]} == set(facts)


async def test_list_namespaces(sdk: LangGraphClient) -> None:
    for namespace in (["a", "x", "1"], ["a", "x", "2"], ["a", "y"], ["b", "x"]):
        await sdk.store.put_item(namespace, key="k", value={"v": 1}, index=False)
    assert (await sdk.store.list_namespaces())["namespaces"] == [
        ["a", "x", "1"],
        ["a", "x", "2"],
        ["a", "y"],
        ["b", "x"],
    ]
    assert (await sdk.store.list_namespaces(prefix=["a"], max_depth=2))["namespaces"] == [["a", "x"], ["a", "y"]]
    assert (await sdk.store.list_namespaces(suffix=["x"]))["namespaces"] == [["b", "x"]]
    assert (await sdk.store.list_namespaces(prefix=["*", "x"]))["namespaces"] == [
        ["a", "x", "1"],
        ["a", "x", "2"],
        ["b", "x"],
    ]
    assert (await sdk.store.list_namespaces(limit=1, offset=1))["namespaces"] == [["a", "x", "2"]]


async def test_ttl_hides_expired_items_and_reads_refresh_it(
    sdk: LangGraphClient, server: RunningServer, db: Database, tenant: Tenant
) -> None:
    await sdk.store.put_item(["session"], key="short", value={"v": 1}, ttl=1, index=False)
    await sdk.store.put_item(["session"], key="kept", value={"v": 2}, index=False)

    async def expires_at(key: str) -> float:
        async with db.connection() as conn:
            row = await (
                await conn.execute(
                    "SELECT extract(epoch FROM expires_at - now()) AS left FROM store WHERE prefix = %s AND key = %s",
                    (f"t.{tenant.tenant_id}.session", key),
                )
            ).fetchone()
        assert row is not None
        return float(row["left"])

    async def age(key: str, seconds: int) -> None:  # time passes for one item
        async with db.connection() as conn:
            await conn.execute(
                "UPDATE store SET expires_at = expires_at - make_interval(secs => %s) WHERE prefix = %s AND key = %s",
                (seconds, f"t.{tenant.tenant_id}.session", key),
            )

    assert 55 < await expires_at("short") <= 60
    await age("short", 30)
    await sdk.store.get_item(["session"], key="short", refresh_ttl=False)
    assert await expires_at("short") <= 30  # a read that does not refresh
    await sdk.store.get_item(["session"], key="short")  # reads refresh by default
    assert await expires_at("short") > 55
    await age("short", 30)
    await sdk.store.search_items(["session"])  # so does a search
    assert await expires_at("short") > 55

    await age("short", 61)  # expired: gone from every read at once, before the sweeper runs
    with pytest.raises(httpx.HTTPStatusError) as gone:
        await sdk.store.get_item(["session"], key="short")
    assert gone.value.response.status_code == 404
    assert [i["key"] for i in (await sdk.store.search_items(["session"]))["items"]] == ["kept"]
    await sdk.store.put_item(["lonely"], key="x", value={}, ttl=1, index=False)
    async with db.connection() as conn:
        await conn.execute(
            "UPDATE store SET expires_at = now() - interval '1 second' WHERE prefix = %s",
            (f"t.{tenant.tenant_id}.lonely",),
        )
    assert ["lonely"] not in (await sdk.store.list_namespaces())["namespaces"]

    assert await server.app.state.store.sweep() >= 2  # the sweeper (every minute) deletes the rows
    async with db.connection() as conn:
        cur = await conn.execute("SELECT key FROM store WHERE prefix LIKE %s", (f"t.{tenant.tenant_id}.%",))
        assert [r["key"] for r in await cur.fetchall()] == ["kept"]
    assert server.app.state.store._store._ttl_sweeper_task is not None  # started with the server


async def test_each_tenant_sees_only_its_own(server: RunningServer, db: Database, sdk: LangGraphClient) -> None:
    other = get_client(url=server.url, api_key=(await make_tenant(db)).key)
    secret = f"secret-{uuid.uuid4().hex}"
    await sdk.store.put_item(["users", "u1"], key="card", value={"text": f"refund to card {secret}"})

    with pytest.raises(httpx.HTTPStatusError) as miss:
        await other.store.get_item(["users", "u1"], key="card")
    assert miss.value.response.status_code == 404 and secret not in miss.value.response.text
    assert (await other.store.search_items([]))["items"] == []
    assert (await other.store.search_items([], query="refund to card"))["items"] == []
    assert (await other.store.list_namespaces())["namespaces"] == []
    # Crafted namespaces: naming our tenant's root labels only reaches inside the caller's own prefix.
    async with db.connection() as conn:
        row = await (
            await conn.execute("SELECT DISTINCT prefix FROM store WHERE value::text LIKE %s", (f"%{secret}%",))
        ).fetchone()
    assert row is not None
    labels = row["prefix"].split(".")  # ["t", <our tenant id>, "users", "u1"]
    for crafted in (labels, labels[:2], labels[1:], ["*", "*", "users"]):
        with pytest.raises(httpx.HTTPStatusError) as crafted_miss:
            await other.store.get_item(crafted, key="card")
        assert crafted_miss.value.response.status_code == 404
        assert (await other.store.search_items(crafted))["items"] == []
        assert (await other.store.list_namespaces(prefix=crafted))["namespaces"] == []
    assert (await other.store.list_namespaces(suffix=["u1"]))["namespaces"] == []
    await other.store.delete_item(["users", "u1"], key="card")  # deletes its own (nothing), not ours
    assert (await sdk.store.get_item(["users", "u1"], key="card"))["value"]["text"].endswith(secret)
