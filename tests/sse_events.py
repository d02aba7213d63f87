"""Reading an SSE response in tests: the (id, data) of each event that has an id."""

from __future__ import annotations

import httpx


async def identified_events(resp: httpx.Response, *, limit: int | None = None) -> list[tuple[str, str]]:
    """The events with an `id`, in order; with `limit`, stop reading after that many (a dropped stream)."""
    out: list[tuple[str, str]] = []
    event_id = ""
    async for line in resp.aiter_lines():
        if line.startswith("id: "):
            event_id = line[4:]
        elif line.startswith("data: ") and event_id:
            out.append((event_id, line[6:]))
            event_id = ""
            if limit is not None and len(out) == limit:
                break
    return out
