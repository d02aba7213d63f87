"""GET /health (checks the database), GET /metrics (Prometheus text format) and GET /info (what this server is,
for LangGraph clients: agent-chat-ui checks it before it connects)."""

from __future__ import annotations

from importlib import metadata
from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from chorus.agents.api_deps import DbDep
from chorus.agents.observability.metrics import REGISTRY
from chorus.agents.observability.schemas import Health, Info

router = APIRouter(tags=["operations"])


@router.get(
    "/health",
    summary="Liveness and database check",
    response_model=None,
    responses={
        200: {"model": Health, "description": "the database answers"},
        503: {"model": Health, "description": "the database does not answer (`database` says why)"},
    },
)
async def health(db: DbDep) -> Any:
    """200 when the database answers; 503 naming what is down otherwise. Answers within
    CHORUS_DB_TIMEOUT_SECONDS, never hangs. `pool` shows the connection pool (size, available, waiting)."""
    state = await db.health()
    status = "unhealthy" if not state.ok else "ok" if state.detail == "ok" else "busy"
    body = {"status": status, "database": state.detail, "pool": state.pool}
    return JSONResponse(body, status_code=200 if state.ok else 503)


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST.split(";")[0]: {"schema": {"type": "string"}}}}},
)
async def metrics() -> Response:
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)


@router.get("/info", summary="Server information (LangGraph Agent Server clients check it)", response_model=Info)
async def info() -> dict[str, Any]:
    """The server's version and what it offers, in the Agent Server's shape."""
    return {
        "version": metadata.version("chorus"),
        "langgraph_py_version": metadata.version("langgraph"),
        "flags": {"assistants": True, "crons": True, "langsmith": False},
        "host": {"kind": "chorus", "project_id": None, "revision_id": None, "tenant_id": None},
    }
