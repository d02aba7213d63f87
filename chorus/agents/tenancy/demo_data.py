"""A small demo data set per tenant (orders) for the built-in tools of the example bots."""

from __future__ import annotations

import json
from datetime import date
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chorus.agents.storage.database import Database

DEMO_ORDERS = [
    (
        "ORD-1001",
        "jane@example.com",
        "shipped",
        [{"sku": "KB-01", "name": "Mechanical keyboard", "qty": 1}],
        129.00,
        "UPS",
        "1Z999AA10123456784",
        "12 Elm Street, Springfield",
        date(2025, 10, 2),
    ),
    (
        "ORD-1002",
        "sam@example.com",
        "processing",
        [{"sku": "MS-07", "name": "Wireless mouse", "qty": 2}],
        59.98,
        None,
        None,
        "48 Oak Avenue, Portland",
        date(2025, 10, 8),
    ),
    (
        "ORD-1003",
        "ana@example.com",
        "delivered",
        [{"sku": "HD-22", "name": "Noise-cancelling headphones", "qty": 1}],
        249.00,
        "FedEx",
        "7489 2841 1150",
        "3 Harbour Road, Boston",
        date(2025, 9, 21),
    ),
    (
        "ORD-1004",
        "lee@example.com",
        "pending",
        [{"sku": "CB-10", "name": "USB-C cable", "qty": 3}],
        29.97,
        None,
        None,
        "901 Pine Lane, Austin",
        date(2025, 10, 9),
    ),
]


async def seed_demo_data(db: Database, tenant_id: str) -> None:
    async with db.connection() as conn:
        for order_id, email, status, items, total, carrier, tracking, address, placed in DEMO_ORDERS:
            await conn.execute(
                "INSERT INTO demo_orders (tenant_id, order_id, customer_email, status, items, total, carrier,"
                " tracking_number, shipping_address, placed_at) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)"
                " ON CONFLICT DO NOTHING",
                (
                    tenant_id,
                    order_id,
                    email,
                    status,
                    json.dumps(items),
                    total,
                    carrier,
                    tracking,
                    address,
                    placed,
                ),
            )
