"""Threads (LangGraph Agent Server API): create (with ttl, supersteps), get, search, count, update, copy,
delete, prune; state (now, at a checkpoint, updated), history."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Response

from chorus.agents.api_deps import DeveloperDep, PrincipalDep
from chorus.agents.errors import Conflict, InvalidInput, NotFound
from chorus.runs.deps import EngineDep, ThreadsDep, ThreadServiceDep
from chorus.runs.pagination import pagination_headers
from chorus.runs.resources import Thread, ThreadPruneResult, ThreadState, ThreadStateUpdated
from chorus.runs.schemas import (
    HistoryRequest,
    StateAtCheckpoint,
    ThreadCount,
    ThreadCreate,
    ThreadPatch,
    ThreadPrune,
    ThreadSearch,
    ThreadStateUpdate,
)
from chorus.runs.state_views import check_state_select
from chorus.runs.thread_search import ThreadFilter, ThreadPage
from chorus.runs.threads_repository import thread_view

router = APIRouter(prefix="/threads", tags=["threads"])

SubgraphsQuery = Annotated[
    bool, Query(description="accepted for the SDKs; Chorus bots have no subgraphs, so it changes nothing")
]
# Validated answers leave out the fields a thread sends only sometimes (`ttl`, `extracted`).
THREAD: dict[str, Any] = {"response_model": Thread, "response_model_exclude_unset": True}
# Documented, not validated (docs/decisions.md): a state's fields are the client's `select`.
STATE: dict[str, Any] = {"responses": {200: {"model": ThreadState, "description": "with `select`, only those fields"}}}

SelectQuery = Annotated[
    list[str] | None, Query(description="only these fields of the state; values.<key> for one state key")
]


def _state_select(select: list[str] | None) -> list[str] | None:
    try:
        return check_state_select(select)
    except ValueError as exc:
        raise InvalidInput(str(exc), errors=[{"path": "$.select", "message": str(exc)}]) from None


@router.post("", summary="Create a thread (optionally with a ttl, and supersteps of state updates)", **THREAD)
async def create(body: ThreadCreate, principal: DeveloperDep, service: ThreadServiceDep) -> dict[str, Any]:
    return thread_view(await service.create(principal.tenant_id, body, environment=principal.environment))


@router.post(
    "/search",
    summary="Search threads: filters, sort, select, extract; X-Pagination-* headers",
    responses={200: {"model": list[Thread], "description": "the threads (with `select`, only those fields)"}},
)
async def search(
    body: ThreadSearch, principal: PrincipalDep, threads: ThreadsDep, response: Response
) -> list[dict[str, Any]]:
    where = ThreadFilter(
        metadata=body.metadata,
        values=body.values,
        status=body.status,
        ids=[str(i) for i in body.ids] if body.ids is not None else None,
    )
    paths = body.extract_paths
    page = ThreadPage(
        limit=body.limit,
        offset=body.offset,
        sort_by=body.sort_by,
        sort_order=body.sort_order,
        with_values=not body.select or "values" in body.select,
        extract=paths,
    )
    rows, next_offset = await threads.search(principal.tenant_id, where, page)
    pagination_headers(response, offset=body.offset, returned=len(rows), next_offset=next_offset)
    out = []
    for row in rows:
        view = thread_view(row)
        if body.select:
            view = {k: view[k] for k in body.select}
        if paths:
            view["extracted"] = row["extracted"]
        out.append(view)
    return out


@router.post(
    "/count", summary="Count threads by metadata, values and status", responses={200: {"description": "how many match"}}
)
async def count(body: ThreadCount, principal: PrincipalDep, threads: ThreadsDep) -> int:
    where = ThreadFilter(metadata=body.metadata, values=body.values, status=body.status)
    return await threads.count(principal.tenant_id, where)


@router.post("/prune", summary="Delete threads and their checkpoints", response_model=ThreadPruneResult)
async def prune(body: ThreadPrune, principal: DeveloperDep, engine: EngineDep) -> dict[str, Any]:
    if body.strategy == "keep_latest":
        raise InvalidInput(
            "strategy 'keep_latest' is not needed in Chorus: checkpoints store only new messages "
            "per turn; use 'delete', or set CHORUS_THREAD_TTL_DAYS to expire idle threads"
        )
    deleted = 0
    busy: list[str] = []
    for thread_id in body.thread_ids:
        try:
            await engine.delete_thread(principal.tenant_id, thread_id)
        except NotFound:
            continue
        except Conflict:
            busy.append(thread_id)  # a run is queued or running on it: kept
            continue
        deleted += 1
    return {"pruned_count": deleted, "busy_thread_ids": busy}


@router.get("/{thread_id}", summary="Get a thread (?include=ttl adds its ttl)", **THREAD)
async def get(
    thread_id: str,
    principal: PrincipalDep,
    threads: ThreadsDep,
    include: Annotated[str | None, Query(description="comma-separated extra fields: ttl")] = None,
) -> dict[str, Any]:
    extras = {f.strip() for f in (include or "").split(",") if f.strip()}
    if extras - {"ttl"}:
        raise InvalidInput(
            f"include {sorted(extras - {'ttl'})} is not supported; the only extra field is 'ttl'",
            errors=[{"path": "$.include", "message": "only 'ttl'"}],
        )
    row = await threads.get(principal.tenant_id, thread_id)
    return thread_view(row, ttl_days=threads.ttl_days, with_ttl="ttl" in extras)


@router.patch(
    "/{thread_id}",
    summary="Merge metadata into a thread, set its ttl (Prefer: return=minimal answers 204)",
    **THREAD,
    responses={204: {"description": "with `Prefer: return=minimal`: updated, no body"}},
)
async def patch(
    thread_id: str,
    body: ThreadPatch,
    principal: DeveloperDep,
    threads: ThreadsDep,
    prefer: Annotated[str | None, Header()] = None,
) -> dict[str, Any] | Response:
    row = await threads.update(
        principal.tenant_id, thread_id, metadata=body.metadata, ttl_minutes=body.ttl.ttl if body.ttl else None
    )
    if prefer == "return=minimal":
        return Response(status_code=204)
    return thread_view(row)


@router.delete("/{thread_id}", status_code=204, summary="Delete a thread, its runs and its checkpoints")
async def delete(thread_id: str, principal: DeveloperDep, engine: EngineDep) -> Response:
    await engine.delete_thread(principal.tenant_id, thread_id)
    return Response(status_code=204)


@router.post(
    "/{thread_id}/copy", summary="Copy a thread: a new thread with its metadata and every checkpoint", **THREAD
)
async def copy(thread_id: str, principal: DeveloperDep, service: ThreadServiceDep) -> dict[str, Any]:
    return thread_view(await service.copy(principal.tenant_id, thread_id))


@router.get("/{thread_id}/state", summary="The thread's current state", **STATE)
async def state(
    thread_id: str,
    principal: PrincipalDep,
    service: ThreadServiceDep,
    subgraphs: SubgraphsQuery = False,
    select: SelectQuery = None,
) -> dict[str, Any]:
    return await service.state(principal.tenant_id, thread_id, select=_state_select(select))


@router.post(
    "/{thread_id}/state",
    summary="Update the thread's state, as if a node had run (409 while it runs)",
    response_model=ThreadStateUpdated,
    response_model_exclude_unset=True,
)
async def update_state(
    thread_id: str, body: ThreadStateUpdate, principal: DeveloperDep, service: ThreadServiceDep
) -> dict[str, Any]:
    return await service.update_state(principal.tenant_id, thread_id, body, environment=principal.environment)


@router.post("/{thread_id}/state/checkpoint", summary="The thread's state at one of its checkpoints", **STATE)
async def state_at_checkpoint_post(
    thread_id: str, body: StateAtCheckpoint, principal: PrincipalDep, service: ThreadServiceDep
) -> dict[str, Any]:
    return await service.state(
        principal.tenant_id, thread_id, checkpoint_id=body.checkpoint.checkpoint_id, select=body.select
    )


@router.get("/{thread_id}/state/{checkpoint_id}", summary="The thread's state at one of its checkpoints", **STATE)
async def state_at_checkpoint(
    thread_id: str,
    checkpoint_id: str,
    principal: PrincipalDep,
    service: ThreadServiceDep,
    subgraphs: SubgraphsQuery = False,
    select: SelectQuery = None,
) -> dict[str, Any]:
    return await service.state(
        principal.tenant_id, thread_id, checkpoint_id=checkpoint_id, select=_state_select(select)
    )


@router.post(
    "/{thread_id}/history",
    summary="Past states of the thread, newest first",
    responses={200: {"model": list[ThreadState], "description": "with `select`, only those fields"}},
)
async def history(
    thread_id: str, body: HistoryRequest, principal: PrincipalDep, service: ThreadServiceDep
) -> list[dict[str, Any]]:
    return await service.history(principal.tenant_id, thread_id, body)
