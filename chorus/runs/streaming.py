"""Server-sent events for runs, in the LangGraph Agent Server's wire format."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from chorus.runs.engine import RunEngine
from chorus.runs.handles import END, RunHandle
from chorus.runs.serialization import dumps

log = logging.getLogger(__name__)
# Cancels started by a disconnect outlive the request's task (which is itself being cancelled).
_disconnect_cancels: set[asyncio.Task[None]] = set()


def sse(event: str, data: Any) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + dumps(data) + b"\n\n"


async def _cancel_quietly(engine: RunEngine, handle: RunHandle) -> None:
    with contextlib.suppress(Exception):
        await engine.cancel(handle.tenant_id, handle.thread_id, handle.run_id, action="interrupt", wait=False)


async def run_events(
    handle: RunHandle,
    queue: asyncio.Queue[Any],
    *,
    engine: RunEngine,
    cancel_on_disconnect: bool,
) -> AsyncIterator[bytes]:
    ended = False
    try:
        yield sse("metadata", {"run_id": handle.run_id, "attempt": handle.attempt})
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
                ended = True
                return
    finally:
        handle.unsubscribe(queue)
        if not ended and not handle.done.is_set() and cancel_on_disconnect:
            # The client went away (Starlette cancels this generator). Awaiting here would be cancelled
            # too, so the cancel runs as its own task.
            task = asyncio.get_running_loop().create_task(_cancel_quietly(engine, handle))
            _disconnect_cancels.add(task)
            task.add_done_callback(_disconnect_cancels.discard)
