"""Crons through the official Python SDK: create (on a thread, or stateless), search, count, update,
delete; a due occurrence makes exactly one run however often its job is handled; bad schedules, time
zones and inputs are 422s; another tenant's cron does not exist."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import httpx
from langgraph_sdk import get_client
from langgraph_sdk.client import LangGraphClient

from chorus.agents.storage.database import Database
from chorus.runs.cron_schedule import occurrence_id
from tests.conftest import RunningServer, make_tenant

HELLO = {"messages": [{"role": "user", "content": "hello"}]}


async def _due_now(db: Database, cron_id: str) -> None:
    """As if the clock had reached the cron's next occurrence: its job becomes claimable."""
    async with db.connection() as conn:
        await conn.execute("UPDATE queue_jobs SET run_after = now() WHERE lane = %s", (f"cron:{cron_id}",))
        await conn.execute("SELECT pg_notify('chorus_jobs', 'cron')")


async def _wait_for(check: Any, within: float = 20) -> Any:
    for _ in range(int(within * 10)):
        if value := await check():
            return value
        await asyncio.sleep(0.1)
    raise AssertionError("timed out")


async def test_a_thread_cron_fires_once_and_schedules_the_next(
    sdk: LangGraphClient, assistant_id: str, db: Database, server: RunningServer
) -> None:
    thread = (await sdk.threads.create())["thread_id"]
    cron: Any = await sdk.crons.create_for_thread(thread, assistant_id, schedule="*/5 * * * *", input=HELLO)
    first_at = datetime.fromisoformat(cron["next_run_date"])
    assert first_at > datetime.now(UTC) and first_at.minute % 5 == 0
    await _due_now(db, cron["cron_id"])
    runs = await _wait_for(lambda: sdk.runs.list(thread))
    assert len(runs) == 1
    await sdk.runs.join(thread, runs[0]["run_id"])
    moved: Any = (await sdk.crons.search(thread_id=thread))[0]
    assert datetime.fromisoformat(moved["next_run_date"]) > first_at  # the next occurrence is queued
    # The same occurrence handled again (a worker that died after creating the run): no second run.
    firer = server.app.state.worker._kinds["cron"].handler
    stored = await server.app.state.crons.for_firing(cron["cron_id"])
    await firer._create_run(stored, first_at)
    assert len(await sdk.runs.list(thread)) == 1


async def test_a_stateless_cron_runs_on_a_new_thread_and_deletes_it(
    sdk: LangGraphClient, assistant_id: str, db: Database
) -> None:
    cron: Any = await sdk.crons.create(assistant_id, schedule="0 9 * * *", input=HELLO, metadata={"job": "digest"})
    assert cron["thread_id"] is None and cron["on_run_completed"] == "delete"
    await _due_now(db, cron["cron_id"])

    run_id = occurrence_id(cron["cron_id"], datetime.fromisoformat(cron["next_run_date"]), "run")

    async def ran_and_thread_gone() -> bool:
        async with db.connection() as conn:
            cur = await conn.execute(
                "SELECT (SELECT count(*) FROM token_usage WHERE run_id = %s) AS ran,"
                " (SELECT count(*) FROM threads WHERE metadata->>'cron_id' = %s) AS threads",
                (run_id, cron["cron_id"]),
            )
            row = await cur.fetchone()
        return row is not None and row["ran"] > 0 and row["threads"] == 0  # it answered, then its thread went

    await _wait_for(ran_and_thread_gone)
    after: Any = (await sdk.crons.search())[0]
    assert datetime.fromisoformat(after["next_run_date"]) > datetime.fromisoformat(cron["next_run_date"])


async def test_search_count_update_delete(sdk: LangGraphClient, assistant_id: str) -> None:
    cron: Any = await sdk.crons.create(assistant_id, schedule="0 9 * * 1-5", input=HELLO, metadata={"team": "a"})
    assert await sdk.crons.count(metadata={"team": "a"}) == 1
    updated: Any = await sdk.crons.update(cron["cron_id"], schedule="30 8 * * *", enabled=False)
    assert updated["schedule"] == "30 8 * * *" and updated["enabled"] is False and updated["next_run_date"] is None
    enabled: Any = await sdk.crons.update(cron["cron_id"], enabled=True, timezone="Europe/Berlin")
    local = datetime.fromisoformat(enabled["next_run_date"]).astimezone(
        __import__("zoneinfo").ZoneInfo("Europe/Berlin")
    )
    assert (local.hour, local.minute) == (8, 30)
    found = await sdk.crons.search(metadata={"team": "a"}, select=["cron_id", "schedule"])
    assert found == [{"cron_id": cron["cron_id"], "schedule": "30 8 * * *"}]
    await sdk.crons.delete(cron["cron_id"])
    assert await sdk.crons.count(metadata={"team": "a"}) == 0


async def test_bad_crons_are_422s_and_other_tenants_crons_do_not_exist(
    http: httpx.AsyncClient, assistant_id: str, sdk: LangGraphClient, db: Database, server: RunningServer
) -> None:
    for body, says in [
        ({"schedule": "every day", "assistant_id": assistant_id, "input": HELLO}, "five-field"),
        ({"schedule": "61 * * * *", "assistant_id": assistant_id, "input": HELLO}, "not a valid cron"),
        ({"schedule": "0 9 * * *", "timezone": "Mars/Olympus", "assistant_id": assistant_id, "input": HELLO}, "IANA"),
        ({"schedule": "0 9 * * *", "assistant_id": assistant_id}, "input.messages"),
        (
            {"schedule": "0 9 * * *", "assistant_id": assistant_id, "input": HELLO, "webhook": "http://10.0.0.1/x"},
            "private address",
        ),
    ]:
        resp = await http.post("/runs/crons", json=body)
        assert resp.status_code == 422 and says in resp.text, (body, resp.text)
    assert await sdk.crons.count() == 0  # nothing half-written
    mine: Any = await sdk.crons.create(assistant_id, schedule="0 9 * * *", input=HELLO)
    stranger = get_client(url=server.url, api_key=(await make_tenant(db)).key)
    assert await stranger.crons.search() == []
    resp = await http.patch(
        f"/runs/crons/{mine['cron_id']}", json={"enabled": False}, headers={"x-api-key": (await make_tenant(db)).key}
    )
    assert resp.status_code == 404
