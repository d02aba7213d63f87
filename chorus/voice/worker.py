"""The LiveKit Agents worker (`chorus voice start|dev`): one AgentServer with an explicit agent name; each job
is a call. The call is routed to its voicebot (routing.py), pinned to the version production serves, and
served by a session built from that config (session_factory.py) on the config's compiled graph. A call no
voicebot answers hears a short apology and is hung up (its room deleted), and is logged."""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass
from typing import Any

from livekit import api
from livekit.agents import Agent, AgentServer, AgentSession, JobContext

from chorus.agents.errors import NotFound
from chorus.agents.secrets.master_key import load_vault_key
from chorus.agents.secrets.repository import SecretRepository
from chorus.agents.secrets.service import SecretVault
from chorus.agents.settings import Settings, load_settings
from chorus.agents.storage.database import Database, open_database
from chorus.agents.tools.builtins import build_registry
from chorus.agents.tools.registry import ToolContext
from chorus.graphs.checkpointer import ChorusCheckpointer
from chorus.graphs.compiler import GraphCache, GraphDeps
from chorus.voice.call_facts import CallFacts
from chorus.voice.call_recorder import CallRecorder, caller_number
from chorus.voice.graph_llm import CallThread
from chorus.voice.offline_tts import EspeakTTS
from chorus.voice.outbound import OutboundJob, serve_outbound
from chorus.voice.provider_keys import ProviderKeys
from chorus.voice.recording import record_call
from chorus.voice.routing import SIP_DIALED, CallRoute, route_call
from chorus.voice.session_factory import build_session

log = logging.getLogger(__name__)

AGENT_NAME = "chorus-voicebot"
APOLOGY = "Sorry, this number is not in service. Goodbye."
# The vault names of the speech providers' keys (per tenant, per environment).
DEEPGRAM_SECRET = "DEEPGRAM_API_KEY"
ELEVENLABS_SECRET = "ELEVEN_API_KEY"


@dataclass
class WorkerResources:
    """What a job process shares between its calls: the database, the checkpointer, compiled graphs."""

    settings: Settings
    db: Database
    graphs: GraphCache
    vault: SecretVault


_resources: WorkerResources | None = None
_opening = asyncio.Lock()


async def resources() -> WorkerResources:
    global _resources
    async with _opening:
        if _resources is None:
            settings = load_settings()
            db = await open_database(settings)
            checkpointer = ChorusCheckpointer(db.pool)
            await checkpointer.setup()
            vault = SecretVault(SecretRepository(db), load_vault_key(settings))
            deps = GraphDeps(
                db=db, registry=build_registry(), checkpointer=checkpointer, offline=settings.offline, secrets=vault
            )
            _resources = WorkerResources(settings, db, GraphCache(deps), vault)
        return _resources


async def provider_keys(res: WorkerResources, route: CallRoute, call_id: str) -> ProviderKeys:
    """The speech providers' keys the config needs, from its tenant's vault (in the served environment)."""
    lk = route.config.livekit_config
    ctx = ToolContext(
        tenant_id=route.tenant_id,
        db=res.db,
        thread_id=call_id,
        environment=route.serving.environment,
        secrets=res.vault,
    )

    async def reveal(name: str, provider: str | None, wanted: str) -> str | None:
        if (provider or wanted) != wanted:
            return None
        try:
            return await res.vault.reveal(ctx, name, tool_name=f"voice:{wanted}")
        except NotFound:
            return None  # build_session says which key is missing

    return ProviderKeys(
        deepgram=await reveal(DEEPGRAM_SECRET, lk.stt_provider if lk else None, "deepgram"),
        elevenlabs=await reveal(ELEVENLABS_SECRET, lk.tts_provider if lk else None, "elevenlabs"),
    )


async def apologise_and_hang_up(ctx: JobContext) -> None:
    session: AgentSession[Any] = AgentSession(tts=EspeakTTS())
    await session.start(Agent(instructions=""), room=ctx.room)
    await session.say(APOLOGY, allow_interruptions=False)
    await session.aclose()
    await ctx.api.room.delete_room(api.DeleteRoomRequest(room=ctx.room.name))


async def entrypoint(ctx: JobContext) -> None:
    await ctx.connect()
    outbound = OutboundJob.parse(ctx.job.metadata)  # an outbound call: no one is in the room until it is dialed
    participant = None if outbound else await ctx.wait_for_participant()
    call_id = outbound.call_id if outbound else str(uuid.uuid4())
    res = await resources()
    dialed = participant.attributes.get(SIP_DIALED) if participant else None
    caller = caller_number(participant) if participant else None
    facts = CallFacts(call_id=call_id, dialed_number=dialed, caller_number=caller, room=ctx.room.name)
    if outbound is not None:
        facts.direction, facts.dialed_number = "outbound", outbound.to
        facts.caller_number = outbound.from_number or None
    recorder = CallRecorder(res.db, facts, thread_ttl_days=res.settings.thread_ttl_days)
    ctx.add_shutdown_callback(recorder.finish)  # whatever ends the call, its record is written
    try:
        route = await route_call(res.db, call_id=call_id, metadata=ctx.job.metadata or None, dialed=dialed)
        await recorder.serve(route)
        keys = await provider_keys(res, route, call_id)
        graph = res.graphs.get(
            route.assistant_id,
            route.serving.version,
            route.config,
            variant=(route.serving.environment, route.serving.overrides_revision),
        )
        voice = build_session(
            route.config,
            graph,
            CallThread(route.tenant_id, call_id, route.serving.environment),
            keys=keys,
            facts=facts,
        )
    except Exception as exc:  # no voicebot, a missing key, the database: an apology, a hang-up, a record
        await recorder.refused(exc, hang_up=lambda: apologise_and_hang_up(ctx))
        return
    log.info(
        "call %s: %s v%s (%s) for tenant %s",
        call_id,
        route.config_key,
        route.serving.version,
        route.serving.environment,
        route.tenant_id,
    )
    recorder.follow(voice.session)
    recorder.alongside(record_call(ctx.api.egress, room=ctx.room.name, facts=facts, cfg=route.config))
    if outbound is not None:
        await serve_outbound(ctx, voice, route.config, outbound, offline=res.settings.offline)
        return
    try:
        await voice.session.start(voice.agent, room=ctx.room)
    except Exception as exc:  # a call that cannot start is settled failed, its session closed, its record kept
        await recorder.start_failed(exc, voice.session)
        raise
    if voice.phone is not None and participant is not None:
        await voice.phone.attach(ctx, participant)


def create_server() -> AgentServer:
    """The worker: LIVEKIT_URL, LIVEKIT_API_KEY and LIVEKIT_API_SECRET configure it; explicit dispatch only."""
    server = AgentServer()
    server.rtc_session(entrypoint, agent_name=AGENT_NAME)
    return server
