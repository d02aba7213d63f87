"""Postgres LISTEN/NOTIFY for one process: wake-ups, cancels and stream events between processes.

One dedicated connection listens (a pooled connection cannot: LISTEN belongs to a session) and reconnects
after a database outage; since notifications sent while it was away are lost, every subscriber is told
when it reconnects and re-checks what it was waiting for. One more dedicated connection publishes
ordered messages (a run's stream events), so they arrive in the order they were sent.

The listening session also holds each queue worker's presence lock (`presence_key`): Postgres releases it
the moment the process dies (its socket closes), so other processes' reapers need not wait for the dead
worker's leases to run out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Callable

from psycopg import AsyncConnection, sql

log = logging.getLogger(__name__)
Callback = Callable[[str], None]
_BACKOFF_S = (0.2, 2.0)
MAX_PAYLOAD = 7900  # Postgres refuses NOTIFY payloads of 8000 bytes or more
PRESENCE_LOCKS = 0x43484F52  # the advisory-lock class of worker presence ("CHOR")


class Notifications:
    def __init__(self, url: str) -> None:
        self._url = url
        self._callbacks: dict[str, list[Callback]] = defaultdict(list)
        self._on_reconnect: list[Callable[[], None]] = []
        self._listening = asyncio.Event()
        self._publisher: AsyncConnection[tuple[object, ...]] | None = None
        self._publish_lock = asyncio.Lock()
        self._present: list[str] = []
        self.connected = False

    def on(self, channel: str, callback: Callback) -> None:
        """Call `callback(payload)` for every notification on `channel` (register before `run`)."""
        self._callbacks[channel].append(callback)

    def on_reconnect(self, callback: Callable[[], None]) -> None:
        self._on_reconnect.append(callback)

    def hold_presence(self, worker: str) -> None:
        """Hold `worker`'s presence lock while this process is connected (register before `run`)."""
        self._present.append(worker)

    async def wait_listening(self, seconds: float) -> bool:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._listening.wait()
        return self._listening.is_set()

    async def run_forever(self) -> None:
        pause = _BACKOFF_S[0]
        first = True
        while True:
            try:
                async with await AsyncConnection.connect(self._url, autocommit=True, connect_timeout=5) as conn:
                    for channel in self._callbacks:
                        await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
                    for worker in self._present:
                        await conn.execute("SELECT pg_try_advisory_lock(%s, hashtext(%s))", (PRESENCE_LOCKS, worker))
                    self.connected = True
                    self._listening.set()
                    pause = _BACKOFF_S[0]
                    if not first:
                        log.info("listening for notifications again")
                        for callback in self._on_reconnect:
                            callback()
                    first = False
                    async for note in conn.notifies():
                        for cb in self._callbacks.get(note.channel, ()):
                            try:
                                cb(note.payload)
                            except Exception:
                                log.exception("notification handler failed", extra={"channel": note.channel})
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self.connected or first:
                    log.warning("notification listener lost its connection: %s", type(exc).__name__)
                self.connected = False
                self._listening.clear()
                first = False
                await asyncio.sleep(pause)
                pause = min(pause * 2, _BACKOFF_S[1])

    async def publish(self, messages: list[tuple[str, str]]) -> None:
        """Send notifications in this order, in one statement, on the publishing connection."""
        if not messages:
            return
        async with self._publish_lock:
            for attempt in range(2):
                try:
                    if self._publisher is None or self._publisher.closed:
                        self._publisher = await AsyncConnection.connect(self._url, autocommit=True, connect_timeout=2)
                    await self._publisher.execute(
                        "SELECT pg_notify(c, p) FROM unnest(%s::text[], %s::text[]) WITH ORDINALITY AS t(c, p, n)"
                        " ORDER BY n",
                        ([c for c, _ in messages], [p for _, p in messages]),
                    )
                    return
                except Exception:
                    if self._publisher is not None:
                        with contextlib.suppress(Exception):
                            await self._publisher.close()
                    self._publisher = None
                    if attempt == 1:
                        raise

    async def close(self) -> None:
        if self._publisher is not None:
            with contextlib.suppress(Exception):
                await self._publisher.close()
            self._publisher = None
