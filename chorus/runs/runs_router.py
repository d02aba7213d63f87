"""Runs (LangGraph Agent Server API): stream, wait, background create, get, list, join, cancel."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Header, Query, Response
from fastapi.responses import StreamingResponse

from chorus.agents.api_deps import DeveloperDep, PrincipalDep
from chorus.agents.errors import ChorusError, Conflict, InvalidInput
from chorus.agents.tenancy.keys import Principal
from chorus.runs.admission import check_webhook
from chorus.runs.deps import EngineDep, ThreadsDep
from chorus.runs.engine import RunEngine
from chorus.runs.resources import Run, RunOutput, RunRefused
from chorus.runs.runs_repository import run_view
from chorus.runs.schemas import BatchRunCreate, RunCancelMany, RunCreate
from chorus.runs.serialization import jsonable
from chorus.runs.stream_modes import STREAM_MODES
from chorus.runs.streaming import SSE_HEADERS, join_response, run_events
from chorus.runs.threads_repository import ThreadRepository

router = APIRouter(tags=["runs"])
# Documented, not validated (docs/decisions.md): the bot's own state, sent as the run left it.
OUTPUT: dict[str, Any] = {"responses": {200: {"model": RunOutput}}}


async def _stream(engine: RunEngine, principal: Principal, thread_id: str, body: RunCreate) -> StreamingResponse:
    handle = await engine.submit(principal.tenant_id, thread_id, body, environment=principal.environment)
    _missed, queue = handle.subscribe()
    run = f"/threads/{handle.thread_id}/runs/{handle.run_id}"
    return StreamingResponse(
        run_events(handle, queue, engine=engine, cancel_on_disconnect=body.on_disconnect == "cancel"),
        media_type="text/event-stream",
        # Content-Location names the run (useStream reads it); Location is where to rejoin its stream.
        headers={**SSE_HEADERS, "Content-Location": run, "Location": f"{run}/stream"},
    )


async def _stateless_thread(threads: ThreadRepository, tenant_id: str) -> str:
    return str((await threads.create(tenant_id, thread_id=None, metadata={"stateless": True}))["thread_id"])


@router.post("/threads/{thread_id}/runs/stream", summary="Create a run and stream its events (SSE)")
async def stream_run(thread_id: str, body: RunCreate, principal: DeveloperDep, engine: EngineDep) -> StreamingResponse:
    await check_webhook(body.webhook)
    return await _stream(engine, principal, thread_id, body)


@router.post("/threads/{thread_id}/runs/wait", summary="Create a run and wait for its final state", **OUTPUT)
async def wait_run(thread_id: str, body: RunCreate, principal: DeveloperDep, engine: EngineDep) -> Any:
    await check_webhook(body.webhook)
    handle = await engine.submit(principal.tenant_id, thread_id, body, environment=principal.environment)
    await handle.done.wait()
    return jsonable(handle.outcome())


@router.post("/threads/{thread_id}/runs", summary="Create a run in the background", response_model=Run)
async def create_run(thread_id: str, body: RunCreate, principal: DeveloperDep, engine: EngineDep) -> Any:
    await check_webhook(body.webhook)
    handle = await engine.submit(principal.tenant_id, thread_id, body, environment=principal.environment)
    return run_view(handle.row or {})


@router.post("/runs/stream", summary="Stream a run on a new thread (stateless)")
async def stateless_stream(
    body: RunCreate, principal: DeveloperDep, engine: EngineDep, threads: ThreadsDep
) -> StreamingResponse:
    await check_webhook(body.webhook)  # before the thread is made: a refused run leaves nothing behind
    thread_id = await _stateless_thread(threads, principal.tenant_id)
    return await _stream(engine, principal, thread_id, body)


@router.post("/runs/wait", summary="Run on a new thread (stateless) and wait for the final state", **OUTPUT)
async def stateless_wait(body: RunCreate, principal: DeveloperDep, engine: EngineDep, threads: ThreadsDep) -> Any:
    await check_webhook(body.webhook)
    thread_id = await _stateless_thread(threads, principal.tenant_id)
    handle = await engine.submit(principal.tenant_id, thread_id, body, environment=principal.environment)
    await handle.done.wait()
    if body.on_completion == "delete":
        await engine.delete_thread(principal.tenant_id, thread_id)
    return jsonable(handle.outcome())


@router.post(
    "/runs/batch",
    summary="Create several background runs (each on its thread, or a new one)",
    response_model=list[Run | RunRefused],
)
async def create_batch(
    body: Annotated[list[BatchRunCreate], Body(min_length=1, max_length=100)],
    principal: DeveloperDep,
    engine: EngineDep,
    threads: ThreadsDep,
) -> list[dict[str, Any]]:
    """Every run is checked before any is created (its thread exists, its assistant resolves); a run refused
    by its thread's multitask strategy at creation is reported in place as `{"error", "detail"}`."""
    for i, item in enumerate(body):
        if item.thread_id is not None:
            await threads.get(principal.tenant_id, item.thread_id)
        if not item.input or not item.input.messages:
            raise InvalidInput(
                f"[{i}].input.messages is required in a batch run",
                errors=[{"path": f"$[{i}].input.messages", "message": "required"}],
            )
        await check_webhook(item.webhook, path=f"$[{i}].webhook")
    out: list[dict[str, Any]] = []
    for item in body:
        thread_id = item.thread_id or await _stateless_thread(threads, principal.tenant_id)
        try:
            handle = await engine.submit(principal.tenant_id, thread_id, item, environment=principal.environment)
        except ChorusError as exc:
            out.append(exc.to_dict())
            continue
        out.append(run_view(handle.row or {}))
    return out


@router.post("/runs/cancel", status_code=204, summary="Cancel several runs (by ids, thread or status)")
async def cancel_many(
    body: RunCancelMany,
    principal: DeveloperDep,
    engine: EngineDep,
    action: Literal["interrupt", "rollback"] = "interrupt",
) -> Response:
    await engine.cancel_many(
        principal.tenant_id, thread_id=body.thread_id, run_ids=body.run_ids, status=body.status, action=action
    )
    return Response(status_code=204)


@router.get("/threads/{thread_id}/runs", summary="List a thread's runs", response_model=list[Run])
async def list_runs(
    thread_id: str,
    principal: PrincipalDep,
    threads: ThreadsDep,
    engine: EngineDep,
    limit: int = Query(10, ge=1, le=1000),
    offset: int = Query(0, ge=0),
    status: str | None = None,
) -> list[dict[str, Any]]:
    await threads.get(principal.tenant_id, thread_id)
    rows = await engine.runs.list_for_thread(principal.tenant_id, thread_id, limit=limit, offset=offset, status=status)
    return [run_view(r) for r in rows]


@router.get("/threads/{thread_id}/runs/{run_id}", summary="Get a run", response_model=Run)
async def get_run(thread_id: str, run_id: str, principal: PrincipalDep, engine: EngineDep) -> dict[str, Any]:
    return run_view(await engine.runs.get(principal.tenant_id, thread_id, run_id))


@router.get(
    "/threads/{thread_id}/runs/{run_id}/join", summary="Wait for a run; return the thread's final state", **OUTPUT
)
async def join_run(thread_id: str, run_id: str, principal: PrincipalDep, engine: EngineDep) -> Any:
    return jsonable(await engine.join(principal.tenant_id, thread_id, run_id))


def _join_modes(stream_mode: list[str] | None) -> list[str] | None:
    """`stream_mode` of a join: repeated parameters (Python SDK) or one JSON array (JS SDK); None: all."""
    modes: list[str] = []
    for value in stream_mode or []:
        try:
            parsed = json.loads(value) if value.startswith("[") else value
        except json.JSONDecodeError:
            parsed = value
        modes.extend(m for m in (parsed if isinstance(parsed, list) else [parsed]) if m)
    if not modes:
        return None
    bad = [m for m in modes if m not in STREAM_MODES]
    if bad:
        raise InvalidInput(
            f"unknown stream_mode {bad}; the stream modes are {list(STREAM_MODES)}",
            errors=[{"path": "$.query.stream_mode", "message": f"unknown: {bad}"}],
        )
    return modes


@router.get("/threads/{thread_id}/runs/{run_id}/stream", summary="Join a run's event stream")
async def join_stream(
    thread_id: str,
    run_id: str,
    principal: PrincipalDep,
    engine: EngineDep,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
    stream_mode: Annotated[list[str] | None, Query()] = None,
    cancel_on_disconnect: bool = False,
) -> StreamingResponse:
    """The run's events from now on; with `Last-Event-ID`, first those after that id (`-1`: from the start).
    `cancel_on_disconnect` cancels the run when this client leaves: a write, so it needs the developer role."""
    if cancel_on_disconnect:
        principal.require("developer")
    return await join_response(
        engine,
        principal.tenant_id,
        thread_id,
        run_id,
        last_event_id=last_event_id,
        cancel_on_disconnect=cancel_on_disconnect,
        modes=_join_modes(stream_mode),
    )


@router.post(
    "/threads/{thread_id}/runs/{run_id}/cancel",
    summary="Cancel a run (interrupt or rollback)",
    status_code=202,
    response_class=Response,
    responses={
        202: {"description": "the cancel is on its way (no body)"},
        204: {"description": "with `wait=true`: the run has ended (no body)"},
    },
)
async def cancel_run(
    thread_id: str,
    run_id: str,
    principal: DeveloperDep,
    engine: EngineDep,
    wait: bool = False,
    action: Literal["interrupt", "rollback"] = "interrupt",
) -> Response:
    await engine.cancel(principal.tenant_id, thread_id, run_id, action=action, wait=wait)
    # No body either way: 204 once the run has ended (wait), 202 when the cancel is on its way. The JS SDK
    # parses any other status as JSON.
    return Response(status_code=204 if wait else 202)


@router.delete("/threads/{thread_id}/runs/{run_id}", status_code=204, summary="Delete a finished run")
async def delete_run(thread_id: str, run_id: str, principal: DeveloperDep, engine: EngineDep) -> Response:
    row = await engine.runs.get(principal.tenant_id, thread_id, run_id)
    if not await engine.runs.delete_finished(principal.tenant_id, str(row["run_id"])):
        raise Conflict("the run is still queued or running; cancel it first, then delete it")
    return Response(status_code=204)
