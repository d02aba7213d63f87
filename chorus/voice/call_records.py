"""SQL of call records (table `calls`, migration 023): written once when a call ends, from its CallFacts and
transcript; read by the calls API, always scoped to the tenant. A record of a call a voicebot served queues
its post-call job (analysis, then the call.ended webhook) in the statement that writes it, so a crash cannot
lose it; a call no voicebot answered (no_config) belongs to no tenant, and no API key reads it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from psycopg.types.json import Jsonb

from chorus.agents.errors import CallNotFound
from chorus.agents.queue.repository import WAKE_SQL, Lease, finish_sql, take_given_up
from chorus.agents.storage.database import Database
from chorus.runs.webhooks_repository import MAX_ATTEMPTS, WEBHOOK_KIND
from chorus.voice.call_facts import CallFacts

CALL_ANALYSIS_KIND = "call_analysis"
CALL_ENDED = "call.ended"  # the post-call webhook's event
ANALYSIS_ATTEMPTS = 3
_COLS = (
    "call_id::text, tenant_id::text, direction, caller_number, dialed_number, assistant_id::text, config_key,"
    " config_version, environment, room, started_at, ended_at, duration_s, outcome, failure, transcript, turns,"
    " facts, analysis, analysis_status, created_at"
)
_LIST_COLS = (
    "call_id::text, direction, caller_number, dialed_number, assistant_id::text, config_key, config_version,"
    " environment, started_at, ended_at, duration_s, outcome, failure, analysis_status"
)


# A record's outcome: how its call ended, or in_progress while it goes on.
RecordOutcome = Literal["in_progress", "completed", "transferred", "escalated", "voicemail", "failed", "no_config"]


@dataclass(frozen=True)
class CallFilter:
    config_id: str | None = None  # config_metadata.config_id or the assistant id
    outcome: RecordOutcome | None = None
    direction: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 20
    offset: int = 0


def facts_json(facts: CallFacts) -> dict[str, Any]:
    """The jsonb `facts` of a record: what the call's parts recorded beyond the columns."""
    return {"transfer": facts.transfer, "voicemail": facts.voicemail, "dtmf": facts.dtmf, "recording": facts.recording}


def _who_and_what(facts: CallFacts) -> tuple[Any, ...]:
    """The record's first columns (call_id … started_at): known from the moment the call is routed."""
    return (
        facts.call_id,
        facts.tenant_id,
        facts.direction,
        facts.caller_number,
        facts.dialed_number,
        facts.assistant_id,
        facts.config_key,
        facts.config_version,
        facts.environment,
        facts.room,
        facts.started_at,
    )


def _delete_after(facts: CallFacts) -> datetime | None:
    value = (facts.recording or {}).get("delete_after")
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value) if isinstance(value, str) else None


def _json_safe(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


class CallRecords:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def save(self, facts: CallFacts, transcript: list[dict[str, Any]]) -> bool:
        """Write the call's record (once: a second write of the same call changes nothing) and, for a call a
        voicebot served, queue its post-call job. True if this call wrote it."""
        assert facts.ended_at is not None, "settle the call's end before saving it"
        # A call of no tenant is no_config whatever else it was; a tenant's call is never no_config.
        outcome = facts.final_outcome() if facts.tenant_id else "no_config"
        if facts.tenant_id and outcome == "no_config":
            outcome = "failed"
        values = [
            *_who_and_what(facts),
            facts.ended_at,
            max(0.0, (facts.ended_at - facts.started_at).total_seconds()),
            outcome,
            facts.failure,
            Jsonb(_json_safe(transcript)),
            Jsonb(_json_safe(facts.turns)),
            Jsonb(_json_safe(facts_json(facts))),
            "pending" if facts.tenant_id else "none",
            _delete_after(facts),
        ]
        insert = (
            "INSERT INTO calls (call_id, tenant_id, direction, caller_number, dialed_number, assistant_id, config_key,"
            " config_version, environment, room, started_at, ended_at, duration_s, outcome, failure, transcript,"
            " turns, facts, analysis_status, recording_delete_after)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (call_id) DO UPDATE SET direction = EXCLUDED.direction,"
            " caller_number = EXCLUDED.caller_number, dialed_number = EXCLUDED.dialed_number,"
            " ended_at = EXCLUDED.ended_at, duration_s = EXCLUDED.duration_s, outcome = EXCLUDED.outcome,"
            " failure = EXCLUDED.failure, transcript = EXCLUDED.transcript, turns = EXCLUDED.turns,"
            " facts = EXCLUDED.facts, analysis_status = EXCLUDED.analysis_status,"
            " recording_delete_after = EXCLUDED.recording_delete_after"
            " WHERE calls.outcome = 'in_progress' AND calls.tenant_id IS NOT DISTINCT FROM EXCLUDED.tenant_id"
            " RETURNING call_id"
        )
        async with self.db.connection() as conn:
            if not facts.tenant_id:
                cur = await conn.execute(insert, values)
                return cur.rowcount > 0
            # The job (its id is the call's) only if the record is new: a second save queues nothing.
            cur = await conn.execute(
                f"WITH record AS ({insert}), job AS (INSERT INTO queue_jobs (job_id, tenant_id, kind, payload,"
                " max_attempts) SELECT record.call_id, %s, %s, %s, %s FROM record RETURNING status, kind)"
                f" SELECT {WAKE_SQL} FROM job",
                [*values, facts.tenant_id, CALL_ANALYSIS_KIND, Jsonb({"call_id": facts.call_id}), ANALYSIS_ATTEMPTS],
            )
            return cur.rowcount > 0

    async def open(self, facts: CallFacts) -> None:
        """The routed call's record, `in_progress` until `save` completes it (or the stale sweep closes it,
        if the worker dies first): a call in progress is listed, and a killed worker's call is not lost."""
        assert facts.tenant_id is not None, "open a record once the call is routed to a tenant's voicebot"
        async with self.db.connection() as conn:
            await conn.execute(
                "INSERT INTO calls (call_id, tenant_id, direction, caller_number, dialed_number, assistant_id,"
                " config_key, config_version, environment, room, started_at, outcome)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, 'in_progress') ON CONFLICT (call_id) DO NOTHING",
                _who_and_what(facts),
            )

    async def get(self, tenant_id: str, call_id: str) -> dict[str, Any]:
        async with self.db.connection() as conn:
            cur = await conn.execute(
                f"SELECT {_COLS} FROM calls WHERE tenant_id = %s AND call_id = %s", (tenant_id, call_id)
            )
            row = await cur.fetchone()
        if row is None:
            raise CallNotFound(call_id)
        return row

    async def find(self, call_id: str) -> dict[str, Any] | None:
        """A record by id alone, for the post-call job (which knows its call, not a caller's tenant)."""
        async with self.db.connection() as conn:
            cur = await conn.execute(f"SELECT {_COLS} FROM calls WHERE call_id = %s", (call_id,))
            return await cur.fetchone()

    async def search(self, tenant_id: str, where: CallFilter) -> list[dict[str, Any]]:
        """The tenant's calls, newest first (never another tenant's, nor a call no voicebot answered)."""
        clauses: list[str] = ["tenant_id = %s"]
        params: list[Any] = [tenant_id]
        if where.config_id is not None:
            try:
                as_uuid: str | None = str(uuid.UUID(where.config_id))
            except ValueError:
                as_uuid = None
            clauses.append("(config_key = %s OR assistant_id = %s::uuid)")
            params += [where.config_id, as_uuid]
        for column, value in (("outcome", where.outcome), ("direction", where.direction)):
            if value is not None:
                clauses.append(f"{column} = %s")
                params.append(value)
        if where.since is not None:
            clauses.append("started_at >= %s")
            params.append(where.since)
        if where.until is not None:
            clauses.append("started_at < %s")
            params.append(where.until)
        async with self.db.connection() as conn:
            cur = await conn.execute(
                f"SELECT {_LIST_COLS} FROM calls WHERE {' AND '.join(clauses)}"
                " ORDER BY started_at DESC, call_id LIMIT %s OFFSET %s",
                [*params, where.limit, where.offset],
            )
            return await cur.fetchall()

    async def store_analysis(
        self,
        call_id: str,
        lease: Lease,
        *,
        analysis: dict[str, Any] | None,
        webhook_url: str | None,
        webhook_payload: dict[str, Any] | None = None,
    ) -> bool:
        """Store the analysis, end the post-call job (fenced by its lease) and, with a webhook URL, queue the
        call.ended delivery, in one statement (no analysis_plan: analysis NULL, status none). False (nothing
        changed) if another worker holds the job now."""
        status = "none" if analysis is None else "error" if "error" in analysis else "done"
        job_sql, job_params = finish_sql(call_id, lease)
        sql = (
            f"WITH done AS ({job_sql}), record AS (UPDATE calls SET analysis = %s, analysis_status = %s"
            " WHERE call_id = %s AND EXISTS (SELECT 1 FROM done) RETURNING call_id, tenant_id)"
        )
        params: list[Any] = [
            *job_params,
            Jsonb(_json_safe(analysis)) if analysis is not None else None,
            status,
            call_id,
        ]
        if webhook_url is None:
            sql += " SELECT call_id FROM record"
        else:
            delivery_id = str(uuid.uuid4())
            sql += (
                ", job AS (INSERT INTO queue_jobs (job_id, tenant_id, kind, payload, max_attempts)"
                " SELECT %s, record.tenant_id, %s, '{}', %s FROM record RETURNING status, kind, tenant_id),"
                " delivery AS (INSERT INTO webhook_deliveries (delivery_id, tenant_id, thread_id, call_id, event,"
                " url, payload) SELECT %s, job.tenant_id, %s, %s, %s, %s, %s FROM job)"
                f" SELECT {WAKE_SQL} FROM job"
            )
            params += [delivery_id, WEBHOOK_KIND, MAX_ATTEMPTS, delivery_id, call_id, call_id, CALL_ENDED, webhook_url]
            params.append(Jsonb(_json_safe(webhook_payload or {})))
        async with self.db.connection() as conn:
            cur = await conn.execute(sql, params)
            return cur.rowcount > 0

    async def analysis_given_up(self, call_id: str, lease: Lease, *, error: str) -> None:
        async with self.db.connection() as conn, conn.transaction():
            if await take_given_up(conn, call_id, lease):
                await conn.execute(
                    "UPDATE calls SET analysis = %s, analysis_status = 'error' WHERE call_id = %s",
                    (Jsonb({"error": error}), call_id),
                )


def call_view(row: dict[str, Any]) -> dict[str, Any]:
    """A record as the API and the webhook show it (JSON-ready)."""
    view: dict[str, Any] = _json_safe(dict(row))
    return view


STALE_CALL_AFTER = timedelta(hours=4)  # no call lasts this long: its worker died without closing it
WORKER_LOST = (
    "the voice worker stopped during the call (its process ended without closing the call); the record was"
    " closed by the servers' sweep, and the conversation so far is in the call's thread"
)


async def close_stale_calls(db: Database, *, older_than: timedelta = STALE_CALL_AFTER) -> int:
    """Calls still `in_progress` long after they started (their worker was killed): closed `failed`, saying
    so. How many were closed. Run by every server process's housekeeping."""
    async with db.connection() as conn:
        cur = await conn.execute(
            "UPDATE calls SET outcome = 'failed', failure = %s, ended_at = now(),"
            " duration_s = extract(epoch FROM now() - started_at)"
            " WHERE outcome = 'in_progress' AND started_at < now() - %s",
            (WORKER_LOST, older_than),
        )
        return cur.rowcount
