"""Threads (LangGraph Agent Server API): create, get, search, update, delete, state, history, prune."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from langgraph.types import StateSnapshot

from chorus.agents.api_deps import DeveloperDep, PrincipalDep
from chorus.agents.errors import Conflict, InvalidInput, NotFound
from chorus.runs.deps import EngineDep, ThreadsDep
from chorus.runs.engine import RunEngine
from chorus.runs.schemas import HistoryRequest, ThreadCreate, ThreadPatch, ThreadPrune, ThreadSearch
from chorus.runs.serialization import jsonable
from chorus.runs.threads_repository import thread_view

router = APIRouter(prefix="/threads", tags=["threads"])


def _checkpoint(config: Any) -> dict[str, Any] | None:
    if not config:
        return None
    c = config.get("configurable", {})
    return {
        "thread_id": c.get("thread_id"),
        "checkpoint_ns": c.get("checkpoint_ns", ""),
        "checkpoint_id": c.get("checkpoint_id"),
    }


def state_view(snap: StateSnapshot) -> dict[str, Any]:
    return {
        "values": jsonable(snap.values),
        "next": list(snap.next),
        "checkpoint": _checkpoint(snap.config),
        "metadata": jsonable(snap.metadata or {}),
        "created_at": snap.created_at,
        "parent_checkpoint": _checkpoint(snap.parent_config),
        "tasks": [],
        "interrupts": [],
    }


def _empty_state(thread_id: str) -> dict[str, Any]:
    return {
        "values": {},
        "next": [],
        "checkpoint": {"thread_id": thread_id, "checkpoint_ns": "", "checkpoint_id": None},
        "metadata": {},
        "created_at": None,
        "parent_checkpoint": None,
        "tasks": [],
        "interrupts": [],
    }


async def _graph_and_config(engine: RunEngine, thread: dict[str, Any], tenant_id: str) -> Any:
    if thread["assistant_id"] is None:
        return None
    return await engine.graph_for(tenant_id, str(thread["assistant_id"]), int(thread["config_version"]))


@router.post("", summary="Create a thread")
async def create(body: ThreadCreate, principal: DeveloperDep, threads: ThreadsDep, engine: EngineDep) -> dict[str, Any]:
    if body.thread_id:
        engine.forget_thread(body.thread_id)
    return thread_view(
        await threads.create(
            principal.tenant_id, thread_id=body.thread_id, metadata=body.metadata, if_exists=body.if_exists
        )
    )


@router.post("/search", summary="Search threads by metadata, values or status")
async def search(body: ThreadSearch, principal: PrincipalDep, threads: ThreadsDep) -> list[dict[str, Any]]:
    rows = await threads.search(
        principal.tenant_id,
        metadata=body.metadata,
        status=body.status,
        values=body.values,
        limit=body.limit,
        offset=body.offset,
    )
    return [thread_view(r) for r in rows]


@router.post("/prune", summary="Delete threads and their checkpoints")
async def prune(body: ThreadPrune, principal: DeveloperDep, threads: ThreadsDep, engine: EngineDep) -> dict[str, Any]:
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


@router.get("/{thread_id}", summary="Get a thread")
async def get(thread_id: str, principal: PrincipalDep, threads: ThreadsDep) -> dict[str, Any]:
    return thread_view(await threads.get(principal.tenant_id, thread_id))


@router.patch("/{thread_id}", summary="Merge metadata into a thread")
async def patch(thread_id: str, body: ThreadPatch, principal: DeveloperDep, threads: ThreadsDep) -> dict[str, Any]:
    return thread_view(await threads.update_metadata(principal.tenant_id, thread_id, body.metadata))


@router.delete("/{thread_id}", status_code=204, summary="Delete a thread, its runs and its checkpoints")
async def delete(thread_id: str, principal: DeveloperDep, threads: ThreadsDep, engine: EngineDep) -> Response:
    await engine.delete_thread(principal.tenant_id, thread_id)
    return Response(status_code=204)


@router.get("/{thread_id}/state", summary="The thread's current state")
async def state(thread_id: str, principal: PrincipalDep, threads: ThreadsDep, engine: EngineDep) -> dict[str, Any]:
    thread = await threads.get(principal.tenant_id, thread_id)
    graph = await _graph_and_config(engine, thread, principal.tenant_id)
    if graph is None:
        return _empty_state(str(thread["thread_id"]))
    snap = await graph.aget_state({"configurable": {"thread_id": str(thread["thread_id"])}})
    return state_view(snap)


@router.post("/{thread_id}/history", summary="Past states of the thread, newest first")
async def history(
    thread_id: str, body: HistoryRequest, principal: PrincipalDep, threads: ThreadsDep, engine: EngineDep
) -> list[dict[str, Any]]:
    thread = await threads.get(principal.tenant_id, thread_id)
    graph = await _graph_and_config(engine, thread, principal.tenant_id)
    if graph is None:
        return []
    config: dict[str, Any] = {"configurable": {"thread_id": str(thread["thread_id"])}}
    if body.checkpoint and body.checkpoint.get("checkpoint_id"):
        config["configurable"]["checkpoint_id"] = body.checkpoint["checkpoint_id"]
    before = body.before
    if isinstance(before, str):
        before = {"configurable": {"thread_id": str(thread["thread_id"]), "checkpoint_id": before}}
    elif isinstance(before, dict) and "configurable" not in before:
        before = {"configurable": {**before, "thread_id": str(thread["thread_id"])}}
    return [
        state_view(s)
        async for s in graph.aget_state_history(config, filter=body.metadata, before=before, limit=body.limit)
    ]
