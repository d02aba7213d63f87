"""The widget API (/widget/v1): what the embeddable chat widget on a customer's web page calls.

A publishable key gets the bot's public look and a visitor token; the visitor token starts and continues
that visitor's own conversations with the key's bots, streamed in the Agent Server's SSE format (the same
events, ids and `Last-Event-ID` resumption as /threads/{id}/runs/stream). docs/api.md, "Widget API".
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse

from chorus.agents.configs.environments import Serving
from chorus.runs.deps import EngineDep, ThreadsDep
from chorus.runs.schemas import RunCreate
from chorus.runs.statuses import RunStatus
from chorus.runs.streaming import SSE_HEADERS, join_response, run_events
from chorus.webchat.tool_status import tool_status
from chorus.webchat.visitor_threads import (
    create_visitor_thread,
    for_visitor,
    list_visitor_threads,
    own_thread,
    thread_summary,
    transcript,
)
from chorus.webchat.visitor_tokens import VisitorTokens
from chorus.webchat.widget_access import KeyCallerDep, VisitorDep, renewed_visitor
from chorus.webchat.widget_resources import VisitorSession, VisitorThread, VisitorThreadState, WidgetConfig
from chorus.webchat.widget_schemas import WidgetRunCreate, WidgetThreadCreate

PREFIX = "/widget/v1"
router = APIRouter(prefix=PREFIX, tags=["widget"])


@router.get("/config", summary="The bot's public look for the widget (publishable key)", response_model=WidgetConfig)
async def config(
    caller: KeyCallerDep,
    engine: EngineDep,
    assistant_id: Annotated[str | None, Query(max_length=64, description="default: the key's first bot")] = None,
) -> dict[str, Any]:
    chosen = caller.key.check_bot(assistant_id) if assistant_id else caller.key.assistant_ids[0]
    stored = await engine.configs.get(caller.tenant_id, chosen)
    webchat: dict[str, Any] = dict(stored.config.get("webchat") or {})
    return {
        "assistant_id": stored.config_id,
        "name": stored.name,
        "title": webchat.get("title") or stored.name,
        "greeting": webchat.get("greeting") or stored.config.get("first_message"),
        "webchat": webchat,
        "tool_status": tool_status(webchat),
        "assistant_ids": list(caller.key.assistant_ids),
    }


@router.post(
    "/session",
    summary="A visitor token (new, or the presented one renewed) (publishable key)",
    response_model=VisitorSession,
)
async def session(caller: KeyCallerDep, request: Request) -> dict[str, Any]:
    previous = renewed_visitor(request, caller)
    tokens: VisitorTokens = request.app.state.visitor_tokens
    token, visitor = tokens.issue(
        tenant_id=caller.tenant_id,
        key_id=caller.key.key_id,
        visitor_id=previous.visitor_id if previous else None,
    )
    return {
        "visitor_token": token,
        "visitor_id": visitor.visitor_id,
        "expires_at": datetime.fromtimestamp(visitor.expires_at, UTC),
        "expires_in": tokens.ttl_s,
        "renewed": previous is not None,
        "assistant_ids": list(caller.key.assistant_ids),
    }


@router.get(
    "/threads", summary="The visitor's own threads, newest first (visitor token)", response_model=list[VisitorThread]
)
async def threads_of_visitor(
    caller: VisitorDep, threads: ThreadsDep, limit: Annotated[int, Query(ge=1, le=50)] = 20
) -> list[dict[str, Any]]:
    return await list_visitor_threads(threads, caller, limit=limit)


@router.post(
    "/threads", summary="Start a conversation with one of the key's bots (visitor token)", response_model=VisitorThread
)
async def create_thread(
    body: WidgetThreadCreate, caller: VisitorDep, threads: ThreadsDep, engine: EngineDep
) -> dict[str, Any]:
    assistant_id = caller.key.check_bot(body.assistant_id) if body.assistant_id else caller.key.assistant_ids[0]
    return thread_summary(await create_visitor_thread(threads, engine.configs, caller, assistant_id))


@router.get(
    "/threads/{thread_id}/state",
    summary="The conversation so far, and the run in progress (visitor token)",
    response_model=VisitorThreadState,
)
async def state(thread_id: str, caller: VisitorDep, threads: ThreadsDep, engine: EngineDep) -> dict[str, Any]:
    row = await own_thread(threads, caller, thread_id)
    thread_id = str(row["thread_id"])
    graph = await engine.graph_for(caller.tenant_id, str(row["assistant_id"]), Serving.of(row))
    snap = await graph.aget_state({"configurable": {"thread_id": thread_id}})
    values = snap.values if isinstance(snap.values, dict) else {}
    latest = await engine.runs.list_for_thread(caller.tenant_id, thread_id, limit=1, offset=0, status=None)
    active = latest[0] if latest and RunStatus(latest[0]["status"]).active else None
    return {
        **thread_summary(row),
        "messages": transcript(values.get("messages") or []),
        "escalated": bool(values.get("escalated")),
        "active_run": {"run_id": str(active["run_id"]), "status": active["status"]} if active else None,
    }


@router.post("/threads/{thread_id}/runs/stream", summary="Send the visitor's message; stream the answer (SSE)")
async def stream_run(
    thread_id: str, body: WidgetRunCreate, caller: VisitorDep, threads: ThreadsDep, engine: EngineDep
) -> StreamingResponse:
    row = await own_thread(threads, caller, thread_id)
    thread_id = str(row["thread_id"])
    run = RunCreate.model_validate(
        {
            "assistant_id": str(row["assistant_id"]),
            "input": {"messages": [{"role": "user", "content": m.content} for m in body.input.messages]},
            "stream_mode": list(body.stream_mode),
            # One turn at a time per conversation; its events are kept for a reconnect after it ends too.
            "multitask_strategy": "reject",
            "stream_resumable": True,
            "on_disconnect": "continue",
            "metadata": {"source": "widget"},
        }
    )
    handle = await engine.submit(caller.tenant_id, thread_id, run)
    _missed, queue = handle.subscribe()
    path = f"{PREFIX}/threads/{thread_id}/runs/{handle.run_id}"
    return StreamingResponse(
        run_events(handle, queue, engine=engine, cancel_on_disconnect=False, shown=for_visitor),
        media_type="text/event-stream",
        headers={**SSE_HEADERS, "Content-Location": path, "Location": f"{path}/stream"},
    )


@router.get("/threads/{thread_id}/runs/{run_id}/stream", summary="Rejoin a run's stream (visitor token)")
async def join_stream(
    thread_id: str,
    run_id: str,
    caller: VisitorDep,
    threads: ThreadsDep,
    engine: EngineDep,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> StreamingResponse:
    """The run's events from now on; with `Last-Event-ID`, first those after that id (`-1`: from the start)."""
    row = await own_thread(threads, caller, thread_id)
    return await join_response(
        engine, caller.tenant_id, str(row["thread_id"]), run_id, last_event_id=last_event_id, shown=for_visitor
    )
