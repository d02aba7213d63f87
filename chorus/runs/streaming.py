"""Server-sent events for runs, in the LangGraph Agent Server's wire format."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request

from chorus.runs.manager import END, RunHandle, RunManager
from chorus.runs.serialization import dumps


def sse(event: str, data: Any) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + dumps(data) + b"\n\n"


async def run_events(
    handle: RunHandle,
    queue: asyncio.Queue[Any],
    *,
    request: Request,
    manager: RunManager,
    cancel_on_disconnect: bool,
) -> AsyncIterator[bytes]:
    yield sse("metadata", {"run_id": handle.run_id, "attempt": 1})
    try:
        while True:
            item = await queue.get()
            # Send what is already waiting in one write: the first token is never held back, and a
            # busy server makes one socket write per batch of tokens instead of one per token.
            batch = []
            while item is not END:
                batch.append(sse(*item))
                if queue.empty():
                    break
                item = queue.get_nowait()
            if batch:
                yield b"".join(batch)
            if item is END:
                return
    finally:
        if not handle.done.is_set() and cancel_on_disconnect and await request.is_disconnected():
            await manager.cancel(handle.tenant_id, handle.thread_id, handle.run_id, action="interrupt", wait=False)
