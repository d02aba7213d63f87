"""Tool registry API (seed 000 §7): list, schema, and invoke with validated arguments (audited)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body

from chorus.agents.api_deps import DbDep, DeveloperDep, PrincipalDep, RegistryDep
from chorus.agents.errors import ToolError
from chorus.agents.tools.audit import record_invocation
from chorus.agents.tools.registry import ToolContext

router = APIRouter(prefix="/api/v1/tools", tags=["tools"])


@router.get("", summary="List the registered tools")
async def list_tools(principal: PrincipalDep, registry: RegistryDep) -> dict[str, Any]:
    return {"tools": [t.describe() for t in registry.all()]}


@router.get("/{name}", summary="A tool's definition and input schema")
async def get_tool(name: str, principal: PrincipalDep, registry: RegistryDep) -> dict[str, Any]:
    return registry.get(name).describe()


@router.post("/{name}/invoke", summary="Invoke a tool; arguments are validated against its schema")
async def invoke_tool(
    name: str,
    principal: DeveloperDep,
    registry: RegistryDep,
    db: DbDep,
    body: Annotated[dict[str, Any], Body(examples=[{"arguments": {"order_id": "ORD-1001"}}])],
) -> dict[str, Any]:
    tool = registry.get(name)
    arguments = body.get("arguments", {})
    tool.check_arguments(arguments)
    ctx = ToolContext(tenant_id=principal.tenant_id, db=db, environment=principal.environment)
    try:
        result, elapsed = await tool.invoke(ctx, arguments)
    except ToolError as exc:
        await record_invocation(
            ctx,
            tool_name=name,
            source="api",
            arguments=arguments,
            result=None,
            error=exc.detail,
            duration_ms=0.0,
        )
        raise
    invocation_id = await record_invocation(
        ctx,
        tool_name=name,
        source="api",
        arguments=arguments,
        result=result.content,
        error=None,
        duration_ms=elapsed,
    )
    return {
        "tool": name,
        "result": result.content,
        "execution_time_ms": round(elapsed, 3),
        "invocation_id": invocation_id,
    }
