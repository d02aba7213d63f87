"""Built-in order tools of the example support bot, against the tenant's demo orders in Postgres."""

from __future__ import annotations

import re
import secrets
from decimal import Decimal
from typing import Annotated, Any

from pydantic import Field

from chorus.agents.errors import ToolError
from chorus.agents.tools.registry import ToolContext, ToolRegistry

OrderId = Annotated[str, Field(description="The order number, e.g. ORD-1001", min_length=1)]


def _order_key(order_id: str) -> str:
    """The order number without its spelling: "ORD-1001", "ord 1001", "#1001" and "1001" are one order. The
    tool normalises what customers type, not the model (which passes the id as the customer wrote it)."""
    return re.sub(r"^ORD(?:ER)?", "", re.sub(r"[^A-Z0-9]", "", order_id.upper()))


async def _order(ctx: ToolContext, order_id: str) -> dict[str, Any]:
    async with ctx.db.connection() as conn:
        cur = await conn.execute(
            "SELECT order_id, status, items, total, carrier, tracking_number, shipping_address, placed_at"
            " FROM demo_orders WHERE tenant_id = %s"
            " AND regexp_replace(regexp_replace(upper(order_id), '[^A-Z0-9]', '', 'g'), '^ORD(ER)?', '') = %s"
            " ORDER BY upper(order_id) = upper(%s) DESC LIMIT 1",
            (ctx.tenant_id, _order_key(order_id), order_id.strip()),
        )
        row = await cur.fetchone()
    if row is None:
        raise ToolError(f"no order '{order_id}' was found; ask the customer to check the order number")
    return dict(row)


async def fetch_order_status(ctx: ToolContext, order_id: OrderId) -> dict[str, Any]:
    order = await _order(ctx, order_id)
    return {
        "order_id": order["order_id"],
        "status": order["status"],
        "carrier": order["carrier"],
        "tracking_number": order["tracking_number"],
        "items": order["items"],
        "total": float(order["total"]),
        "placed_at": order["placed_at"].isoformat(),
    }


async def update_shipping_address(
    ctx: ToolContext,
    order_id: OrderId,
    new_address: Annotated[str, Field(description="The full new shipping address", min_length=5)],
) -> dict[str, Any]:
    order = await _order(ctx, order_id)
    if order["status"] not in ("processing", "pending"):
        raise ToolError(f"order {order['order_id']} is already {order['status']}; its address can no longer change")
    async with ctx.db.connection() as conn:
        await conn.execute(
            "UPDATE demo_orders SET shipping_address = %s WHERE tenant_id = %s AND order_id = %s",
            (new_address.strip(), ctx.tenant_id, order["order_id"]),
        )
    return {"order_id": order["order_id"], "shipping_address": new_address.strip(), "status": "updated"}


async def initiate_refund(
    ctx: ToolContext,
    order_id: OrderId,
    refund_amount: Annotated[float, Field(description="Amount to refund in the order currency", gt=0)],
    reason: Annotated[str, Field(description="Why the customer wants a refund", min_length=1)],
) -> dict[str, Any]:
    order = await _order(ctx, order_id)
    amount = Decimal(str(round(refund_amount, 2)))
    async with ctx.db.connection() as conn, conn.transaction():
        # Lock the order row so two concurrent refunds cannot both pass the total check.
        await conn.execute(
            "SELECT 1 FROM demo_orders WHERE tenant_id = %s AND order_id = %s FOR UPDATE",
            (ctx.tenant_id, order["order_id"]),
        )
        cur = await conn.execute(
            "SELECT coalesce(sum(amount), 0) AS refunded FROM demo_refunds WHERE tenant_id = %s AND order_id = %s",
            (ctx.tenant_id, order["order_id"]),
        )
        row = await cur.fetchone()
        refunded = Decimal(row["refunded"]) if row else Decimal(0)
        if refunded + amount > order["total"]:
            raise ToolError(
                f"refund of {amount} exceeds what is left to refund on {order['order_id']} "
                f"({order['total'] - refunded} of {order['total']})"
            )
        refund_id = "RF-" + secrets.token_hex(4).upper()
        await conn.execute(
            "INSERT INTO demo_refunds (refund_id, tenant_id, order_id, amount, reason, status)"
            " VALUES (%s, %s, %s, %s, %s, 'pending')",
            (refund_id, ctx.tenant_id, order["order_id"], amount, reason),
        )
    return {
        "refund_id": refund_id,
        "order_id": order["order_id"],
        "amount": float(amount),
        "status": "pending",
        "estimated_days": 5,
    }


def register(registry: ToolRegistry) -> None:
    registry.tool(
        "fetch_order_status", "Look up the current status, carrier and tracking of an order.", side_effects=False
    )(fetch_order_status)
    registry.tool(
        "update_shipping_address",
        "Change the shipping address of an order that has not shipped yet.",
        side_effects=True,
    )(update_shipping_address)
    registry.tool(
        "initiate_refund", "Start a refund of an order, in full or in part, with a reason.", side_effects=True
    )(initiate_refund)
