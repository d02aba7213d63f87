"""Who calls the widget API: a publishable key (X-Publishable-Key) from one of its origins, or a visitor
(Authorization: Bearer <visitor token>) of a key that is still live. Every call is counted against the
key's rate limits (and the visitor's). API keys are refused here: they would give a web page the tenant's
full rights."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends, Request

from chorus.agents.errors import Unauthorized
from chorus.agents.observability.logs import tenant_id_var
from chorus.agents.tenancy.publishable_keys import (
    PUBLISHABLE_PREFIX,
    VISITOR_TOKEN_PREFIX,
    PublishableKey,
    PublishableKeyResolver,
)
from chorus.agents.tenancy.rate_limits import Limit, RateLimiter
from chorus.webchat.visitor_tokens import RENEW_WITHIN_S, Visitor, VisitorTokens

# The origin a widget response may be read from, set once the key has allowed it (chorus/webchat/widget_cors.py).
CORS_ORIGIN_STATE = "widget_cors_origin"


@dataclass(frozen=True)
class WidgetCaller:
    key: PublishableKey
    visitor: Visitor | None  # None: a publishable key alone (config, a new session)

    @property
    def tenant_id(self) -> str:
        return self.key.tenant_id


def _bearer(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    return auth[7:].strip() if auth.lower().startswith("bearer ") else None


def _refuse_api_key(request: Request, bearer: str | None) -> None:
    api_key = request.headers.get("x-api-key")
    if api_key or (bearer and not bearer.startswith(VISITOR_TOKEN_PREFIX)):
        raise Unauthorized(
            "API keys are not accepted on the widget API (/widget/v1): a web page would hold the tenant's full "
            "rights. The widget sends a publishable key (X-Publishable-Key: pk_chorus_…) and then its visitor "
            "token (Authorization: Bearer vt_chorus_…)"
        )


def page_origin(request: Request) -> str | None:
    """The origin of the page that made the request. Browsers send `Origin` on every cross-origin request but
    not on a same-origin GET (a page served by Chorus itself, e.g. /static/widget-demo.html); that one says
    `Sec-Fetch-Site: same-origin`, and its origin is its Referer's (else the server's own address)."""
    origin = request.headers.get("origin")
    if origin or request.headers.get("sec-fetch-site") != "same-origin":
        return origin
    referer = urlsplit(request.headers.get("referer", ""))
    if referer.scheme in ("http", "https") and referer.netloc:
        return f"{referer.scheme}://{referer.netloc}"
    return f"{request.url.scheme}://{request.url.netloc}"


async def _admit(request: Request, key: PublishableKey, visitor: Visitor | None) -> WidgetCaller:
    origin = page_origin(request)
    if key.check_origin(origin) is not None and request.headers.get("origin"):
        request.scope.setdefault("state", {})[CORS_ORIGIN_STATE] = origin
    tenant_id_var.set(key.tenant_id)
    limits = [Limit(f"pk:{key.key_id}", key.key_per_minute, f"publishable key {key.prefix}…")]
    if visitor is not None:
        limits.append(Limit(f"pkv:{key.key_id}:{visitor.visitor_id}", key.visitor_per_minute, "a visitor"))
    limiter: RateLimiter = request.app.state.rate_limiter
    await limiter.hit(*limits)
    return WidgetCaller(key, visitor)


def _resolver(request: Request) -> PublishableKeyResolver:
    resolver: PublishableKeyResolver = request.app.state.publishable_keys
    return resolver


def _tokens(request: Request) -> VisitorTokens:
    tokens: VisitorTokens = request.app.state.visitor_tokens
    return tokens


async def _key_caller(request: Request) -> WidgetCaller:
    bearer = _bearer(request)
    _refuse_api_key(request, bearer)
    raw = request.headers.get("x-publishable-key")
    if not raw:
        raise Unauthorized(
            "missing publishable key: send 'X-Publishable-Key: pk_chorus_…' (an admin creates one with "
            "POST /api/v1/publishable-keys)"
        )
    if not raw.startswith(PUBLISHABLE_PREFIX):
        raise Unauthorized("X-Publishable-Key must hold a publishable key (pk_chorus_…)")
    return await _admit(request, await _resolver(request).by_key(raw), None)


async def _visitor_caller(request: Request) -> WidgetCaller:
    bearer = _bearer(request)
    _refuse_api_key(request, bearer)
    if not bearer:
        raise Unauthorized(
            "missing visitor token: start a session with POST /widget/v1/session (X-Publishable-Key), then "
            "send 'Authorization: Bearer <visitor_token>'"
        )
    visitor = _tokens(request).verify(bearer)
    key = await _resolver(request).by_id(visitor.key_id)
    if key.tenant_id != visitor.tenant_id:
        raise Unauthorized("this visitor token does not match its publishable key; start a new session")
    return await _admit(request, key, visitor)


def renewed_visitor(request: Request, caller: WidgetCaller) -> Visitor | None:
    """The visitor of the token a session request presents to be renewed (None: a new visitor). A token of
    another key is refused rather than silently replaced: the widget would lose its conversations."""
    bearer = _bearer(request)
    if not bearer:
        return None
    with _readable_refusals(request):
        visitor = _tokens(request).verify(bearer, expired_for_up_to_s=RENEW_WITHIN_S)
        if visitor.key_id != caller.key.key_id or visitor.tenant_id != caller.tenant_id:
            raise Unauthorized("this visitor token belongs to another publishable key; start a session without it")
    return visitor


@contextmanager
def _readable_refusals(request: Request) -> Iterator[None]:
    """A 401 (an expired or unknown token, a revoked key) must reach the page, or the widget cannot tell it
    from a network failure and renew its token: it says only why, so any origin may read it."""
    try:
        yield
    except Unauthorized:
        origin = request.headers.get("origin")
        if origin:
            request.scope.setdefault("state", {})[CORS_ORIGIN_STATE] = origin
        raise


async def _key_caller_readable(request: Request) -> WidgetCaller:
    with _readable_refusals(request):
        return await _key_caller(request)


async def _visitor_caller_readable(request: Request) -> WidgetCaller:
    with _readable_refusals(request):
        return await _visitor_caller(request)


KeyCallerDep = Annotated[WidgetCaller, Depends(_key_caller_readable)]
VisitorDep = Annotated[WidgetCaller, Depends(_visitor_caller_readable)]
