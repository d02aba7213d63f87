"""Ordered SQL migrations (storage/migrations/NNN_name.sql), each applied once, under an advisory lock."""

from __future__ import annotations

from importlib import resources
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chorus.agents.storage.database import Database

MIGRATION_LOCK = 0x43484F52  # "CHOR": one migrator at a time across processes


def _migration_files() -> list[tuple[str, str]]:
    folder = resources.files("chorus.agents.storage") / "migrations"
    files = sorted((p for p in folder.iterdir() if p.name.endswith(".sql")), key=lambda p: p.name)
    return [(p.name.removesuffix(".sql"), p.read_text(encoding="utf-8")) for p in files]


async def apply_migrations(db: Database) -> list[str]:
    applied: list[str] = []
    async with db.connection() as conn:
        await conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
        try:
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS chorus_migrations ("
                " name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            cur = await conn.execute("SELECT name FROM chorus_migrations")
            done = {row["name"] for row in await cur.fetchall()}
            for name, sql in _migration_files():
                if name in done:
                    continue
                async with conn.transaction():
                    await conn.execute(sql.encode())
                    await conn.execute("INSERT INTO chorus_migrations (name) VALUES (%s)", (name,))
                applied.append(name)
        finally:
            await conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))
    return applied
