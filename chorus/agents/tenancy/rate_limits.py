"""Rate limits shared by every server process: fixed one-minute windows counted in Postgres.

A request is one statement: an upsert per limit it counts against (`count = count + 1 RETURNING count`), in
one round trip. Each bucket's windows are offset by a stable hash of its name, so not every client's
window resets at the same second. A fixed window lets up to twice the limit through around a window's
edge; in exchange `Retry-After` is exact and refused requests cost nothing extra (docs/decisions.md).
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from dataclasses import dataclass

from chorus.agents.errors import RateLimited
from chorus.agents.storage.database import Database

log = logging.getLogger(__name__)
WINDOW_S = 60
PRUNE_EVERY_S = 60.0
PRUNE_BATCH = 10_000

_HIT = (
    "INSERT INTO rate_limit_windows AS w (bucket, window_start, count)"
    " SELECT u.bucket, floor((extract(epoch FROM now()) - u.shift) / %(window)s)::bigint * %(window)s + u.shift, 1"
    " FROM unnest(%(buckets)s::text[], %(shifts)s::int[]) AS u(bucket, shift)"
    " ON CONFLICT (bucket, window_start) DO UPDATE SET count = w.count + 1"
    " RETURNING w.bucket, w.count, w.window_start + %(window)s - extract(epoch FROM now()) AS remaining_s"
)
# Windows that ended more than a window ago; in batches, so a prune never holds a request long.
_PRUNE = (
    "DELETE FROM rate_limit_windows WHERE ctid = ANY(ARRAY(SELECT ctid FROM rate_limit_windows"
    " WHERE window_start < extract(epoch FROM now()) - 3 * %(window)s LIMIT %(batch)s))"
)


@dataclass(frozen=True)
class Limit:
    """`per_minute` requests in any one window for `bucket`; `what` names it in the 429's message."""

    bucket: str
    per_minute: int
    what: str


def _shift(bucket: str) -> int:
    return int.from_bytes(hashlib.blake2b(bucket.encode(), digest_size=4).digest(), "big") % WINDOW_S


class RateLimiter:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._pruned_at = time.monotonic()

    async def hit(self, *limits: Limit) -> None:
        """Count one request against every limit; RateLimited naming the first one it exceeds."""
        chosen = {lim.bucket: lim for lim in limits if lim.per_minute > 0}
        if not chosen:
            return
        buckets = sorted(chosen)  # one lock order for every statement: concurrent upserts cannot deadlock
        params = {"window": WINDOW_S, "buckets": buckets, "shifts": [_shift(b) for b in buckets]}
        async with self._db.connection() as conn:
            cur = await conn.execute(_HIT, params)
            rows = await cur.fetchall()
            if time.monotonic() - self._pruned_at > PRUNE_EVERY_S:
                self._pruned_at = time.monotonic()
                await conn.execute(_PRUNE, {"window": WINDOW_S, "batch": PRUNE_BATCH})
        for row in rows:
            limit = chosen[row["bucket"]]
            if row["count"] > limit.per_minute:
                retry = max(1, math.ceil(float(row["remaining_s"])))
                raise RateLimited(
                    f"rate limit reached: {limit.what} may make {limit.per_minute} requests per minute; "
                    f"retry in {retry} s (the Retry-After header)",
                    retry_after_s=retry,
                    limit_per_minute=limit.per_minute,
                )

    async def prune(self) -> int:
        """Delete ended windows now (tests, operators); how many rows went."""
        async with self._db.connection() as conn:
            cur = await conn.execute(_PRUNE, {"window": WINDOW_S, "batch": PRUNE_BATCH})
            return cur.rowcount


def tenant_limit(tenant_id: str, tenant_name: str, per_minute: int) -> Limit:
    return Limit(f"tenant:{tenant_id}", per_minute, f"tenant '{tenant_name}' (CHORUS_RATE_LIMIT_PER_MINUTE)")
