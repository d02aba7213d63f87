"""GET /health (checks the database) and GET /metrics (Prometheus text format)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from chorus.agents.api_deps import DbDep
from chorus.agents.observability.metrics import REGISTRY

router = APIRouter(tags=["operations"])


@router.get("/health", summary="Liveness and database check")
async def health(db: DbDep) -> Any:
    try:
        ok = await db.ping()
    except Exception as exc:
        return JSONResponse({"status": "unhealthy", "database": f"error: {type(exc).__name__}"}, status_code=503)
    return {"status": "ok" if ok else "unhealthy", "database": "ok" if ok else "error"}


@router.get("/metrics", summary="Prometheus metrics")
async def metrics() -> Response:
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
