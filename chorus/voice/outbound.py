"""Outbound calls. Placing one (`chorus voice call`, `POST /api/v1/calls`) checks the request and dispatches the
worker to a new room with the call in the dispatch metadata; the worker, seeing an outbound job, dials the callee
with CreateSIPParticipant on the config's primary outbound trunk and, when that fails (a SIP error, no answer),
on its failover trunk. Which trunk answered and the SIP statuses go into the call's facts."""

from __future__ import annotations

import json
import logging
import re
import uuid
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import aiohttp
from livekit import api
from livekit.protocol import agent_dispatch, sip

from chorus.agents.configs.models import BotConfig
from chorus.agents.configs.repository import ConfigRepository
from chorus.agents.errors import BadRequest, Conflict, InvalidInput, Unavailable
from chorus.agents.storage.database import Database
from chorus.voice.call_facts import CallFacts
from chorus.voice.sip_sync import AGENT_NAME, Role, outbound_trunks

if TYPE_CHECKING:
    from livekit.agents import JobContext

    from chorus.voice.session_factory import VoiceCall

log = logging.getLogger(__name__)

E164 = re.compile(r"\+[1-9][0-9]{6,14}")  # whole (fullmatch), ASCII digits only
RINGING_TIMEOUT_S = 30  # how long a callee's phone rings before the trunk counts as not answered


def check_number(value: str, *, field: str) -> str:
    if not isinstance(value, str) or not E164.fullmatch(value):
        raise InvalidInput(
            f"{field} {value!r} is not a phone number in E.164 form: a plus sign, the country code and the number, "
            "digits only (e.g. +15551234567)",
            errors=[{"path": f"$.{field}", "message": "expected E.164, e.g. +15551234567"}],
        )
    return value


@dataclass(frozen=True)
class OutboundJob:
    """An outbound call as the worker's dispatch metadata carries it."""

    tenant_id: str
    config_id: str  # the config's id (its config_metadata.config_id)
    call_id: str
    to: str
    from_number: str
    direction: str = "outbound"

    def metadata(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def parse(cls, raw: str | None) -> OutboundJob | None:
        """The outbound call a job's metadata describes; None for any other job (an inbound call)."""
        try:
            data = json.loads(raw) if raw else None
        except ValueError:
            return None
        if not isinstance(data, dict) or data.get("direction") != "outbound":
            return None
        try:
            return cls(
                tenant_id=str(data["tenant_id"]),
                config_id=str(data["config_id"]),
                call_id=str(data["call_id"]),
                to=check_number(str(data["to"]), field="to"),
                from_number=str(data.get("from_number") or ""),
            )
        except (KeyError, InvalidInput) as exc:
            raise BadRequest(f"the outbound job's metadata is incomplete or malformed: {exc}") from None


@dataclass(frozen=True)
class PlacedCall:
    """A call checked and ready to dispatch (`dispatch_id` once dispatched)."""

    job: OutboundJob
    room: str
    dispatch_id: str | None = None


async def prepare_call(
    db: Database, *, tenant_id: str, config: str, to: str, from_number: str | None = None
) -> PlacedCall:
    """Check an outbound call for the tenant's voicebot `config` (its id or assistant id): a malformed number is
    a 422, another tenant's or an unknown config a 404, a config that is not a voicebot a 400, one that does not
    make outbound calls a 409."""
    check_number(to, field="to")
    if from_number is not None:
        check_number(from_number, field="from")
    stored = await ConfigRepository(db).find(tenant_id, config)
    if stored.product_type != "voicebot":
        raise BadRequest(f"config {stored.key!r} is a {stored.product_type}: only a voicebot can make phone calls")
    cfg = BotConfig.model_validate(stored.config)
    sc = cfg.sip_config
    if sc is None or not sc.outbound_calls_enabled:
        raise Conflict(
            f"config {stored.key!r} does not make outbound calls: set sip_config.outbound_calls_enabled to true, "
            "then run `chorus sip sync` to create its outbound trunks"
        )
    own = [n for n in (sc.primary_endpoint, sc.failover_endpoint) if n]
    if from_number is not None and from_number not in own:
        raise InvalidInput(
            f"from {from_number} is not one of config {stored.key!r}'s numbers ({', '.join(own)}): calls go out "
            "from the numbers its trunks own",
            errors=[{"path": "$.from", "message": f"expected one of {', '.join(own)}"}],
        )
    call_id = str(uuid.uuid4())
    prefix = (cfg.livekit_config.room_prefix if cfg.livekit_config else None) or stored.key
    job = OutboundJob(tenant_id, stored.key, call_id, to, from_number or sc.primary_endpoint)
    return PlacedCall(job, room=f"{prefix}-out-{call_id}")


async def dispatch_call(lk: api.LiveKitAPI, call: PlacedCall) -> PlacedCall:
    """Dispatch the worker (agent chorus-voicebot) to the call's room; LiveKit refusing or unreachable is a 503."""
    request = agent_dispatch.CreateAgentDispatchRequest(
        agent_name=AGENT_NAME, room=call.room, metadata=call.job.metadata()
    )
    try:
        dispatch = await lk.agent_dispatch.create_dispatch(request)
    except api.ServerError as exc:
        raise Unavailable(f"LiveKit refused to dispatch the call: {exc.code} {exc.message}".strip()) from None
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise Unavailable(f"cannot reach LiveKit to dispatch the call: {exc or type(exc).__name__}") from None
    job = call.job
    log.info("outbound call %s to %s (config %s) dispatched in room %s", job.call_id, job.to, job.config_id, call.room)
    return PlacedCall(call.job, call.room, dispatch.id)


def _failure(exc: BaseException) -> tuple[int | None, str]:
    if isinstance(exc, api.SipCallError) and exc.sip_status_code is not None:
        return exc.sip_status_code, f"{exc.sip_status_code} {exc.sip_status or ''}".strip()
    if isinstance(exc, api.ServerError):
        return None, f"{exc.code}: {exc.message}"
    return None, str(exc) or type(exc).__name__


async def dial(
    lk: api.LiveKitAPI, job: OutboundJob, *, room: str, facts: CallFacts, identity: str | None = None
) -> str | None:
    """Ring the callee into `room` through the primary outbound trunk, then the failover one. Returns the
    participant identity of the answered callee, or None when neither trunk connected (then the call is
    settled failed with every trunk's reason). `facts.dial` records which trunk answered and each SIP status."""
    identity = identity or f"callee-{job.call_id}"
    attempts: list[dict[str, Any]] = []
    facts.dial = {"trunk": None, "sip_status": None, "attempts": attempts}
    try:
        trunks = await outbound_trunks(lk, tenant_id=job.tenant_id, config_key=job.config_id)
    except (api.ServerError, aiohttp.ClientError, TimeoutError) as exc:
        facts.settle("failed", f"could not list the outbound trunks: {_failure(exc)[1]}")
        return None
    roles: tuple[Role, ...] = ("primary", "failover")
    for role in roles:
        trunk_id = trunks.get(role)
        if trunk_id is None:
            attempts.append({"trunk": role, "error": "no outbound trunk: run `chorus sip sync` for this config"})
            continue
        request = sip.CreateSIPParticipantRequest(
            sip_trunk_id=trunk_id,
            sip_call_to=job.to,
            sip_number=job.from_number,
            room_name=room,
            participant_identity=identity,
            participant_name=job.to,
            wait_until_answered=True,
        )
        request.ringing_timeout.seconds = RINGING_TIMEOUT_S
        try:
            await lk.sip.create_sip_participant(request)
        except (api.ServerError, aiohttp.ClientError, TimeoutError) as exc:
            code, reason = _failure(exc)
            attempts.append({"trunk": role, "trunk_id": trunk_id, "sip_status": code, "error": reason})
            log.warning("call %s: the %s trunk did not connect %s: %s", job.call_id, role, job.to, reason)
            continue
        attempts.append({"trunk": role, "trunk_id": trunk_id, "sip_status": 200})
        facts.dial.update(trunk=role, sip_status=200)
        return identity
    reasons = "; ".join(f"{a['trunk']}: {a['error']}" for a in attempts)
    facts.settle("failed", f"the call to {job.to} did not connect ({reasons})")
    return None


async def serve_outbound(ctx: JobContext, voice: VoiceCall, cfg: BotConfig, job: OutboundJob, *, offline: bool) -> None:
    """The worker's side of an outbound call, in the job's room: the session starts silent, the callee is dialed
    (primary trunk, then failover), the answer is screened for voicemail (voicemail.py), and a call that does not
    connect, reaches a machine or fails is hung up (the room deleted) with its outcome in `voice.facts`."""
    # Imported here: the API server imports this module for `POST /api/v1/calls` without the voice stack.
    from chorus.voice.voicemail import OutboundAgent, answer_outbound
    from chorus.voice.voicemail_classifier import classifier_for

    facts = voice.facts
    facts.direction, facts.dialed_number, facts.caller_number = "outbound", job.to, job.from_number or None
    facts.room = ctx.room.name
    voice.agent = OutboundAgent(cfg.first_message)

    async def dial_callee() -> bool:
        identity = await dial(ctx.api, job, room=ctx.room.name, facts=facts)
        if identity is None:
            return False
        callee = getattr(ctx.room, "remote_participants", {}).get(identity)
        if voice.phone is not None and callee is not None:  # transfers, DTMF, background sound, as inbound
            try:
                await voice.phone.attach(ctx, callee)
            except Exception:  # the conversation goes on without them
                log.exception("call %s: the phone features could not attach", job.call_id)
        return True

    async def hang_up() -> None:
        voice.session.shutdown()
        try:
            await ctx.api.room.delete_room(api.DeleteRoomRequest(room=ctx.room.name))
        except (api.ServerError, aiohttp.ClientError, TimeoutError) as exc:
            log.warning("call %s: could not delete room %s: %s", job.call_id, ctx.room.name, exc)

    try:
        await voice.session.start(voice.agent, room=ctx.room)
    except Exception as exc:
        facts.settle("failed", f"the voice session did not start: {exc}")
        await hang_up()
        raise
    await answer_outbound(voice, cfg, classify=classifier_for(cfg, offline=offline), dial=dial_callee, hang_up=hang_up)
