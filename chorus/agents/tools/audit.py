"""The audit trail of tool invocations (from the API and from conversations), plus tool metrics."""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any, Literal

from chorus.agents.observability.metrics import TOOL_CALLS, TOOL_ERRORS
from chorus.agents.tools.registry import ToolContext

log = logging.getLogger(__name__)


async def record_invocation(
    ctx: ToolContext,
    *,
    tool_name: str,
    source: Literal["api", "graph"],
    arguments: dict[str, Any],
    result: Any,
    error: str | None,
    duration_ms: float,
) -> str:
    TOOL_CALLS.labels(tool_name, "error" if error else "ok").inc()
    if error:
        TOOL_ERRORS.labels(tool_name).inc()
        log.info("tool failed", extra={"tool": tool_name, "error": error})
    invocation_id = str(uuid.uuid4())
    async with ctx.db.connection() as conn:
        await conn.execute(
            "INSERT INTO tool_invocations (invocation_id, tenant_id, tool_name, thread_id, run_id, source,"
            " arguments, ok, result, error, duration_ms) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)",
            (
                invocation_id,
                ctx.tenant_id,
                tool_name,
                ctx.thread_id,
                ctx.run_id,
                source,
                json.dumps(arguments, default=str),
                error is None,
                json.dumps(result, default=str) if result is not None else None,
                error,
                duration_ms,
            ),
        )
    return invocation_id
