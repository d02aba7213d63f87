"""The queue's handler for jobs of kind `webhook`: one POST of a run's completion to the URL its run named.

At least once: the delivery was queued with the run's final status, and a delivery cut short (a process
stopping or dying mid-request) is sent again under the same `X-Chorus-Delivery` id, which receivers use to
drop duplicates. A network error, a timeout, 408, 429 or a 5xx is retried with exponential backoff (a
short `Retry-After` is honoured) up to MAX_ATTEMPTS; any other answer ends the delivery: 2xx delivered,
3xx (redirects are not followed) and other 4xx failed. The destination passes the SSRF guard again at each
attempt and the request goes to the address that was checked (no second DNS answer can move it).
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

import httpx

from chorus.agents.destinations import check_destination, pinned_request
from chorus.agents.errors import DestinationRefused, UnresolvableDestination
from chorus.agents.observability.metrics import WEBHOOK_ATTEMPTS
from chorus.agents.queue import Job, JobContext, JobQueue, Lease, StopReason
from chorus.runs.webhook_signing import DELIVERY_HEADER, EVENT_HEADER, SIGNATURE_HEADER, WebhookSigner
from chorus.runs.webhooks_repository import MAX_ATTEMPTS, Delivery, WebhookDeliveries

log = logging.getLogger(__name__)
TIMEOUT_S = 10.0
RETRY_BASE_S = 2.0  # attempts 2..5 follow after about 2, 8, 32 and 128 s: about three minutes in all
RETRY_AFTER_MAX_S = 120.0  # a receiver's Retry-After is honoured up to this
_RETRIED_STATUSES = frozenset({408, 429})
_ERROR_CHARS = 300


@dataclass(frozen=True)
class Attempt:
    """One attempt's outcome: `retry_after_s` None means final (delivered or failed for good)."""

    delivered: bool
    status_code: int | None = None
    error: str | None = None
    retry_after_s: float | None = None


def backoff_s(attempt: int, *, base_s: float) -> float:
    """The wait after failed attempt `attempt` (1-based): base * 4^(attempt-1), ±20% so that receivers
    recovering from an outage are not hit by every retry at once."""
    return float(base_s * 4 ** (attempt - 1) * random.uniform(0.8, 1.2))


def _retry_after(resp: httpx.Response) -> float | None:
    value = resp.headers.get("retry-after", "").strip()
    return float(value) if value.isdigit() else None


class WebhookSender:
    def __init__(
        self,
        *,
        deliveries: WebhookDeliveries,
        queue: JobQueue,
        signer: WebhookSigner,
        wake_after: Callable[[float], None],
    ) -> None:
        self.deliveries = deliveries
        self.queue = queue
        self.signer = signer
        self.wake_after = wake_after
        self.timeout_s = TIMEOUT_S
        self.retry_base_s = RETRY_BASE_S
        # No keep-alive: each request's TLS is set up for its own host on the checked address, and a pooled
        # connection (keyed by address) must not carry another host's request.
        self._client = httpx.AsyncClient(
            follow_redirects=False,
            trust_env=False,
            limits=httpx.Limits(max_keepalive_connections=0),
            headers={"User-Agent": "Chorus-Webhooks/1"},
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    # -- the job handler -------------------------------------------------------------------------

    async def run(self, job: Job, ctx: JobContext) -> None:
        try:
            await self._deliver(job, ctx)
        except asyncio.CancelledError:
            if ctx.stop_reason != StopReason.LOST and not ctx.finished:
                # The process stops: another one sends it (again: it may have arrived; receivers dedupe).
                try:
                    await self.queue.hand_back(job.job_id, ctx.lease)
                except Exception:
                    log.warning("could not hand a webhook delivery back; its lease lapses and it is retried")
            ctx.finished = True

    async def given_up(self, job: Job, lease: Lease) -> None:
        await self.deliveries.given_up(
            job.job_id,
            lease,
            attempts=job.attempts,
            error=f"the server process stopped {job.attempts} time(s) while sending it",
        )

    async def _deliver(self, job: Job, ctx: JobContext) -> None:
        delivery = await self.deliveries.pending(job.job_id)
        if delivery is None:
            await self.queue.finish(job.job_id, ctx.lease)
            ctx.finished = True
            return
        attempt = await self.attempt(delivery, number=job.attempts)
        host = urlsplit(delivery.url).hostname  # never the whole URL: its query may hold the receiver's token
        facts = {"delivery_id": delivery.delivery_id, "attempt": job.attempts, "host": host}
        if attempt.retry_after_s is not None and job.attempts < MAX_ATTEMPTS:
            wait = attempt.retry_after_s
            await self.deliveries.retry_later(
                delivery.delivery_id,
                ctx.lease,
                attempts=job.attempts,
                status_code=attempt.status_code,
                error=attempt.error or "",
                after_s=wait,
            )
            self.wake_after(wait)
            WEBHOOK_ATTEMPTS.labels("retried").inc()
            log.info("webhook attempt failed; retrying in %.1f s: %s", wait, attempt.error, extra=facts)
        else:
            await self.deliveries.ended(
                delivery.delivery_id,
                ctx.lease,
                delivered=attempt.delivered,
                attempts=job.attempts,
                status_code=attempt.status_code,
                error=attempt.error,
            )
            WEBHOOK_ATTEMPTS.labels("delivered" if attempt.delivered else "failed").inc()
            if attempt.delivered:
                log.info("webhook delivered", extra=facts)
            else:
                log.warning("webhook delivery failed for good: %s", attempt.error, extra=facts)
        ctx.finished = True

    # -- one attempt -----------------------------------------------------------------------------

    async def attempt(self, delivery: Delivery, *, number: int) -> Attempt:
        retry_s = backoff_s(number, base_s=self.retry_base_s)
        try:
            addresses = await check_destination(delivery.url, who="webhook")
        except UnresolvableDestination as exc:
            return Attempt(False, error=exc.detail, retry_after_s=retry_s)
        except DestinationRefused as exc:
            return Attempt(False, error=exc.detail)
        body = json.dumps(
            {**delivery.payload, "webhook_sent_at": datetime.now(UTC).isoformat()},
            separators=(",", ":"),
            ensure_ascii=False,
        ).encode()
        url, host, extensions = pinned_request(delivery.url, addresses[0])
        headers = {
            **host,
            "Content-Type": "application/json",
            EVENT_HEADER: delivery.event,
            DELIVERY_HEADER: delivery.delivery_id,
            "X-Chorus-Attempt": str(number),
            SIGNATURE_HEADER: self.signer.sign(delivery.tenant_id, body),
        }
        request = self._client.build_request(
            "POST", url, content=body, headers=headers, extensions=extensions, timeout=self.timeout_s
        )
        try:
            async with asyncio.timeout(self.timeout_s):  # the whole exchange, not each read
                resp = await self._client.send(request, stream=True)
                await resp.aclose()  # the answer's body is not needed (nor read: it may be large)
        except (TimeoutError, httpx.TimeoutException):
            return Attempt(False, error=f"no answer within {self.timeout_s:g} s", retry_after_s=retry_s)
        except httpx.HTTPError as exc:
            reason = str(exc) or type(exc).__name__
            return Attempt(False, error=f"could not reach the receiver: {reason}"[:_ERROR_CHARS], retry_after_s=retry_s)
        code = resp.status_code
        if 200 <= code < 300:
            return Attempt(True, status_code=code)
        if code in _RETRIED_STATUSES or code >= 500:
            asked = _retry_after(resp)
            wait = min(asked, RETRY_AFTER_MAX_S) if asked is not None else retry_s
            return Attempt(False, status_code=code, error=f"the receiver answered HTTP {code}", retry_after_s=wait)
        if 300 <= code < 400:
            error = f"the receiver answered HTTP {code}; redirects are not followed"
            return Attempt(False, status_code=code, error=error)
        return Attempt(False, status_code=code, error=f"the receiver answered HTTP {code}; not retried")
