"""Postgres stops under a running server: every request answers 503 within 2 s (no hang, no 500),
/health names the database, a streaming turn ends; once Postgres is back, service resumes within 5 s.

These tests stop and start a dedicated embedded Postgres, never the session database the others use.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from chorus.agents.settings import Settings
from chorus.agents.storage.database import Database
from chorus.agents.storage.embedded import EmbeddedServer, start_embedded
from chorus.server import create_app
from tests.conftest import Tenant, example, make_tenant, slow_bot
from tests.fakes import serve

FAST_S = 2.0  # every answer during an outage comes within this
RECOVERY_S = 5.0  # service resumes within this once Postgres is back
HELLO = {"messages": [{"role": "user", "content": "hello"}]}


@dataclass
class Rig:
    pg: EmbeddedServer
    url: str
    tenant: Tenant
    db: Database

    def client(self, key: str | None = None) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, headers={"x-api-key": key or self.tenant.key}, timeout=30)


@pytest.fixture(scope="module")
async def rig() -> AsyncIterator[Rig]:
    # Not under pytest's tmp dir: another pytest run on the machine may chmod it 0700 at any moment,
    # and Postgres runs as a different user when tests run as root.
    home = Path(tempfile.mkdtemp(prefix="chorus-db-faults-"))
    pg = start_embedded(home, cleanup_mode=None)
    settings = Settings(home=home, database_url=pg.url, offline=True)
    app = create_app(settings)
    try:
        async with serve(app) as url:
            db: Database = app.state.db
            yield Rig(pg, url, await make_tenant(db), db)
            if not pg.running:
                pg.start()
    finally:
        if pg.running:
            pg.stop()
        pg.release()
        shutil.rmtree(home, ignore_errors=True)


async def timed(call: Awaitable[httpx.Response]) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = await asyncio.wait_for(call, timeout=15)  # a hang fails here, not at the pytest timeout
    return response, time.monotonic() - started


async def wait_until_ok(call: Callable[[], Awaitable[httpx.Response]], *, within: float) -> float:
    started = time.monotonic()
    while True:
        response, _ = await timed(call())
        elapsed = time.monotonic() - started
        if response.status_code == 200:
            return elapsed
        assert response.status_code == 503, response.text
        assert elapsed < within, f"still {response.status_code} {elapsed:.1f} s after Postgres came back"
        await asyncio.sleep(0.1)


def assert_database_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    body = response.json()
    assert body["error"] == "database_unavailable"
    assert "database is not reachable" in body["detail"] and "retry" in body["detail"]
    assert response.headers["retry-after"].isdigit()


async def test_outage_answers_503_at_once_and_service_resumes_without_restart(rig: Rig) -> None:
    async with rig.client() as http, rig.client(key=(await make_tenant(rig.db)).key) as uncached:
        thread = (await http.post("/threads", json={})).json()
        reads: dict[str, Callable[[], Awaitable[httpx.Response]]] = {
            "health": lambda: http.get("/health"),
            "threads search": lambda: http.post("/threads/search", json={}),
            "assistants search": lambda: http.post("/assistants/search", json={}),
            "thread state (checkpointer)": lambda: http.get(f"/threads/{thread['thread_id']}/state"),
            "create thread": lambda: http.post("/threads", json={}),
            "key not cached yet": lambda: uncached.post("/threads/search", json={}),
        }
        health = await http.get("/health")
        assert health.status_code == 200
        assert health.json()["database"] == "ok" and health.json()["pool"]["size"] >= 1
        await asyncio.sleep(6)  # pooled connections are now idle long enough to be checked before use

        rig.pg.stop()
        for _ in range(3):  # right after the stop (dead pooled connections), then once the outage is known
            for name, call in reads.items():
                response, elapsed = await timed(call())
                assert elapsed < FAST_S, f"{name} took {elapsed:.2f} s"
                if name == "health":
                    assert response.status_code == 503, response.text
                    assert response.json()["status"] == "unhealthy"
                    assert response.json()["database"].startswith("unreachable: ")
                    assert "postgres" not in response.json()["database"].lower()  # no DSN or socket path
                else:
                    assert_database_unavailable(response)
            await asyncio.sleep(0.5)

        rig.pg.start()
        for name, call in reads.items():
            elapsed = await wait_until_ok(call, within=RECOVERY_S)
            assert elapsed < RECOVERY_S, name
        assert (await http.get("/health")).json()["database"] == "ok"


async def test_a_run_caught_by_the_outage_ends_its_stream_then_resumes_when_the_database_is_back(
    rig: Rig,
) -> None:
    async with rig.client() as http:
        bot = slow_bot(example("acme_support_bot"), delay_ms=60)
        assistant = (await http.post("/assistants", json={"graph_id": "chatbot", "context": bot})).json()
        thread = (await http.post("/threads", json={})).json()
        body = {"assistant_id": assistant["assistant_id"], "input": HELLO, "stream_mode": ["messages-tuple"]}
        events: list[str] = []

        async def consume() -> None:
            async with http.stream("POST", f"/threads/{thread['thread_id']}/runs/stream", json=body) as resp:
                assert resp.status_code == 200
                async for line in resp.aiter_lines():
                    if line.startswith("event: "):
                        events.append(line.removeprefix("event: "))
                        if events.count("messages") == 2:
                            rig.pg.stop()

        try:
            await asyncio.wait_for(consume(), timeout=20)
        except httpx.RemoteProtocolError:
            pass  # the server may close the response instead of sending an error event: it ended, no hang
        finally:
            if not rig.pg.running:
                rig.pg.start()
        assert "messages" in events  # it was streaming when Postgres stopped, and the stream ended
        # And the server serves again.
        await wait_until_ok(lambda: http.post("/threads/search", json={}), within=RECOVERY_S)
        # The run kept its accepted input and resumes once the database is back: its lease lapsed during the
        # outage, so the queue gives it back and it completes from its last checkpoint.
        tid = thread["thread_id"]
        deadline = time.monotonic() + 60
        statuses: list[str] = []
        while time.monotonic() < deadline:
            statuses = [r["status"] for r in (await http.get(f"/threads/{tid}/runs")).json()]
            if statuses and statuses[0] not in ("pending", "running"):
                break
            await asyncio.sleep(0.5)
        assert statuses == ["success"], statuses
        messages = (await http.get(f"/threads/{tid}/state")).json()["values"]["messages"]
        assert [m["type"] for m in messages] == ["human", "ai"] and messages[0]["content"] == "hello"
        assert messages[1]["content"], "the resumed turn answered"


def test_database_errors_name_no_host_or_socket() -> None:
    from psycopg import OperationalError

    from chorus.agents.storage.outage import describe

    exc = OperationalError(
        'connection failed: connection to server on socket "/tmp/x/.s.PGSQL.5432" failed: No such file or directory'
    )
    assert describe(exc) == "connection refused"
    exc = OperationalError('connection to server at "db.internal" (10.0.0.5), port 5432 failed: timeout expired')
    assert describe(exc) == "timeout expired"
