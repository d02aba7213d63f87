"""The calls API: a tenant's call records (`GET /api/v1/calls`, `GET /api/v1/calls/{call_id}`), viewer role.
Another tenant's call, and a call no voicebot answered (it belongs to no tenant), answer 404."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request

from chorus.agents.api_deps import ViewerDep
from chorus.agents.errors import CallNotFound, InvalidInput
from chorus.voice.call_records import CallFilter, CallRecords, RecordOutcome, call_view

router = APIRouter(tags=["calls"])


def _records(request: Request) -> CallRecords:
    records: CallRecords = request.app.state.calls
    return records


CallsDep = Annotated[CallRecords, Depends(_records)]


def _aware(value: datetime | None) -> datetime | None:
    """A time without a zone is UTC."""
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


@router.get("/api/v1/calls", summary="List calls (newest first)")
async def list_calls(
    principal: ViewerDep,
    records: CallsDep,
    config_id: Annotated[
        str | None, Query(min_length=1, max_length=128, description="config_metadata.config_id or assistant id")
    ] = None,
    outcome: RecordOutcome | None = None,
    direction: Literal["inbound", "outbound"] | None = None,
    since: Annotated[datetime | None, Query(description="Calls started at or after (ISO 8601; UTC if no zone)")] = None,
    until: Annotated[datetime | None, Query(description="Calls started before (ISO 8601; UTC if no zone)")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> list[dict[str, Any]]:
    """Each call's numbers, direction, config and version, times, outcome, failure and analysis status;
    `GET /api/v1/calls/{call_id}` adds the transcript, per-turn metrics, facts and analysis."""
    since, until = _aware(since), _aware(until)
    if since is not None and until is not None and since >= until:
        raise InvalidInput(
            "until must be later than since",
            errors=[{"path": "$.until", "message": f"{until.isoformat()} is not later than since"}],
        )
    where = CallFilter(
        config_id=config_id,
        outcome=outcome,
        direction=direction,
        since=since,
        until=until,
        limit=limit,
        offset=offset,
    )
    return [call_view(row) for row in await records.search(principal.tenant_id, where)]


@router.get("/api/v1/calls/{call_id}", summary="Get a call: its record, transcript, metrics and analysis")
async def get_call(principal: ViewerDep, records: CallsDep, call_id: str) -> dict[str, Any]:
    try:
        uuid.UUID(call_id)
    except ValueError:
        raise CallNotFound(call_id[:64]) from None
    return call_view(await records.get(principal.tenant_id, call_id))
