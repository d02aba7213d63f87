"""Threads expire (TTL): expired threads and their checkpoints are deleted; active ones are kept."""

from __future__ import annotations

from typing import Any

import httpx

from chorus.agents.storage.database import Database
from chorus.graphs.checkpointer import ChorusCheckpointer
from chorus.runs.threads_repository import ThreadRepository


async def test_expired_threads_are_pruned(http: httpx.AsyncClient, db: Database, assistant_id: str) -> None:
    msg: dict[str, Any] = {"messages": [{"role": "user", "content": "hello"}]}
    old = (await http.post("/threads", json={})).json()["thread_id"]
    fresh = (await http.post("/threads", json={})).json()["thread_id"]
    for thread_id in (old, fresh):
        assert (
            await http.post(f"/threads/{thread_id}/runs/wait", json={"assistant_id": assistant_id, "input": msg})
        ).status_code == 200
    async with db.connection() as conn:
        await conn.execute("UPDATE threads SET expires_at = now() - interval '1 day' WHERE thread_id = %s", (old,))
    saver = ChorusCheckpointer(db.pool)
    for thread_id in await ThreadRepository(db, ttl_days=30).expired():
        await saver.adelete_thread(thread_id)
    assert (await http.get(f"/threads/{old}")).status_code == 404
    assert (await http.get(f"/threads/{fresh}")).status_code == 200
    async with db.connection() as conn:
        cur = await conn.execute("SELECT count(*) AS n FROM checkpoints WHERE thread_id = %s", (old,))
        row = await cur.fetchone()
    assert row is not None and row["n"] == 0


async def test_prune_endpoint(http: httpx.AsyncClient, assistant_id: str) -> None:
    thread_id = (await http.post("/threads", json={})).json()["thread_id"]
    pruned = await http.post("/threads/prune", json={"thread_ids": [thread_id]})
    assert pruned.json() == {"pruned_count": 1, "busy_thread_ids": []}
    assert (await http.get(f"/threads/{thread_id}")).status_code == 404
    keep_latest = await http.post("/threads/prune", json={"thread_ids": [thread_id], "strategy": "keep_latest"})
    assert keep_latest.status_code == 422
