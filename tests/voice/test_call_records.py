"""Call records: a call written when it ends, whatever ends it, with its outcome, transcript (as heard), LiveKit's
per-turn metrics and the facts; its thread a row of `threads` pinned to the served version; a failure mid-call
kept as outcome failed with the reason; an unknown number a no_config record that no tenant can read."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from livekit.agents import tts

from chorus.agents.errors import CallNotFound
from chorus.agents.storage.database import Database
from chorus.agents.tools.builtins import build_registry
from chorus.graphs.checkpointer import ChorusCheckpointer
from chorus.graphs.compiler import CompiledBot, GraphDeps, compile_bot
from chorus.runs.threads_repository import ThreadRepository
from chorus.voice.call_facts import CallFacts
from chorus.voice.call_recorder import CallRecorder
from chorus.voice.call_records import CALL_ANALYSIS_KIND, CallFilter, CallRecords
from chorus.voice.graph_llm import CallThread
from chorus.voice.routing import CallRoute, NoVoicebot, route_call
from chorus.voice.session_factory import build_session
from chorus.voice.simulate import offline_variant
from tests.conftest import Tenant, make_tenant
from tests.voice.test_routing import number, scheduler, store

ASK = "Is there appointment availability on 2030-01-07?"


async def routed(db: Database, tenant: Tenant, tmp_path: Path, **changes: Any) -> CallRoute:
    raw = scheduler(number(), number())
    raw.update(changes)
    await store(db, tenant, tmp_path, raw)
    meta = json.dumps({"tenant_id": tenant.tenant_id, "config_id": raw["config_metadata"]["config_id"]})
    return await route_call(db, call_id=str(uuid.uuid4()), metadata=meta, dialed=None)


def graph_of(db: Database, checkpointer: ChorusCheckpointer, route: CallRoute) -> CompiledBot:
    deps = GraphDeps(db=db, registry=build_registry(), checkpointer=checkpointer, offline=True)
    return compile_bot(route.config, deps)


async def serve_text_call(
    db: Database,
    checkpointer: ChorusCheckpointer,
    route: CallRoute,
    *,
    say: list[str],
    graph: CompiledBot | None = None,
) -> CallRecorder:
    """A call served in text mode (no room): the caller says each of `say`, then hangs up."""
    facts = CallFacts(call_id=str(uuid.uuid4()), caller_number="+14155550100", dialed_number="+14155550199")
    recorder = CallRecorder(db, facts)
    await recorder.serve(route)
    thread = CallThread(route.tenant_id, facts.call_id, route.serving.environment)
    voice = build_session(offline_variant(route.config), graph_of(db, checkpointer, route), thread, facts=facts)
    recorder.follow(voice.session)
    await voice.session.start(voice.agent)
    if voice.agent.greeting is not None:
        await voice.agent.greeting
    for words in say:
        await voice.session.run(user_input=words)
    await voice.brain.settled()
    await voice.session.aclose()
    await asyncio.wait_for(recorder.saved.wait(), 10)
    return recorder


async def test_a_call_is_recorded_when_its_session_closes(
    db: Database, checkpointer: ChorusCheckpointer, tenant: Tenant, tmp_path: Path
) -> None:
    route = await routed(db, tenant, tmp_path)
    recorder = await serve_text_call(db, checkpointer, route, say=[ASK, "Thank you"])
    record = await CallRecords(db).get(tenant.tenant_id, recorder.facts.call_id)
    assert record["outcome"] == "completed" and record["failure"] is None
    assert (record["assistant_id"], record["config_key"]) == (route.assistant_id, route.config_key)
    assert (record["config_version"], record["environment"]) == (route.serving.version, "production")
    assert (record["caller_number"], record["dialed_number"], record["direction"]) == (
        "+14155550100",
        "+14155550199",
        "inbound",
    )
    assert record["ended_at"] >= record["started_at"] and record["duration_s"] >= 0
    lines = [(line["role"], line["text"]) for line in record["transcript"]]
    assert lines[0] == ("bot", route.config.first_message)
    assert ("caller", ASK) in lines and ("caller", "Thank you") in lines
    answer = lines[lines.index(("caller", ASK)) + 1]
    assert answer[0] == "bot" and "2030-01-07" in answer[1]  # the tool's result, in words
    # One latency row per answered turn, from LiveKit's metrics (text mode: no speech, so no TTS figure).
    assert len(record["turns"]) == 2
    assert all(turn["llm_ttft_ms"] is not None and turn["llm_ttft_ms"] >= 0 for turn in record["turns"])
    assert record["facts"] == {"transfer": None, "voicemail": None, "dtmf": [], "recording": None}
    # Its post-call job is queued with it (its id is the call's), unless a running server already took it.
    async with db.connection() as conn:
        cur = await conn.execute("SELECT kind, tenant_id::text FROM queue_jobs WHERE job_id = %s", (record["call_id"],))
        job = await cur.fetchone()
    if job is not None:
        assert job == {"kind": CALL_ANALYSIS_KIND, "tenant_id": tenant.tenant_id}
    else:
        assert (await CallRecords(db).get(tenant.tenant_id, record["call_id"]))["analysis_status"] != "pending"
    # The call's thread is a thread of the tenant, pinned to the served version, on the voice channel.
    thread = await ThreadRepository(db, ttl_days=None).get(tenant.tenant_id, record["call_id"])
    assert (str(thread["assistant_id"]), thread["config_version"]) == (route.assistant_id, route.serving.version)
    assert thread["metadata"] | {"channel": "voice", "call_id": record["call_id"]} == thread["metadata"]


async def test_the_record_is_written_once_whatever_ends_the_call(
    db: Database, checkpointer: ChorusCheckpointer, tenant: Tenant, tmp_path: Path
) -> None:
    route = await routed(db, tenant, tmp_path)
    recorder = await serve_text_call(db, checkpointer, route, say=["hello"])
    recorder.facts.settle("transferred")  # a late report (e.g. the job's shutdown callback) changes nothing
    await recorder.finish("job shutdown")
    again = CallRecorder(db, recorder.facts)
    await again.finish()
    record = await CallRecords(db).get(tenant.tenant_id, recorder.facts.call_id)
    assert record["outcome"] == "completed"


async def test_a_failure_mid_call_is_recorded_failed_with_its_reason(
    db: Database, checkpointer: ChorusCheckpointer, tenant: Tenant, tmp_path: Path
) -> None:
    route = await routed(db, tenant, tmp_path)
    facts = CallFacts(call_id=str(uuid.uuid4()))
    recorder = CallRecorder(db, facts)
    await recorder.serve(route)
    voice = build_session(
        offline_variant(route.config),
        graph_of(db, checkpointer, route),
        CallThread(route.tenant_id, facts.call_id),
        facts=facts,
    )
    recorder.follow(voice.session)
    await voice.session.start(voice.agent)
    await voice.session.run(user_input="hello")
    # A speech provider fails for good: LiveKit reports each unrecoverable error to the session (as its TTS
    # does through its "error" event), and past its limit closes the session with the error.
    error = tts.TTSError(timestamp=0.0, label="elevenlabs", error=RuntimeError("provider down"), recoverable=False)
    for _ in range(voice.session.conn_options.max_unrecoverable_errors + 1):
        voice.session._on_error(error)
    await asyncio.wait_for(recorder.saved.wait(), 10)
    record = await CallRecords(db).get(tenant.tenant_id, facts.call_id)
    assert record["outcome"] == "failed"
    assert "provider down" in (record["failure"] or "")
    assert any(line["text"] == "hello" for line in record["transcript"])  # what was said before is kept


async def test_an_unknown_number_is_a_no_config_record_no_tenant_reads(db: Database, tenant: Tenant) -> None:
    facts = CallFacts(call_id=str(uuid.uuid4()), dialed_number=number())
    with pytest.raises(NoVoicebot) as refused:
        await route_call(db, call_id=facts.call_id, metadata=None, dialed=facts.dialed_number)
    facts.settle("no_config", refused.value.detail)  # as the worker does before its apology
    await CallRecorder(db, facts).finish()
    async with db.connection() as conn:
        cur = await conn.execute(
            "SELECT tenant_id, outcome, failure, analysis_status FROM calls WHERE call_id = %s", (facts.call_id,)
        )
        row = await cur.fetchone()
        jobs = await conn.execute("SELECT 1 FROM queue_jobs WHERE job_id = %s", (facts.call_id,))
        assert await jobs.fetchone() is None  # nothing to analyse, no one to tell
    assert row is not None and row["tenant_id"] is None and row["outcome"] == "no_config"
    assert "no voicebot answers" in row["failure"] and row["analysis_status"] == "none"
    with pytest.raises(CallNotFound):
        await CallRecords(db).get(tenant.tenant_id, facts.call_id)
    assert facts.call_id not in {r["call_id"] for r in await CallRecords(db).search(tenant.tenant_id, CallFilter())}


async def test_a_refused_call_is_apologised_to_and_recorded_whatever_fails(db: Database, tenant: Tenant) -> None:
    hung_up: list[str] = []

    async def hang_up() -> None:
        hung_up.append("apology")

    async def broken_line() -> None:
        raise ConnectionError("the room is gone")

    unknown = CallFacts(call_id=str(uuid.uuid4()), dialed_number=number())
    await CallRecorder(db, unknown).refused(NoVoicebot("no voicebot answers it"), hang_up=hang_up)
    # The database failed while the call was set up: a failure of the tenant's call, even if the hang-up fails.
    known = CallFacts(call_id=str(uuid.uuid4()), tenant_id=tenant.tenant_id)
    await CallRecorder(db, known).refused(OSError("connection refused"), hang_up=broken_line)
    assert hung_up == ["apology"]
    async with db.connection() as conn:
        cur = await conn.execute(
            "SELECT call_id::text, outcome, failure FROM calls WHERE call_id = ANY(%s::uuid[])",
            ([unknown.call_id, known.call_id],),
        )
        rows = {r["call_id"]: (r["outcome"], r["failure"]) for r in await cur.fetchall()}
    assert rows[unknown.call_id] == ("no_config", "no voicebot answers it")
    assert rows[known.call_id] == ("failed", "the call could not be set up: OSError: connection refused")


async def test_a_session_that_cannot_start_is_closed_and_recorded_failed(
    db: Database, checkpointer: ChorusCheckpointer, tenant: Tenant, tmp_path: Path
) -> None:
    route = await routed(db, tenant, tmp_path)
    facts = CallFacts(call_id=str(uuid.uuid4()))
    recorder = CallRecorder(db, facts)
    await recorder.serve(route)
    thread = CallThread(route.tenant_id, facts.call_id)
    voice = build_session(offline_variant(route.config), graph_of(db, checkpointer, route), thread, facts=facts)
    recorder.follow(voice.session)
    closed = asyncio.Event()
    voice.session.on("close", lambda _ev: closed.set())
    await voice.session.start(voice.agent)
    await recorder.start_failed(RuntimeError("room connection lost"), voice.session)
    assert closed.is_set()
    record = await CallRecords(db).get(tenant.tenant_id, facts.call_id)
    assert (record["outcome"], record["failure"]) == (
        "failed",
        "the session could not start: RuntimeError: room connection lost",
    )


async def test_another_tenants_call_is_not_found(
    db: Database, checkpointer: ChorusCheckpointer, tenant: Tenant, tmp_path: Path
) -> None:
    route = await routed(db, tenant, tmp_path)
    recorder = await serve_text_call(db, checkpointer, route, say=["hello"])
    other = await make_tenant(db)
    with pytest.raises(CallNotFound):
        await CallRecords(db).get(other.tenant_id, recorder.facts.call_id)
    assert await CallRecords(db).search(other.tenant_id, CallFilter()) == []


async def test_a_call_is_listed_in_progress_and_a_dead_workers_call_is_closed_failed(
    db: Database, checkpointer: ChorusCheckpointer, tenant: Tenant, tmp_path: Path
) -> None:
    """The record is opened when the call is routed: listed `in_progress` while it goes on, completed when it
    ends; one whose worker was killed (nothing ever completes it) is closed `failed` by the servers' sweep,
    saying why, and a late save of it changes nothing."""
    from datetime import timedelta

    from chorus.voice.call_records import WORKER_LOST, close_stale_calls

    route = await routed(db, tenant, tmp_path)
    records = CallRecords(db)
    facts = CallFacts(call_id=str(uuid.uuid4()), caller_number="+14155550100", dialed_number="+14155550199")
    recorder = CallRecorder(db, facts)
    await recorder.serve(route)
    live = await records.get(tenant.tenant_id, facts.call_id)
    assert (live["outcome"], live["ended_at"], live["config_version"]) == ("in_progress", None, route.serving.version)
    listed = await records.search(tenant.tenant_id, CallFilter(outcome="in_progress"))
    assert facts.call_id in [str(r["call_id"]) for r in listed]
    assert await close_stale_calls(db) == 0  # a call that just started is not stale

    # The worker is killed: the record stays in progress until the sweep closes it.
    async with db.connection() as conn:
        await conn.execute(
            "UPDATE calls SET started_at = now() - interval '5 hours' WHERE call_id = %s", (facts.call_id,)
        )
    assert await close_stale_calls(db, older_than=timedelta(hours=4)) >= 1
    closed = await records.get(tenant.tenant_id, facts.call_id)
    assert (closed["outcome"], closed["failure"]) == ("failed", WORKER_LOST)
    assert closed["ended_at"] is not None and closed["duration_s"] >= 5 * 3600 - 60
    facts.settle("completed")
    await recorder.finish()  # a worker that comes back late: the closed record stands
    assert (await records.get(tenant.tenant_id, facts.call_id))["outcome"] == "failed"

    # A call that ends normally completes its own in-progress record.
    done = await serve_text_call(db, checkpointer, route, say=["hello"])
    assert (await records.get(tenant.tenant_id, done.facts.call_id))["outcome"] == "completed"
