"""Run webhook deliveries, as the tenant's receivers were sent them: attempts, last answer, outcome."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request

from chorus.agents.api_deps import ViewerDep
from chorus.runs.webhooks_repository import WebhookDeliveries

router = APIRouter(tags=["webhooks"])


def _deliveries(request: Request) -> WebhookDeliveries:
    repo: WebhookDeliveries = request.app.state.webhook_deliveries
    return repo


DeliveriesDep = Annotated[WebhookDeliveries, Depends(_deliveries)]


@router.get("/api/v1/webhooks/deliveries", summary="List run webhook deliveries (newest first)")
async def list_deliveries(
    principal: ViewerDep,
    deliveries: DeliveriesDep,
    run_id: uuid.UUID | None = None,
    status: Literal["pending", "delivered", "failed"] | None = None,
    limit: int = Query(20, ge=1, le=200),
    offset: int = Query(0, ge=0),
) -> list[dict[str, Any]]:
    """Each delivery's URL, attempts, the receiver's last HTTP status and error, and its outcome; filter by
    `run_id` or `status`. The payload is not repeated here (it is the run, as GET …/runs/{run_id} shows)."""
    return await deliveries.search(
        principal.tenant_id,
        run_id=str(run_id) if run_id is not None else None,
        status=status,
        limit=limit,
        offset=offset,
    )
