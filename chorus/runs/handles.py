"""A run as this process sees it: its outcome and the live subscribers of its events.

Events come from the local executor or, for a run executing in another process, from the relay.
Subscriber queues are bounded: a client too slow to read its stream is dropped with an error event
rather than buffered without end. Finished handles are kept briefly for late joiners, and the table is
bounded.

Every event has an id, `<attempt>-<seq>` (the same in every process: the relay carries both), and the
handle keeps its last REPLAY_MAX events, so a client that reconnects with `Last-Event-ID` gets what it
missed. A finished run keeps them while its handle is kept only if it was created `stream_resumable`.
"""

from __future__ import annotations

import asyncio
import bisect
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any

END = object()
SUBSCRIBER_QUEUE_MAX = 2000  # events a subscriber may lag behind before it is dropped
REPLAY_MAX = 5000  # events of a run kept for clients that reconnect
EventId = tuple[int, int]  # (attempt, seq)
Event = tuple[EventId, str, Any]  # (id, name, data)
KEEP_FINISHED_S = 120.0
MAX_FINISHED = 2000
TOO_SLOW = {
    "error": "stream_lagging",
    "message": "this client read the stream too slowly and was dropped; join the run again or fetch the thread state",
}


@dataclass
class RunHandle:
    run_id: str
    tenant_id: str
    thread_id: str
    assistant_id: str
    stream_mode: list[str] = field(default_factory=lambda: ["values"])
    subscribers: list[asyncio.Queue[Any]] = field(default_factory=list)
    done: asyncio.Event = field(default_factory=asyncio.Event)
    status: str = "pending"
    result: Any = None
    error: dict[str, str] | None = None
    seq: int = 0
    attempt: int = 1
    finished_at: float | None = None
    row: dict[str, Any] | None = None  # the run's row when this process stored it
    resumable: bool = False  # keep the events for reconnecting clients after the run ends too
    log: deque[Event] = field(default_factory=lambda: deque(maxlen=REPLAY_MAX))
    executed_here: bool = False  # its log is the run's own (not a watcher's partial copy)
    replayed: asyncio.Event = field(default_factory=asyncio.Event)  # another process sent its log (relay)

    def remember(self, item: Event) -> None:
        """Keep an event replayed by the process executing the run, in id order, once."""
        ids = [e[0] for e in self.log]
        at = bisect.bisect_left(ids, item[0])
        if at < len(ids) and ids[at] == item[0]:
            return
        if at == len(ids):
            self.log.append(item)
        elif len(self.log) < REPLAY_MAX:
            self.log.insert(at, item)

    def subscribe(self, *, after: EventId | None = None) -> tuple[list[Event], asyncio.Queue[Any]]:
        """The events kept after `after` (none without it), and a queue of what comes next."""
        missed = [e for e in self.log if e[0] > after] if after is not None else []
        queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=SUBSCRIBER_QUEUE_MAX + 2)
        if self.done.is_set():
            if self.error is not None and not any(name == "error" for _, name, _ in missed):
                queue.put_nowait((None, "error", self.error))
            queue.put_nowait(END)
        else:
            self.subscribers.append(queue)
        return missed, queue

    def unsubscribe(self, queue: asyncio.Queue[Any]) -> None:
        if queue in self.subscribers:
            self.subscribers.remove(queue)

    def publish(self, event: str, data: Any) -> None:
        self.seq += 1
        item = ((self.attempt, self.seq), event, data)
        self.log.append(item)
        for q in list(self.subscribers):
            if q.qsize() >= SUBSCRIBER_QUEUE_MAX:
                # Two slots stay free for these: the client learns why its stream ends.
                self.subscribers.remove(q)
                q.put_nowait((None, "error", TOO_SLOW))
                q.put_nowait(END)
            else:
                q.put_nowait(item)

    def finish(self, status: str, *, result: Any = None, error: dict[str, str] | None = None) -> None:
        if self.done.is_set():
            return
        self.status, self.result, self.error = status, result, error
        for q in self.subscribers:
            q.put_nowait(END)
        self.subscribers.clear()
        self.finished_at = time.monotonic()
        if not self.resumable:
            self.log.clear()
        self.done.set()

    def outcome(self) -> Any:
        if self.error is not None:
            return {"__error__": self.error}
        return self.result or {}


class HandleTable:
    """The handles of this process: every active run, and finished ones for a short while."""

    def __init__(self) -> None:
        self._active: dict[str, RunHandle] = {}
        self._finished: OrderedDict[str, RunHandle] = OrderedDict()

    def __len__(self) -> int:
        return len(self._active) + len(self._finished)

    def add(self, handle: RunHandle) -> RunHandle:
        existing = self.get(handle.run_id)
        if existing is not None and not existing.done.is_set():
            return existing
        self._finished.pop(handle.run_id, None)
        self._active[handle.run_id] = handle
        return handle

    def get(self, run_id: str) -> RunHandle | None:
        return self._active.get(run_id) or self._finished.get(run_id)

    def finished(self, handle: RunHandle) -> None:
        """Move a finished handle to the bounded table of recent ones."""
        if self._active.get(handle.run_id) is handle:
            del self._active[handle.run_id]
        self._finished[handle.run_id] = handle
        self._expire()

    def drop(self, run_id: str) -> None:
        self._active.pop(run_id, None)
        self._finished.pop(run_id, None)

    def _expire(self) -> None:
        now = time.monotonic()
        while self._finished:
            oldest = next(iter(self._finished.values()))
            too_old = oldest.finished_at is not None and now - oldest.finished_at > KEEP_FINISHED_S
            if not too_old and len(self._finished) <= MAX_FINISHED:
                break
            self._finished.popitem(last=False)

    def active(self) -> list[RunHandle]:
        return list(self._active.values())
