"""Crons in Postgres. An enabled cron has exactly one queue job, due at its `next_run_date`: created, moved
or removed in the same transaction as the cron row (a deterministic job id per occurrence, so scheduling
the same occurrence twice is harmless)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import DictRow
from psycopg.types.json import Jsonb

from chorus.agents.configs.repository import parse_uuid
from chorus.agents.errors import CronNotFound
from chorus.agents.queue.repository import NewJob, schedule_sql
from chorus.agents.storage.database import Database, returned
from chorus.runs.cron_schedule import next_fire, occurrence_id

CRON_KIND = "cron"
_COLS = (
    "cron_id::text, tenant_id::text, assistant_id::text, thread_id::text, schedule, timezone, payload, metadata,"
    " on_run_completed, enabled, end_time, next_run_date, created_at, updated_at"
)


def cron_view(row: dict[str, Any]) -> dict[str, Any]:
    """A cron as the Agent Server shows it."""
    return {k: v for k, v in row.items() if k != "tenant_id"} | {"user_id": None}


async def schedule(conn: AsyncConnection[DictRow], cron: dict[str, Any], *, after: datetime) -> datetime | None:
    """Set the cron's next occurrence after `after` and queue its job (none if disabled or past its end)."""
    await conn.execute("DELETE FROM queue_jobs WHERE lane = %s AND status = 'queued'", (f"cron:{cron['cron_id']}",))
    at = (
        next_fire(cron["schedule"], cron["timezone"], after=after, end_time=cron["end_time"])
        if cron["enabled"]
        else None
    )
    await conn.execute("UPDATE crons SET next_run_date = %s WHERE cron_id = %s", (at, cron["cron_id"]))
    if at is not None:
        job = NewJob(
            kind=CRON_KIND,
            tenant_id=cron["tenant_id"],
            lane=f"cron:{cron['cron_id']}",
            job_id=occurrence_id(cron["cron_id"], at, "job"),
            payload={"cron_id": cron["cron_id"], "at": at.isoformat()},
        )
        sql, params = schedule_sql(job, at_s=(at - datetime.now(UTC)).total_seconds())
        await conn.execute(sql, params)
    return at


class CronRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(
        self,
        tenant_id: str,
        *,
        assistant_id: str,
        thread_id: str | None,
        schedule_expr: str,
        timezone: str,
        payload: dict[str, Any],
        metadata: dict[str, Any],
        on_run_completed: str,
        enabled: bool,
        end_time: datetime | None,
    ) -> dict[str, Any]:
        async with self.db.connection() as conn, conn.transaction():
            cur = await conn.execute(
                "INSERT INTO crons (cron_id, tenant_id, assistant_id, thread_id, schedule, timezone, payload, metadata,"
                f" on_run_completed, enabled, end_time) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
                f" RETURNING {_COLS}",
                (
                    str(uuid.uuid4()),
                    tenant_id,
                    assistant_id,
                    thread_id,
                    schedule_expr,
                    timezone,
                    Jsonb(payload),
                    Jsonb(metadata),
                    on_run_completed,
                    enabled,
                    end_time,
                ),
            )
            cron = returned(await cur.fetchone(), "INSERT INTO crons")
            cron["next_run_date"] = await schedule(conn, cron, after=datetime.now(UTC))
        return cron

    async def get(self, tenant_id: str, cron_id: str) -> dict[str, Any]:
        cron_id = parse_uuid(cron_id, "cron")
        async with self.db.connection() as conn:
            cur = await conn.execute(
                f"SELECT {_COLS} FROM crons WHERE tenant_id = %s AND cron_id = %s", (tenant_id, cron_id)
            )
            row = await cur.fetchone()
        if row is None:
            raise CronNotFound(cron_id)
        return row

    async def for_firing(self, cron_id: str) -> dict[str, Any] | None:
        async with self.db.connection() as conn:
            cur = await conn.execute(f"SELECT {_COLS} FROM crons WHERE cron_id = %s", (cron_id,))
            return await cur.fetchone()

    async def update(self, tenant_id: str, cron_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Apply `changes` (column -> value; payload keys are merged) and reschedule from now."""
        cron = await self.get(tenant_id, cron_id)
        sets: list[str] = []
        params: list[Any] = []
        for column, value in changes.items():
            if column == "payload":
                sets.append("payload = payload || %s")
                params.append(Jsonb(value))
            elif column == "metadata":
                sets.append("metadata = metadata || %s")
                params.append(json.dumps(value))
            else:
                sets.append(f"{column} = %s")  # column names come from CronUpdate's fields, never from input
                params.append(value)
        async with self.db.connection() as conn, conn.transaction():
            cur = await conn.execute(
                f"UPDATE crons SET {', '.join([*sets, 'updated_at = now()'])} WHERE cron_id = %s RETURNING {_COLS}",
                (*params, cron["cron_id"]),
            )
            cron = returned(await cur.fetchone(), "UPDATE crons")
            cron["next_run_date"] = await schedule(conn, cron, after=datetime.now(UTC))
        return cron

    async def delete(self, tenant_id: str, cron_id: str) -> None:
        cron = await self.get(tenant_id, cron_id)
        async with self.db.connection() as conn, conn.transaction():
            await conn.execute(
                "DELETE FROM queue_jobs WHERE lane = %s AND status = 'queued'", (f"cron:{cron['cron_id']}",)
            )
            await conn.execute("DELETE FROM crons WHERE cron_id = %s", (cron["cron_id"],))

    def _where(
        self,
        tenant_id: str,
        *,
        assistant_id: str | None,
        thread_id: str | None,
        enabled: bool | None,
        metadata: dict[str, Any] | None,
    ) -> tuple[str, list[Any]]:
        where: list[str] = ["tenant_id = %s"]
        params: list[Any] = [tenant_id]
        if assistant_id is not None:
            where.append("assistant_id = %s")
            params.append(parse_uuid(assistant_id, "assistant"))
        if thread_id is not None:
            where.append("thread_id = %s")
            params.append(parse_uuid(thread_id, "thread"))
        if enabled is not None:
            where.append("enabled = %s")
            params.append(enabled)
        if metadata:
            where.append("metadata @> %s")
            params.append(json.dumps(metadata))
        return " AND ".join(where), params

    async def search(
        self,
        tenant_id: str,
        *,
        assistant_id: str | None,
        thread_id: str | None,
        enabled: bool | None,
        metadata: dict[str, Any] | None,
        sort_by: str,
        sort_order: str,
        limit: int,
        offset: int,
    ) -> list[dict[str, Any]]:
        where, params = self._where(
            tenant_id, assistant_id=assistant_id, thread_id=thread_id, enabled=enabled, metadata=metadata
        )
        # sort_by and sort_order are checked against fixed lists (CronSearch) before they get here.
        sql = f"SELECT {_COLS} FROM crons WHERE {where} ORDER BY {sort_by} {sort_order} LIMIT %s OFFSET %s"
        async with self.db.connection() as conn:
            cur = await conn.execute(sql, (*params, limit, offset))
            return await cur.fetchall()

    async def count(
        self, tenant_id: str, *, assistant_id: str | None, thread_id: str | None, metadata: dict[str, Any] | None
    ) -> int:
        where, params = self._where(
            tenant_id, assistant_id=assistant_id, thread_id=thread_id, enabled=None, metadata=metadata
        )
        async with self.db.connection() as conn:
            cur = await conn.execute(f"SELECT count(*) AS n FROM crons WHERE {where}", params)
            return int(returned(await cur.fetchone(), "SELECT count(*)")["n"])
