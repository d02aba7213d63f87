"""Outbound calls over HTTP: `POST /api/v1/calls` (developer role) dials a number with a voicebot; 202: the call
is dispatched to the voice worker, which dials and reports how it went in the call's record."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from chorus.agents.api_deps import DbDep, DeveloperDep
from chorus.agents.errors import Forbidden
from chorus.voice.livekit_access import LiveKitAccess
from chorus.voice.outbound import dispatch_call, prepare_call

router = APIRouter(prefix="/api/v1/calls", tags=["calls"])


class CallCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    config_id: str = Field(min_length=1, max_length=128, description="The voicebot: its config id or assistant id.")
    to: str = Field(max_length=32, description="The number to call, in E.164 form (e.g. +15551234567).")
    from_: str | None = Field(
        default=None,
        alias="from",
        max_length=32,
        description="The caller ID: one of the config's numbers (default its sip_config.primary_endpoint).",
    )


class CallDispatched(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    call_id: str
    status: str = Field(default="dispatched", description="The worker dials next; the call record tells the rest.")
    config_id: str
    room: str
    dispatch_id: str
    to: str
    from_: str = Field(alias="from")


@router.post("", status_code=202, response_model=CallDispatched, response_model_by_alias=True)
async def create_call(body: CallCreate, principal: DeveloperDep, db: DbDep) -> CallDispatched:
    """Call `to` with the voicebot `config_id`: 422 for a number not in E.164 form, 404 for a config this tenant
    does not have, 400 for a config that is not a voicebot, 409 when its sip_config.outbound_calls_enabled is
    false, 503 when LiveKit is not configured or refuses the dispatch, 403 for a staging key (a call serves
    what production serves)."""
    if principal.environment != "production":
        raise Forbidden(
            f"this key works in {principal.environment}, and a phone call serves what production serves: place"
            " outbound calls with a production key"
        )
    call = await prepare_call(
        db, tenant_id=principal.tenant_id, config=body.config_id, to=body.to, from_number=body.from_
    )
    async with LiveKitAccess.from_env().client() as lk:
        placed = await dispatch_call(lk, call)
    return CallDispatched.model_validate(
        {
            "call_id": placed.job.call_id,
            "config_id": placed.job.config_id,
            "room": placed.room,
            "dispatch_id": placed.dispatch_id or "",
            "to": placed.job.to,
            "from": placed.job.from_number,
        }
    )
