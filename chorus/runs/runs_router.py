"""Runs (LangGraph Agent Server API): stream, wait, background create, get, list, join, cancel."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse

from chorus.agents.api_deps import DeveloperDep, PrincipalDep
from chorus.agents.errors import Conflict
from chorus.runs.deps import ManagerDep, ThreadsDep
from chorus.runs.manager import RunHandle, RunManager
from chorus.runs.schemas import RunCreate
from chorus.runs.serialization import jsonable
from chorus.runs.streaming import run_events
from chorus.runs.threads_repository import ThreadRepository, run_view

router = APIRouter(tags=["runs"])
_SSE_HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}


def _outcome(handle: RunHandle) -> Any:
    if handle.error is not None:
        return {"__error__": handle.error}
    return jsonable(handle.result or {})


async def _stream(
    request: Request, manager: RunManager, tenant_id: str, thread_id: str, body: RunCreate
) -> StreamingResponse:
    handle = await manager.submit(tenant_id, thread_id, body)
    queue = handle.subscribe()
    return StreamingResponse(
        run_events(
            handle,
            queue,
            request=request,
            manager=manager,
            cancel_on_disconnect=body.on_disconnect == "cancel",
        ),
        media_type="text/event-stream",
        headers={**_SSE_HEADERS, "Content-Location": f"/threads/{handle.thread_id}/runs/{handle.run_id}"},
    )


async def _stateless_thread(threads: ThreadRepository, tenant_id: str) -> str:
    return str((await threads.create(tenant_id, thread_id=None, metadata={"stateless": True}))["thread_id"])


@router.post("/threads/{thread_id}/runs/stream", summary="Create a run and stream its events (SSE)")
async def stream_run(
    thread_id: str, body: RunCreate, request: Request, principal: DeveloperDep, manager: ManagerDep
) -> StreamingResponse:
    return await _stream(request, manager, principal.tenant_id, thread_id, body)


@router.post("/threads/{thread_id}/runs/wait", summary="Create a run and wait for its final state")
async def wait_run(thread_id: str, body: RunCreate, principal: DeveloperDep, manager: ManagerDep) -> Any:
    handle = await manager.submit(principal.tenant_id, thread_id, body)
    await handle.done.wait()
    return _outcome(handle)


@router.post("/threads/{thread_id}/runs", summary="Create a run in the background")
async def create_run(thread_id: str, body: RunCreate, principal: DeveloperDep, manager: ManagerDep) -> Any:
    handle = await manager.submit(principal.tenant_id, thread_id, body)
    return run_view(handle.row)


@router.post("/runs/stream", summary="Stream a run on a new thread (stateless)")
async def stateless_stream(
    body: RunCreate, request: Request, principal: DeveloperDep, manager: ManagerDep, threads: ThreadsDep
) -> StreamingResponse:
    thread_id = await _stateless_thread(threads, principal.tenant_id)
    return await _stream(request, manager, principal.tenant_id, thread_id, body)


@router.post("/runs/wait", summary="Run on a new thread (stateless) and wait for the final state")
async def stateless_wait(body: RunCreate, principal: DeveloperDep, manager: ManagerDep, threads: ThreadsDep) -> Any:
    thread_id = await _stateless_thread(threads, principal.tenant_id)
    handle = await manager.submit(principal.tenant_id, thread_id, body)
    await handle.done.wait()
    if body.on_completion == "delete":
        await manager.delete_thread(principal.tenant_id, thread_id)
    return _outcome(handle)


@router.get("/threads/{thread_id}/runs", summary="List a thread's runs")
async def list_runs(
    thread_id: str,
    principal: PrincipalDep,
    threads: ThreadsDep,
    limit: int = Query(10, ge=1, le=1000),
    offset: int = Query(0, ge=0),
    status: str | None = None,
) -> list[dict[str, Any]]:
    rows = await threads.list_runs(principal.tenant_id, thread_id, limit=limit, offset=offset, status=status)
    return [run_view(r) for r in rows]


@router.get("/threads/{thread_id}/runs/{run_id}", summary="Get a run")
async def get_run(thread_id: str, run_id: str, principal: PrincipalDep, threads: ThreadsDep) -> dict[str, Any]:
    return run_view(await threads.get_run(principal.tenant_id, thread_id, run_id))


@router.get("/threads/{thread_id}/runs/{run_id}/join", summary="Wait for a run; return the thread's final state")
async def join_run(
    thread_id: str, run_id: str, principal: PrincipalDep, threads: ThreadsDep, manager: ManagerDep
) -> Any:
    row = await threads.get_run(principal.tenant_id, thread_id, run_id)
    handle = manager.handle(str(row["run_id"]))
    if handle is not None:
        await handle.done.wait()
        return _outcome(handle)
    thread = await threads.get(principal.tenant_id, thread_id)
    return thread["values"] or {}


@router.get("/threads/{thread_id}/runs/{run_id}/stream", summary="Join a run's event stream")
async def join_stream(
    thread_id: str,
    run_id: str,
    request: Request,
    principal: PrincipalDep,
    threads: ThreadsDep,
    manager: ManagerDep,
) -> StreamingResponse:
    row = await threads.get_run(principal.tenant_id, thread_id, run_id)
    handle = manager.handle(str(row["run_id"]))
    if handle is None:

        async def ended() -> Any:
            yield b""

        return StreamingResponse(ended(), media_type="text/event-stream", headers=_SSE_HEADERS)
    queue = handle.subscribe()
    return StreamingResponse(
        run_events(handle, queue, request=request, manager=manager, cancel_on_disconnect=False),
        media_type="text/event-stream",
        headers=_SSE_HEADERS,
    )


@router.post("/threads/{thread_id}/runs/{run_id}/cancel", summary="Cancel a run (interrupt or rollback)")
async def cancel_run(
    thread_id: str,
    run_id: str,
    principal: DeveloperDep,
    manager: ManagerDep,
    wait: bool = False,
    action: Literal["interrupt", "rollback"] = "interrupt",
) -> Response:
    await manager.cancel(principal.tenant_id, thread_id, run_id, action=action, wait=wait)
    return Response(status_code=200 if wait else 202)


@router.delete("/threads/{thread_id}/runs/{run_id}", status_code=204, summary="Delete a finished run")
async def delete_run(thread_id: str, run_id: str, principal: DeveloperDep, threads: ThreadsDep) -> Response:
    row = await threads.get_run(principal.tenant_id, thread_id, run_id)
    if row["status"] in ("pending", "running"):
        raise Conflict("the run is still active; cancel it first")
    await threads.delete_run(str(row["run_id"]))
    return Response(status_code=204)
