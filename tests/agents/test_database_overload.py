"""A server whose database connections are all in use is busy, not cut off from its database: requests
answer 503 `server_busy` (never "the database is not reachable"), /health says busy (200), the run queue's
upkeep still renews leases on connections of its own, and a run that gets no connection is resumed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import httpx
import pytest
from psycopg_pool import PoolTimeout

from chorus.agents.queue import Lease
from chorus.agents.storage.database import Database
from tests.conftest import RunningServer, slow_bot

HELLO = {"messages": [{"role": "user", "content": "hello"}]}


@asynccontextmanager
async def every_request_connection_held(db: Database) -> AsyncIterator[None]:
    async with AsyncExitStack() as stack:
        for _ in range(db.pool.max_size):
            await stack.enter_async_context(db.pool.connection())
        yield


async def test_a_saturated_pool_answers_server_busy_and_upkeep_goes_on(
    server: RunningServer, http: httpx.AsyncClient
) -> None:
    app_db: Database = server.app.state.db
    async with every_request_connection_held(app_db):
        started = time.monotonic()
        resp = await http.get("/threads/00000000-0000-0000-0000-000000000000")
        waited = time.monotonic() - started
        health = await http.get("/health")
        # The queue's upkeep has its own connections: a lease renewal and a reap still go through.
        renewed, _cancels = await server.app.state.run_engine.worker.queue.renew(
            Lease(worker="nobody", seconds=8), ["00000000-0000-0000-0000-000000000000"]
        )
        reaped = await server.app.state.run_engine.worker.queue.reap(Lease(worker="nobody", seconds=8), ["run"])
    assert resp.status_code == 503, resp.text
    body: dict[str, Any] = resp.json()
    assert body["error"] == "server_busy", body
    assert "not reachable" not in body["detail"] and "CHORUS_DB_POOL_SIZE" in body["detail"]
    assert resp.headers["retry-after"] == "1"
    assert waited < app_db.timeout_s + 1.5, waited  # waits its timeout for a connection, no longer
    # Busy is not down: a load balancer must not take the process out, nor a liveness probe restart it.
    assert health.status_code == 200 and health.json()["status"] == "busy", health.text
    assert health.json()["database"].startswith("busy"), health.text
    assert renewed == set() and isinstance(reaped, tuple)
    assert app_db.watch.outage is None  # overload is not an outage: nothing fails fast afterwards
    await asyncio.sleep(0)
    assert (await http.get("/health")).status_code == 200  # served again once connections are free


async def test_a_run_that_gets_no_connection_is_resumed_not_failed(
    server: RunningServer, http: httpx.AsyncClient, acme_config: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Overload used to end runs `error` ("PoolTimeout: couldn't get a connection"). The run goes back to
    the queue instead and resumes a moment later; the client waiting on it just gets its answer."""
    executor = server.app.state.run_engine.executor
    graph_for = executor.graph_for
    calls = 0

    async def busy_once(tenant_id: str, assistant_id: str, version: int) -> Any:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise PoolTimeout("couldn't get a connection after 1.50 sec")
        return await graph_for(tenant_id, assistant_id, version)

    monkeypatch.setattr(executor, "graph_for", busy_once)
    created = await http.post("/assistants", json={"graph_id": "chatbot", "context": slow_bot(acme_config, 1)})
    thread = (await http.post("/threads", json={})).json()["thread_id"]
    body = {"assistant_id": created.json()["assistant_id"], "input": HELLO}
    answer = await asyncio.wait_for(http.post(f"/threads/{thread}/runs/wait", json=body, timeout=40), 40)
    assert [m["type"] for m in answer.json()["messages"]] == ["human", "ai"], answer.text
    runs = (await http.get(f"/threads/{thread}/runs")).json()
    assert [r["status"] for r in runs] == ["success"]
    assert calls == 2
