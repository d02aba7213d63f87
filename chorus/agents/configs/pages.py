"""The `pagination` object of the config API's lists (seed 001 §6: versions, deployments, configs)."""

from __future__ import annotations

from typing import Any


def page_info(*, limit: int, offset: int, returned: int, total: int) -> dict[str, Any]:
    more = offset + returned < total
    return {"limit": limit, "offset": offset, "has_more": more, "next_offset": offset + limit if more else None}
