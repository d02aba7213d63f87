"""The judge's answers kept in Postgres (table `judge_cache`, migration 022), per tenant: a rerun of the same
execution reads them back instead of asking the model. docs/evals.md ("The judge cache") lists what the key
covers; the key itself is made by chorus/evals/judge.py."""

from __future__ import annotations

from typing import Any

from psycopg.types.json import Jsonb

from chorus.agents.storage.database import Database


class JudgeCache:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, tenant_id: str, key: str) -> dict[str, Any] | None:
        async with self.db.connection() as conn:
            cur = await conn.execute(
                "SELECT answer FROM judge_cache WHERE tenant_id = %s AND key = %s", (tenant_id, key)
            )
            row = await cur.fetchone()
        if row is None:
            return None
        answer: dict[str, Any] = row["answer"]
        return answer

    async def put(
        self, tenant_id: str, key: str, *, metric: str, step: str, judge_model: str, answer: dict[str, Any]
    ) -> None:
        async with self.db.connection() as conn:
            await conn.execute(
                "INSERT INTO judge_cache (tenant_id, key, metric, step, judge_model, answer)"
                " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (tenant_id, key) DO NOTHING",
                (tenant_id, key, metric, step, judge_model, Jsonb(answer)),
            )
