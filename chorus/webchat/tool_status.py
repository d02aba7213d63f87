"""What the widget says while a tool runs ("Looking up your order…"): never the tool's name or arguments.

The built-in tools have a customer-facing line each; a bot's `webchat.tool_status` adds its own tools' lines
or replaces these (`"*"`: any other tool). A tool with no line shows "Working on it…" (the widget's default).
"""

from __future__ import annotations

from typing import Any

BUILTIN_STATUS = {
    "fetch_order_status": "Looking up your order…",
    "update_shipping_address": "Updating your shipping address…",
    "initiate_refund": "Starting your refund…",
    "escalate_to_human": "Connecting you with our team…",
    "check_appointment_availability": "Checking available times…",
    "book_appointment": "Booking your appointment…",
    "knowledge_search": "Searching our help articles…",
    "faq_search": "Checking our FAQ…",
}


def tool_status(webchat: dict[str, Any]) -> dict[str, str]:
    """The lines the widget shows per tool name, for a bot's `webchat` block."""
    return {**BUILTIN_STATUS, **(webchat.get("tool_status") or {})}
