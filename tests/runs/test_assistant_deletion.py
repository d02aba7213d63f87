"""Deleting an assistant: its threads stay whole (state, history, and new turns with another assistant), or
go with their runs and checkpoints when asked (`delete_threads=true`, as in the LangGraph Agent Server)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from langgraph_sdk import get_client
from langgraph_sdk.client import LangGraphClient

from chorus.agents.settings import Settings
from chorus.agents.storage.database import Database
from chorus.agents.tenancy.keys import create_api_key
from chorus.server import create_app
from tests.conftest import RunningServer, Tenant, make_tenant, slow_bot
from tests.fakes import serve

HELLO = {"messages": [{"role": "user", "content": "hello"}]}
ORDER = {"messages": [{"role": "user", "content": "Where is my order ORD-1001?"}]}


def _humans(values: dict[str, Any]) -> list[str]:
    return [m["content"] for m in values["messages"] if m["type"] == "human"]


async def client_thread(url: str, key: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=url, headers={"x-api-key": key}) as client:
        created: dict[str, Any] = (await client.post("/threads", json={})).json()
        return created


async def _stored(db: Database, thread_ids: list[str], assistant_id: str) -> dict[str, int]:
    async with db.connection() as conn:
        cur = await conn.execute(
            "SELECT (SELECT count(*) FROM threads WHERE thread_id = ANY(%(t)s::uuid[])) AS threads,"
            " (SELECT count(*) FROM runs WHERE thread_id = ANY(%(t)s::uuid[])) AS runs,"
            " (SELECT count(*) FROM checkpoints WHERE thread_id = ANY(%(t)s::text[])) AS checkpoints,"
            " (SELECT count(*) FROM bot_configs WHERE config_id = %(a)s) AS configs",
            {"t": thread_ids, "a": assistant_id},
        )
        row = await cur.fetchone()
    assert row is not None
    return dict(row)


async def test_deleting_an_assistant_keeps_its_threads_whole_and_usable(
    sdk: LangGraphClient,
    http: httpx.AsyncClient,
    assistant_id: str,
    acme_config: dict[str, Any],
    settings: Settings,
    db: Database,
    tenant: Tenant,
) -> None:
    thread_id = (await sdk.threads.create())["thread_id"]
    await sdk.runs.wait(thread_id, assistant_id, input=ORDER)
    async with serve(create_app(settings, database=db)) as other_url:
        other = get_client(url=other_url, api_key=tenant.key)
        await other.runs.wait(thread_id, assistant_id, input=HELLO)  # the other process now knows the pin
        before = await sdk.threads.get_state(thread_id)
        history_before = await sdk.threads.get_history(thread_id, limit=50)

        assert (await http.delete(f"/assistants/{assistant_id}")).status_code == 204

        # Gone as an assistant: get, search, versions, graph, a second delete.
        assert (await http.get(f"/assistants/{assistant_id}")).status_code == 404
        assert assistant_id not in [a["assistant_id"] for a in await sdk.assistants.search(limit=100)]
        assert (await http.post(f"/assistants/{assistant_id}/versions", json={})).status_code == 404
        assert (await http.get(f"/assistants/{assistant_id}/graph")).status_code == 404
        assert (await http.delete(f"/assistants/{assistant_id}")).status_code == 404
        # It starts no new run, in this process or in the other one (which had the thread's pin in memory).
        for url in (str(http.base_url), other_url):
            async with httpx.AsyncClient(base_url=url, headers={"x-api-key": tenant.key}) as client:
                refused = await client.post(
                    f"/threads/{thread_id}/runs/wait", json={"assistant_id": assistant_id, "input": HELLO}
                )
            assert refused.status_code == 404 and "was deleted" in refused.json()["detail"], refused.text
            fresh = (await client_thread(url, tenant.key))["thread_id"]
            async with httpx.AsyncClient(base_url=url, headers={"x-api-key": tenant.key}) as client:
                refused = await client.post(
                    f"/threads/{fresh}/runs/wait", json={"assistant_id": assistant_id, "input": HELLO}
                )
            assert refused.status_code == 404, refused.text

        # The thread is whole: values, state and history as before.
        thread = await sdk.threads.get(thread_id)
        assert thread["assistant_id"] == assistant_id and _humans(thread["values"]) == _humans(before["values"])
        state = await sdk.threads.get_state(thread_id)
        assert state["values"] == before["values"] and state["checkpoint"] == before["checkpoint"]
        assert _humans(state["values"]) == ["Where is my order ORD-1001?", "hello"]
        history = await sdk.threads.get_history(thread_id, limit=50)
        assert [h["checkpoint"] for h in history] == [h["checkpoint"] for h in history_before]

        # And it goes on with another assistant, from where it was, in either process.
        newer = await sdk.assistants.create(graph_id="chatbot", context=slow_bot(acme_config, delay_ms=0))
        final: Any = await other.runs.wait(thread_id, newer["assistant_id"], input=HELLO)
        assert _humans(final) == ["Where is my order ORD-1001?", "hello", "hello"]
        assert final["messages"][-1]["type"] == "ai"
        assert (await sdk.threads.get(thread_id))["assistant_id"] == newer["assistant_id"]
        again: Any = await sdk.runs.wait(thread_id, newer["assistant_id"], input=ORDER)
        assert len(_humans(again)) == 4
        state = await sdk.threads.get_state(thread_id)
        assert state["values"]["messages"] == again["messages"]
        assert len(await sdk.threads.get_history(thread_id, limit=100)) > len(history_before)
    # Its versions were kept for this thread; no thread needs them now.
    assert (await _stored(db, [thread_id], assistant_id))["configs"] == 0


async def test_delete_threads_takes_the_threads_runs_and_checkpoints_along(
    sdk: LangGraphClient, http: httpx.AsyncClient, acme_config: dict[str, Any], db: Database
) -> None:
    doomed = await sdk.assistants.create(graph_id="chatbot", context=slow_bot(acme_config, delay_ms=40))
    kept = await sdk.assistants.create(graph_id="chatbot", context=acme_config)
    threads = [(await sdk.threads.create())["thread_id"] for _ in range(2)]
    for thread_id in threads:
        await sdk.runs.wait(thread_id, doomed["assistant_id"], input=HELLO)
    other_thread = (await sdk.threads.create())["thread_id"]
    await sdk.runs.wait(other_thread, kept["assistant_id"], input=HELLO)
    unused = (await sdk.threads.create())["thread_id"]  # no run yet: belongs to no assistant
    assert await _stored(db, threads, doomed["assistant_id"]) == {
        "threads": 2,
        "runs": 2,
        "checkpoints": await _checkpoints(db, threads),
        "configs": 1,
    }

    # A run in progress on one of them: 409, and nothing is deleted.
    busy = await sdk.runs.create(threads[1], doomed["assistant_id"], input=ORDER)
    for _ in range(200):
        if (await sdk.runs.get(threads[1], busy["run_id"]))["status"] == "running":
            break
        await asyncio.sleep(0.02)
    refused = await http.delete(f"/assistants/{doomed['assistant_id']}", params={"delete_threads": "true"})
    assert refused.status_code == 409 and threads[1] in refused.json()["detail"], refused.text
    assert (await http.get(f"/assistants/{doomed['assistant_id']}")).status_code == 200
    await sdk.runs.join(threads[1], busy["run_id"])
    assert (await _stored(db, threads, doomed["assistant_id"]))["threads"] == 2

    await sdk.assistants.delete(doomed["assistant_id"], delete_threads=True)  # the official client's way
    assert await _stored(db, threads, doomed["assistant_id"]) == {
        "threads": 0,
        "runs": 0,
        "checkpoints": 0,
        "configs": 0,  # nothing refers to it any more: gone for good
    }
    for thread_id in threads:
        assert (await http.get(f"/threads/{thread_id}")).status_code == 404
    assert (await http.get(f"/assistants/{doomed['assistant_id']}")).status_code == 404
    # Other assistants' threads, and threads of none, are untouched.
    assert _humans((await sdk.threads.get_state(other_thread))["values"]) == ["hello"]
    assert (await http.get(f"/threads/{unused}")).status_code == 200


async def _checkpoints(db: Database, thread_ids: list[str]) -> int:
    async with db.connection() as conn:
        cur = await conn.execute("SELECT count(*) AS n FROM checkpoints WHERE thread_id = ANY(%s)", (thread_ids,))
        row = await cur.fetchone()
    assert row is not None and row["n"] > 0
    return int(row["n"])


async def test_deleting_needs_a_developer_and_stays_in_the_tenant(
    server: RunningServer, http: httpx.AsyncClient, assistant_id: str, db: Database, tenant: Tenant
) -> None:
    viewer_key = await create_api_key(db, tenant_id=tenant.tenant_id, role="viewer")
    async with httpx.AsyncClient(base_url=server.url, headers={"x-api-key": viewer_key}) as viewer:
        for params in ({}, {"delete_threads": "true"}):
            assert (await viewer.delete(f"/assistants/{assistant_id}", params=params)).status_code == 403
    intruder = await make_tenant(db)
    async with httpx.AsyncClient(base_url=server.url, headers={"x-api-key": intruder.key}) as stranger:
        for params in ({}, {"delete_threads": "true"}):
            response = await stranger.delete(f"/assistants/{assistant_id}", params=params)
            assert response.status_code == 404 and "does not exist" in response.json()["detail"]
    assert (await http.get(f"/assistants/{assistant_id}")).status_code == 200
    developer_key = await create_api_key(db, tenant_id=tenant.tenant_id, role="developer")
    async with httpx.AsyncClient(base_url=server.url, headers={"x-api-key": developer_key}) as developer:
        assert (await developer.delete(f"/assistants/{assistant_id}")).status_code == 204
