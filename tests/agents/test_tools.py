"""Tool registry, built-in tools, declarative HTTP tools and the /api/v1/tools endpoints."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from chorus.agents.configs.models import ToolNeeded
from chorus.agents.errors import InvalidInput, ToolError
from chorus.agents.storage.database import Database
from chorus.agents.tools.builtins import build_registry
from chorus.agents.tools.http_tool import build_http_tool
from chorus.agents.tools.registry import ToolContext
from chorus.agents.tools.schemas import normalize_input_schema
from tests.conftest import Tenant
from tests.fakes import inventory_api, serve


def test_schema_is_derived_from_the_signature() -> None:
    refund = build_registry().get("initiate_refund").input_schema
    assert refund["required"] == ["order_id", "refund_amount", "reason"]
    assert refund["properties"]["refund_amount"]["type"] == "number"
    assert refund["properties"]["order_id"]["description"]
    assert refund["additionalProperties"] is False


def test_shorthand_schema() -> None:
    schema = normalize_input_schema({"order_id": "string", "note": "string?"})
    assert schema["required"] == ["order_id"]
    assert schema["properties"]["note"] == {"type": "string"}


async def test_builtin_order_tools_use_the_tenant_demo_data(db: Database, tenant: Tenant) -> None:
    ctx = ToolContext(tenant_id=tenant.tenant_id, db=db)
    registry = build_registry()
    status, _ = await registry.get("fetch_order_status").invoke(ctx, {"order_id": "ord-1001"})
    assert status.content["status"] == "shipped"
    # The tool, not the model, accepts the spellings customers use for the same order.
    for spelling in ("1001", "#1001", "order 1001", "ORD1001"):
        same, _ = await registry.get("fetch_order_status").invoke(ctx, {"order_id": spelling})
        assert same.content["order_id"] == "ORD-1001"
    with pytest.raises(ToolError, match="no order '10'"):
        await registry.get("fetch_order_status").invoke(ctx, {"order_id": "10"})
    updated, _ = await registry.get("update_shipping_address").invoke(
        ctx, {"order_id": "ORD-1002", "new_address": "1 New Road, Leeds"}
    )
    assert updated.content["shipping_address"] == "1 New Road, Leeds"
    with pytest.raises(ToolError, match="already shipped"):
        await registry.get("update_shipping_address").invoke(ctx, {"order_id": "ORD-1001", "new_address": "2 X Road"})
    refund, _ = await registry.get("initiate_refund").invoke(
        ctx, {"order_id": "ORD-1001", "refund_amount": 100, "reason": "late"}
    )
    assert refund.content["status"] == "pending"
    with pytest.raises(ToolError, match="exceeds"):
        await registry.get("initiate_refund").invoke(
            ctx, {"order_id": "ORD-1001", "refund_amount": 100, "reason": "again"}
        )
    with pytest.raises(InvalidInput):
        await registry.get("initiate_refund").invoke(ctx, {"order_id": "ORD-1001"})


async def test_http_tool_get_post_timeout_and_500(
    db: Database, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHORUS_HTTP_TOOLS_ALLOW_PRIVATE", "1")  # the stand-in API listens on loopback
    api = inventory_api()
    ctx = ToolContext(tenant_id=tenant.tenant_id, db=db)
    async with serve(api) as base:
        get_tool = build_http_tool(
            ToolNeeded(
                tool_name="check_product_availability",
                input_schema={"product_id": "string", "warehouse": "string?"},
                http={"method": "GET", "url": base + "/inventory/{product_id}", "headers": {"X-Shop": "acme"}},
            )
        )
        result, _ = await get_tool.invoke(ctx, {"product_id": "SKU 12", "warehouse": "north"})
        assert result.content == {"product_id": "SKU 12", "available": True, "stock_count": 7}
        seen = api.state.seen[-1]
        assert seen["query"] == {"warehouse": "north"}
        assert seen["headers"]["x-shop"] == "acme"

        post_tool = build_http_tool(
            ToolNeeded(
                tool_name="open_ticket",
                input_schema={"subject": "string", "priority": "integer"},
                http={"method": "POST", "url": base + "/tickets"},
            )
        )
        result, _ = await post_tool.invoke(ctx, {"subject": "help", "priority": 2})
        assert result.content["received"] == {"subject": "help", "priority": 2}
        assert api.state.seen[-1]["headers"]["idempotency-key"]  # every POST carries one

        slow = build_http_tool(
            ToolNeeded(
                tool_name="slow",
                input_schema={"item": "string"},
                http={"url": base + "/slow/{item}", "timeout_ms": 200},
            )
        )
        with pytest.raises(ToolError, match="timed out after 200 ms"):
            await slow.invoke(ctx, {"item": "a"})

        broken = build_http_tool(
            ToolNeeded(tool_name="broken", input_schema={"item": "string"}, http={"url": base + "/broken/{item}"})
        )
        with pytest.raises(ToolError, match="HTTP 500"):
            await broken.invoke(ctx, {"item": "a"})


async def test_tools_api_list_schema_invoke_and_audit(http: httpx.AsyncClient, db: Database, tenant: Tenant) -> None:
    listed = (await http.get("/api/v1/tools")).json()["tools"]
    assert {"fetch_order_status", "escalate_to_human"} <= {t["name"] for t in listed}
    schema = (await http.get("/api/v1/tools/fetch_order_status")).json()
    assert schema["input_schema"]["required"] == ["order_id"]

    ok = await http.post("/api/v1/tools/fetch_order_status/invoke", json={"arguments": {"order_id": "ORD-1003"}})
    assert ok.status_code == 200
    body: dict[str, Any] = ok.json()
    assert body["result"]["status"] == "delivered"
    assert body["execution_time_ms"] >= 0

    bad = await http.post("/api/v1/tools/initiate_refund/invoke", json={"arguments": {"order_id": 5}})
    assert bad.status_code == 422
    assert {e["path"] for e in bad.json()["errors"]} >= {"$", "$.order_id"}

    failed = await http.post("/api/v1/tools/fetch_order_status/invoke", json={"arguments": {"order_id": "ORD-77"}})
    assert failed.status_code == 502
    assert "ORD-77" in failed.json()["detail"]

    unknown = await http.post("/api/v1/tools/teleport/invoke", json={"arguments": {}})
    assert unknown.status_code == 404

    async with db.connection() as conn:
        cur = await conn.execute(
            "SELECT tool_name, ok FROM tool_invocations WHERE tenant_id = %s ORDER BY created_at", (tenant.tenant_id,)
        )
        rows = [(r["tool_name"], r["ok"]) for r in await cur.fetchall()]
    assert rows == [("fetch_order_status", True), ("fetch_order_status", False)]


async def test_http_tool_destinations_and_secrets(
    db: Database, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = ToolContext(tenant_id=tenant.tenant_id, db=db)
    monkeypatch.delenv("CHORUS_HTTP_TOOLS_ALLOW_PRIVATE", raising=False)
    local = build_http_tool(ToolNeeded(tool_name="local", input_schema={}, http={"url": "http://127.0.0.1:9/x"}))
    with pytest.raises(ToolError, match="private address"):
        await local.invoke(ctx, {})
    monkeypatch.setenv("CHORUS_HTTP_TOOLS_ALLOW_PRIVATE", "1")
    metadata = build_http_tool(
        ToolNeeded(tool_name="meta", input_schema={}, http={"url": "http://169.254.169.254/latest/meta-data"})
    )
    with pytest.raises(ToolError, match="link-local"):
        await metadata.invoke(ctx, {})
    secret = build_http_tool(
        ToolNeeded(
            tool_name="needs_key",
            input_schema={},
            http={"url": "http://127.0.0.1:9/x", "headers": {"Authorization": "Bearer ${NOPE_KEY}"}},
        )
    )
    monkeypatch.setenv("NOPE_KEY", "from-the-environment")
    with pytest.raises(ToolError, match="not a vault reference"):  # never read from the server's environment
        await secret.invoke(ctx, {})
