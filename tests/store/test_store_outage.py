"""Postgres stops under a running server: every store operation answers 503 `database_unavailable` at once
(the store takes its connections from the pool itself, not through Chorus's seam), and serves again once
Postgres is back. A dedicated embedded Postgres, never the session database."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
import pytest

from chorus.agents.settings import Settings
from chorus.agents.storage.database import Database
from chorus.agents.storage.embedded import EmbeddedServer, start_embedded
from chorus.server import create_app
from tests.conftest import make_tenant
from tests.fakes import serve

FAST_S = 2.0
RECOVERY_S = 5.0


@pytest.fixture
async def outage_rig() -> AsyncIterator[tuple[EmbeddedServer, httpx.AsyncClient]]:
    home = Path(tempfile.mkdtemp(prefix="chorus-store-faults-"))  # not pytest's tmp dir: see test_database_faults
    pg = start_embedded(home, cleanup_mode=None)
    app = create_app(Settings(home=home, database_url=pg.url, offline=True))
    try:
        async with serve(app) as url:
            db: Database = app.state.db
            tenant = await make_tenant(db)
            async with httpx.AsyncClient(base_url=url, headers={"x-api-key": tenant.key}, timeout=30) as http:
                yield pg, http
            if not pg.running:
                pg.start()
    finally:
        if pg.running:
            pg.stop()
        pg.release()
        shutil.rmtree(home, ignore_errors=True)


async def test_store_answers_503_during_an_outage_and_serves_again(
    outage_rig: tuple[EmbeddedServer, httpx.AsyncClient],
) -> None:
    pg, http = outage_rig
    item = {"namespace": ["n"], "key": "k", "value": {"text": "refunds take five days"}}
    assert (await http.put("/store/items", json=item)).status_code == 204
    calls: dict[str, Callable[[], Awaitable[httpx.Response]]] = {
        "put": lambda: http.put("/store/items", json=item),
        "get": lambda: http.get("/store/items", params={"namespace": "n", "key": "k"}),
        "search": lambda: http.post("/store/items/search", json={"query": "refund"}),
        "namespaces": lambda: http.post("/store/namespaces", json={}),
        "delete": lambda: http.request("DELETE", "/store/items", json={"namespace": ["x"], "key": "k"}),
    }
    await asyncio.sleep(6)  # pooled connections are now idle long enough to be checked before use

    pg.stop()
    for _ in range(2):  # right after the stop (dead pooled connections), then once the outage is known
        for name, call in calls.items():
            started = time.monotonic()
            response = await asyncio.wait_for(call(), timeout=15)
            assert time.monotonic() - started < FAST_S, name
            assert response.status_code == 503, f"{name}: {response.text}"
            assert response.json()["error"] == "database_unavailable" and response.headers["retry-after"]
        await asyncio.sleep(0.5)

    pg.start()
    deadline = time.monotonic() + RECOVERY_S
    while (response := await calls["get"]()).status_code != 200:
        assert response.status_code == 503 and time.monotonic() < deadline, response.text
        await asyncio.sleep(0.1)
    assert response.json()["value"] == item["value"]
    for name, call in calls.items():
        assert (await call()).status_code in (200, 204), name
