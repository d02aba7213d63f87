"""Rate limits counted in Postgres, so every server process shares them: per visitor and per publishable
key on the widget API, per tenant on the management and Agent Server API (CHORUS_RATE_LIMIT_PER_MINUTE).
Over the limit: 429 with Retry-After, readable by the widget's page (CORS)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import httpx
import pytest

from chorus.agents.storage.database import Database
from chorus.agents.tenancy.rate_limits import WINDOW_S, RateLimiter, _shift
from tests.conftest import RunningServer, ServerProcess, Tenant, start_server_process
from tests.widget.conftest import ORIGIN, Site, create_key

Send = Callable[[int], Awaitable[httpx.Response]]


async def fresh_window(bucket: str, *, needed_s: float = 5.0) -> None:
    """Wait, if need be, until the bucket's current window has `needed_s` left: counts are then exact."""
    left = WINDOW_S - (time.time() - _shift(bucket)) % WINDOW_S
    if left < needed_s:
        await asyncio.sleep(left + 0.05)


async def first_refusal(send: Send, limit: int) -> tuple[int, httpx.Response]:
    """Requests until one is refused: (how many passed, the refusal)."""
    for i in range(2 * limit + 1):
        resp = await send(i)
        if resp.status_code == 429:
            return i, resp
        assert resp.status_code < 400, resp.text
    raise AssertionError(f"{2 * limit + 1} requests passed a limit of {limit} per minute")


def assert_rate_limited(resp: httpx.Response, passed: int, limit: int) -> None:
    assert passed == limit
    assert 1 <= int(resp.headers["retry-after"]) <= 60
    body = resp.json()
    assert body["error"] == "rate_limited" and body["limit_per_minute"] == limit
    assert f"{limit} requests per minute" in body["detail"]


@pytest.fixture(scope="module")
def second_process(database_url: str, chorus_home: Path) -> Iterator[ServerProcess]:
    """Another `chorus serve` on the same database (and vault key), with a tenant limit of 5 a minute."""
    proc = start_server_process(database_url, chorus_home, env={"CHORUS_RATE_LIMIT_PER_MINUTE": "5"})
    yield proc
    proc.process.terminate()
    proc.process.wait(30)


async def test_a_visitor_over_its_limit_gets_429_and_others_go_on(site: Site) -> None:
    site.key = (await create_key(site.admin, [site.assistant_id], visitor_requests_per_minute=3))["key"]
    greedy, token = await site.visitor()
    visitor = site.tokens().verify(token)
    await fresh_window(f"pkv:{visitor.key_id}:{visitor.visitor_id}")
    passed, refused = await first_refusal(lambda _: greedy.get("/widget/v1/threads"), 3)
    assert_rate_limited(refused, passed, 3)
    assert refused.headers["access-control-allow-origin"] == ORIGIN  # the widget can read Retry-After
    assert "retry-after" in refused.headers["access-control-expose-headers"].lower()
    polite, _ = await site.visitor()
    assert (await polite.get("/widget/v1/threads")).status_code == 200


async def test_a_key_over_its_limit_refuses_every_visitor(site: Site) -> None:
    created = await create_key(site.admin, [site.assistant_id], key_requests_per_minute=4)
    site.key = created["key"]
    await fresh_window(f"pk:{created['key_id']}")
    session = site.client(key=True)
    passed, refused = await first_refusal(lambda _: session.post("/widget/v1/session"), 4)
    assert_rate_limited(refused, passed, 4)
    assert "publishable key pk_chorus_" in refused.json()["detail"]


async def test_two_processes_share_a_keys_limit(site: Site, second_process: ServerProcess) -> None:
    created = await create_key(site.admin, [site.assistant_id], key_requests_per_minute=6)
    site.key = created["key"]
    here = site.client(key=True)
    there = httpx.AsyncClient(base_url=second_process.url, headers=dict(here.headers), timeout=30)
    site.clients.append(there)
    await fresh_window(f"pk:{created['key_id']}")
    # Alternating between the processes: each sees only half the requests, the limit counts them all.
    passed, refused = await first_refusal(lambda i: (here if i % 2 else there).post("/widget/v1/session"), 6)
    assert_rate_limited(refused, passed, 6)


async def test_a_token_from_one_process_works_on_another(site: Site, second_process: ServerProcess) -> None:
    """Both processes derive the token key from the same vault key (the shared CHORUS_HOME's key file)."""
    visitor, token = await site.visitor()
    thread_id = await site.thread(visitor)
    async with httpx.AsyncClient(
        base_url=second_process.url, headers={"Origin": ORIGIN, "Authorization": f"Bearer {token}"}
    ) as there:
        resp = await there.get("/widget/v1/threads")
    assert resp.status_code == 200 and [t["thread_id"] for t in resp.json()] == [thread_id]


async def test_a_tenant_over_its_api_limit_gets_429(second_process: ServerProcess, tenant: Tenant) -> None:
    async with httpx.AsyncClient(base_url=second_process.url, headers={"x-api-key": tenant.key}) as api:
        await fresh_window(f"tenant:{tenant.tenant_id}")
        passed, refused = await first_refusal(lambda _: api.get("/api/v1/tools"), 5)
        assert_rate_limited(refused, passed, 5)
        assert "CHORUS_RATE_LIMIT_PER_MINUTE" in refused.json()["detail"]
        assert (await api.get("/health")).status_code == 200  # public routes are not counted


async def test_the_tenant_limit_is_shared_with_other_processes(
    second_process: ServerProcess, server: RunningServer, tenant: Tenant
) -> None:
    """Requests to a process with the default limit count too: the second process (limit 5) sees them."""
    async with (
        httpx.AsyncClient(base_url=server.url, headers={"x-api-key": tenant.key}) as here,
        httpx.AsyncClient(base_url=second_process.url, headers={"x-api-key": tenant.key}) as there,
    ):
        await fresh_window(f"tenant:{tenant.tenant_id}")
        for _ in range(4):
            assert (await here.get("/api/v1/tools")).status_code == 200
        assert (await there.get("/api/v1/tools")).status_code == 200  # the fifth
        refused = await there.get("/api/v1/tools")
        assert refused.status_code == 429 and refused.json()["limit_per_minute"] == 5


async def test_ended_windows_are_pruned(db: Database) -> None:
    async with db.connection() as conn:
        await conn.execute(
            "INSERT INTO rate_limit_windows (bucket, window_start, count) VALUES ('test:old', 0, 7),"
            " ('test:now', floor(extract(epoch FROM now()))::bigint, 1)"
            " ON CONFLICT (bucket, window_start) DO NOTHING"
        )
    assert await RateLimiter(db).prune() >= 1
    async with db.connection() as conn:
        cur = await conn.execute("SELECT bucket FROM rate_limit_windows WHERE bucket LIKE 'test:%' ORDER BY bucket")
        assert [r["bucket"] for r in await cur.fetchall()] == ["test:now"]
        await conn.execute("DELETE FROM rate_limit_windows WHERE bucket = 'test:now'")
