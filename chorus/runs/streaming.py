"""Server-sent events for runs, in the LangGraph Agent Server's wire format."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi.responses import StreamingResponse

from chorus.agents.errors import InvalidInput
from chorus.runs.engine import RunEngine
from chorus.runs.handles import END, Event, EventId, RunHandle
from chorus.runs.serialization import dumps

log = logging.getLogger(__name__)
_EVENT_ID = re.compile(r"[0-9]{1,9}-[0-9]{1,9}")  # ASCII digits only: int() takes others too
# Cancels started by a disconnect outlive the request's task (which is itself being cancelled).
_disconnect_cancels: set[asyncio.Task[None]] = set()


def sse(event_id: EventId | None, event: str, data: Any) -> bytes:
    head = b"event: " + event.encode() + b"\ndata: " + dumps(data) + b"\n"
    if event_id is None:
        return head + b"\n"
    return head + f"id: {event_id[0]}-{event_id[1]}\n\n".encode()


def parse_event_id(value: str | None) -> EventId | None:
    """A `Last-Event-ID`: None (absent: live events only), (0, 0) for "-1" (from the start), or the id."""
    if value is None:
        return None
    value = value.strip()
    if value in ("-1", "0", ""):
        return (0, 0)
    if _EVENT_ID.fullmatch(value):
        attempt, _, seq = value.partition("-")
        return (int(attempt), int(seq))
    raise InvalidInput(
        f"Last-Event-ID '{value[:40]}' is not an event id of this server: send the `id` of the last event "
        "received (`<attempt>-<seq>`), or -1 for the run's events from the start",
        errors=[{"path": "$.headers.Last-Event-ID", "message": "expected <attempt>-<seq> or -1"}],
    )


HIDDEN = object()
Shown = Callable[[str, Any], Any]  # (event, data) -> the data this client gets, or HIDDEN


def wanted_event(event: str, modes: list[str] | None) -> bool:
    """Whether a join that asked for `modes` (None: all) gets `event`."""
    if modes is None or event in ("error", "metadata"):
        return True
    base = event.split("|", 1)[0]
    if base.startswith("messages/"):
        return "messages" in modes
    if base == "messages":
        return "messages-tuple" in modes or "messages" in modes
    return base in modes


async def _cancel_quietly(engine: RunEngine, handle: RunHandle) -> None:
    with contextlib.suppress(Exception):
        await engine.cancel(handle.tenant_id, handle.thread_id, handle.run_id, action="interrupt", wait=False)


async def run_events(
    handle: RunHandle,
    queue: asyncio.Queue[Any],
    *,
    engine: RunEngine,
    cancel_on_disconnect: bool,
    missed: list[Event] | None = None,
    modes: list[str] | None = None,
    shown: Shown | None = None,
) -> AsyncIterator[bytes]:
    """The run's events as SSE: `metadata`, then what the client `missed` (a reconnect), then live ones.
    `shown` rewrites an event's data for this client, or drops the event (returns HIDDEN)."""

    def sse_of(item: Any) -> bytes | None:
        event_id, event, data = item
        if not wanted_event(event, modes):
            return None
        if shown is not None and (data := shown(event, data)) is HIDDEN:
            return None
        return sse(event_id, event, data)

    ended = False
    try:
        yield sse(None, "metadata", {"run_id": handle.run_id, "attempt": handle.attempt})
        sent: EventId | None = None  # live events up to this id were in `missed` already
        if missed:
            yield b"".join(b for b in map(sse_of, missed) if b is not None)
            sent = missed[-1][0]
        while True:
            item = await queue.get()
            # Send what is already waiting in one write: the first token is never held back, and a
            # busy server makes one socket write per batch of tokens instead of one per token.
            batch = []
            while item is not END:
                fresh = sent is None or item[0] is None or item[0] > sent
                if fresh and (chunk := sse_of(item)) is not None:
                    batch.append(chunk)
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


SSE_HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}


async def join_response(
    engine: RunEngine,
    tenant_id: str,
    thread_id: str,
    run_id: str,
    *,
    last_event_id: str | None,
    cancel_on_disconnect: bool = False,
    modes: list[str] | None = None,
    shown: Shown | None = None,
) -> StreamingResponse:
    """A join of a run's stream: from now on or, with `Last-Event-ID`, first what the client missed (from
    any process); an empty stream if the run has ended and nobody keeps its events."""
    after = parse_event_id(last_event_id)
    if after is None:
        handle = await engine.follow(tenant_id, thread_id, run_id)
    else:
        handle = await engine.rejoin(tenant_id, thread_id, run_id, after)
    if handle is None:

        async def ended() -> AsyncIterator[bytes]:
            yield b""

        return StreamingResponse(ended(), media_type="text/event-stream", headers=SSE_HEADERS)
    missed, queue = handle.subscribe(after=after)
    events = run_events(
        handle, queue, engine=engine, cancel_on_disconnect=cancel_on_disconnect, missed=missed, modes=modes, shown=shown
    )
    return StreamingResponse(events, media_type="text/event-stream", headers=SSE_HEADERS)
