"""Stream events between processes: a client joined to a run that executes in another process.

The watching process announces its interest on `chorus_watch` (again every few seconds while it waits);
the executing process then sends that run's events on `chorus_events`, split into parts when larger
than a notification may be. Runs nobody watches from elsewhere cost nothing. The watcher also checks
the run's row every few seconds, so it learns the outcome even if the executing process died.

A client that rejoins a run here with `Last-Event-ID` gets the events it missed: the process that executed
the run replays them from its log (marked, to this process only), then sends a mark; an ended run's events
are asked for the same way while that process still keeps them.

A local handle whose run neither executes here nor is watched (an orphan: the task that should end it is
gone) is watched like a remote run after two checks, so no client waits on it forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from chorus.agents.queue.notifications import MAX_PAYLOAD, Notifications
from chorus.runs.handles import HandleTable, RunHandle
from chorus.runs.serialization import dumps

log = logging.getLogger(__name__)
EVENTS_CHANNEL = "chorus_events"
WATCH_CHANNEL = "chorus_watch"
WATCH_EVERY_S = 2.0
WATCH_TTL_S = 3 * WATCH_EVERY_S
END_EVENT = "__end__"
_OUTBOX_MAX = 20000
REPLAY_EVERY_S = 1.0
_PART = MAX_PAYLOAD - 300  # room for the part's envelope

# (run ids) -> {run_id: (status, error, values)} for runs that have ended
OutcomeLookup = Callable[[list[str]], Awaitable[dict[str, tuple[str, dict[str, str] | None, Any]]]]


def _messages(run_id: str, attempt: int, seq: int, event: str, data: Any, *, replay: bool = False) -> list[str]:
    body = dumps([event, data]).decode()
    flag = ',"p":1' if replay else ""
    if len(body) <= _PART:
        return [f'{{"r":"{run_id}","a":{attempt},"s":{seq}{flag},"b":{body}}}']
    parts = [body[i : i + _PART] for i in range(0, len(body), _PART)]
    extra = {"p": 1} if replay else {}
    return [
        orjson.dumps({"r": run_id, "a": attempt, "s": seq, "i": i, "n": len(parts), "c": part, **extra}).decode()
        for i, part in enumerate(parts)
    ]


class EventRelay:
    def __init__(
        self,
        notifications: Notifications,
        handles: HandleTable,
        *,
        me: str,
        lookup: OutcomeLookup,
        executing_here: Callable[[str], bool],
    ) -> None:
        self._notifications = notifications
        self._handles = handles
        self._me = me
        self._lookup = lookup
        self._executing_here = executing_here
        self._orphans: set[str] = set()  # seen by the last check as an orphan
        self._watchers: dict[str, dict[str, float]] = {}  # run executing here -> {watcher: until}
        self._watching: dict[str, RunHandle] = {}  # run executing elsewhere -> local handle
        self._replaying: dict[str, RunHandle] = {}  # ended run whose events another process may still hold
        self._replayed: dict[tuple[str, str], float] = {}  # (run, watcher) -> when we last replayed to it
        self._parts: dict[tuple[str, int, int], list[str | None]] = {}
        self._outbox: asyncio.Queue[tuple[str, str]] = asyncio.Queue(maxsize=_OUTBOX_MAX)
        notifications.on(EVENTS_CHANNEL, self._on_event)
        notifications.on(WATCH_CHANNEL, self._on_watch)
        notifications.on_reconnect(self._announce_soon)
        self._announce = asyncio.Event()

    # -- the executing side ----------------------------------------------------------------------

    def watched(self, run_id: str) -> bool:
        watchers = self._watchers.get(run_id)
        if not watchers:
            return False
        now = time.monotonic()
        for watcher in [w for w, until in watchers.items() if until < now]:
            del watchers[watcher]
        if not watchers:
            del self._watchers[run_id]
            return False
        return True

    def send(self, handle: RunHandle, event: str, data: Any) -> None:
        """Relay one event of a run executing here to the processes watching it."""
        for message in _messages(handle.run_id, handle.attempt, handle.seq, event, data):
            try:
                self._outbox.put_nowait((EVENTS_CHANNEL, message))
            except asyncio.QueueFull:
                log.warning("event relay is behind; dropping an event", extra={"run_id": handle.run_id})
                return

    def send_end(self, handle: RunHandle) -> None:
        if self.watched(handle.run_id):
            self.send(handle, END_EVENT, {"status": handle.status, "error": handle.error, "result": handle.result})
        self._watchers.pop(handle.run_id, None)

    def _on_watch(self, payload: str) -> None:
        run_id, _, rest = payload.partition(":")
        watcher, _, after = rest.partition("@")  # a worker id has colons, never an @
        if watcher == self._me:
            return
        handle = self._handles.get(run_id)
        if handle is None or not handle.executed_here:
            return  # not executed here
        if after:
            self._replay(handle, watcher, after)
        if not handle.done.is_set():
            self._watchers.setdefault(run_id, {})[watcher] = time.monotonic() + WATCH_TTL_S

    def _replay(self, handle: RunHandle, watcher: str, after: str) -> None:
        """Send a watcher the events it asked for (a client rejoined there with `Last-Event-ID`), then a mark.
        Live events come first: at most one replay per run and watcher a second, and none while the outbox is
        half full (the watcher then serves what it has after its wait)."""
        now = time.monotonic()
        key = (handle.run_id, watcher)
        if now - self._replayed.get(key, 0.0) < REPLAY_EVERY_S or self._outbox.qsize() > _OUTBOX_MAX // 2:
            log.warning(
                "a replay request was refused (too frequent, or the relay is busy)", extra={"run_id": handle.run_id}
            )
            return
        self._replayed[key] = now
        if len(self._replayed) > 10_000:
            self._replayed = {k: t for k, t in self._replayed.items() if now - t < REPLAY_EVERY_S}
        attempt, _, seq = after.partition("-")
        since = (int(attempt), int(seq)) if attempt.isdigit() and seq.isdigit() else (0, 0)
        for (a, sq), event, data in [e for e in handle.log if e[0] > since]:
            for message in _messages(handle.run_id, a, sq, event, data, replay=True):
                self._queue((EVENTS_CHANNEL, message))
        self._queue((EVENTS_CHANNEL, orjson.dumps({"r": handle.run_id, "x": watcher}).decode()))

    def _queue(self, message: tuple[str, str]) -> None:
        try:
            self._outbox.put_nowait(message)
        except asyncio.QueueFull:
            log.warning("event relay is behind; dropping an event")

    # -- the watching side -----------------------------------------------------------------------

    def watch(self, handle: RunHandle) -> None:
        """Feed `handle` with the events of its run, which executes in another process."""
        self._watching[handle.run_id] = handle
        self._announce.set()

    def unwatch(self, run_id: str) -> None:
        self._watching.pop(run_id, None)

    def watching(self, run_id: str) -> bool:
        return run_id in self._watching

    async def replay(self, handle: RunHandle, after: tuple[int, int], *, wait_s: float) -> None:
        """Ask the process that executed `handle`'s run for its events after `after`; they land in the
        handle's log (in id order). Waits for its mark, at most `wait_s` (no process may have them)."""
        ended = handle.run_id not in self._watching
        if ended:
            self._replaying[handle.run_id] = handle
        handle.replayed.clear()
        try:
            await self._notifications.publish([(WATCH_CHANNEL, f"{handle.run_id}:{self._me}@{after[0]}-{after[1]}")])
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait_s):
                    await handle.replayed.wait()
        finally:
            if ended:
                self._replaying.pop(handle.run_id, None)

    def _announce_soon(self) -> None:
        self._announce.set()

    def _on_event(self, payload: str) -> None:
        try:
            message = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return
        run_id = message.get("r")
        if not isinstance(run_id, str):
            return
        handle = self._watching.get(run_id) or self._replaying.get(run_id)
        if handle is None:
            return
        if "x" in message:  # the end of a replay, for one watcher
            if message["x"] == self._me:
                handle.replayed.set()
            return
        attempt, seq = int(message["a"]), int(message["s"])
        if "b" in message:
            event, data = message["b"]
        else:
            key = (run_id, attempt, seq)
            parts = self._parts.setdefault(key, [None] * int(message["n"]))
            parts[int(message["i"])] = message["c"]
            if any(p is None for p in parts):
                return
            del self._parts[key]
            event, data = orjson.loads("".join(p for p in parts if p is not None))
        if "p" in message:  # replayed for a client that rejoined: kept, not sent to live subscribers
            handle.remember(((attempt, seq), event, data))
            return
        if attempt < handle.attempt or (attempt == handle.attempt and seq <= handle.seq and seq > 0):
            return  # a repeat
        handle.attempt, handle.seq = attempt, seq - 1
        if event == END_EVENT:
            self._finish(handle, data["status"], data.get("error"), data.get("result"))
        else:
            handle.publish(event, data)

    def _finish(self, handle: RunHandle, status: str, error: dict[str, str] | None, result: Any) -> None:
        self.unwatch(handle.run_id)
        if error is not None and not handle.done.is_set():
            handle.publish("error", error)
        handle.finish(status, result=result, error=error)
        self._handles.finished(handle)
        for key in [k for k in self._parts if k[0] == handle.run_id]:
            del self._parts[key]

    def _watch_orphans(self) -> None:
        orphans = {
            h.run_id
            for h in self._handles.active()
            if not h.done.is_set() and h.run_id not in self._watching and not self._executing_here(h.run_id)
        }
        for run_id in orphans & self._orphans:  # an orphan twice in a row: not a handle between two owners
            handle = self._handles.get(run_id)
            if handle is not None:
                log.warning(
                    "a run's handle was left without an owner; following the run's row", extra={"run_id": run_id}
                )
                self.watch(handle)
        self._orphans = orphans - self._orphans

    # -- the background task ---------------------------------------------------------------------

    async def run_forever(self) -> None:
        await asyncio.gather(self._publish_forever(), self._watch_forever())

    async def _publish_forever(self) -> None:
        while True:
            batch = [await self._outbox.get()]
            while not self._outbox.empty() and len(batch) < 200:
                batch.append(self._outbox.get_nowait())
            try:
                await self._notifications.publish(batch)
            except Exception as exc:
                log.warning("could not relay %d stream event(s): %s", len(batch), type(exc).__name__)

    async def _watch_forever(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(WATCH_EVERY_S):
                    await self._announce.wait()
            self._announce.clear()
            self._watch_orphans()
            runs = list(self._watching)
            if not runs:
                continue
            with contextlib.suppress(Exception):
                await self._notifications.publish([(WATCH_CHANNEL, f"{r}:{self._me}") for r in runs])
            try:
                ended = await self._lookup(runs)
            except Exception as exc:
                log.warning("could not check watched runs: %s", type(exc).__name__)
                continue
            for run_id, (status, error, values) in ended.items():
                handle = self._watching.get(run_id)
                if handle is not None and not handle.done.is_set():
                    self._finish(handle, status, error, values)
