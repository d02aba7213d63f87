"""Processes starting together on a new database (`chorus serve --workers N`) create LangGraph's checkpoint
tables once, taking turns: before, they raced on the same CREATE statements and one of them exited."""

from __future__ import annotations

import asyncio
import uuid

from psycopg.conninfo import conninfo_to_dict, make_conninfo

from chorus.agents.settings import Settings
from chorus.agents.storage.database import Database, open_database
from chorus.graphs.checkpointer import ChorusCheckpointer

PROCESSES = 4


async def test_concurrent_setups_on_a_new_database_all_succeed(
    db: Database, database_url: str, settings: Settings
) -> None:
    name = f"setup_race_{uuid.uuid4().hex[:8]}"
    async with db.connection() as conn:
        await conn.execute(f'CREATE DATABASE "{name}"')
    url = make_conninfo(**{**conninfo_to_dict(database_url), "dbname": name})
    databases = [await open_database(settings, url=url, migrate=False) for _ in range(PROCESSES)]
    try:
        await asyncio.gather(*(ChorusCheckpointer(d.pool).setup() for d in databases))
        async with databases[0].connection() as conn:
            cur = await conn.execute("SELECT count(*) AS n FROM checkpoint_migrations")
            row = await cur.fetchone()
        assert row is not None and row["n"] > 0
    finally:
        for d in databases:
            await d.close()
        async with db.connection() as conn:
            await conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
