"""CORS for the widget API (/widget/…), apart from the API's CHORUS_CORS_ORIGINS.

A preflight carries no key, so it cannot know the key's origins: any origin's preflight is answered
(methods and headers only; it grants nothing). The real request then carries the Origin the browser sets,
and the widget API checks it against the key (403 naming it) before doing anything; only then does the
response say `Access-Control-Allow-Origin: <that origin>`. Looking the key up from a query parameter
instead would put keys in access logs and make every site's preflight a database read
(docs/decisions.md). Outermost middleware: whatever the API-wide CORS added on /widget paths is replaced.
"""

from __future__ import annotations

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from chorus.webchat.widget_access import CORS_ORIGIN_STATE

PREFIX = "/widget/"
ALLOW_METHODS = "GET, POST, OPTIONS"
ALLOW_HEADERS = "Authorization, Content-Type, Last-Event-ID, X-Publishable-Key, X-Request-Id"
EXPOSE_HEADERS = "Content-Location, Location, Retry-After, X-Request-Id"
MAX_AGE = "600"


class WidgetCors:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(PREFIX):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        if scope["method"] == "OPTIONS" and origin and "access-control-request-method" in headers:
            await self._preflight(origin, send)
            return
        state = scope.setdefault("state", {})

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                response = MutableHeaders(scope=message)
                for name in [n for n in response if n.lower().startswith("access-control-")]:
                    del response[name]
                response.add_vary_header("Origin")
                if origin and state.get(CORS_ORIGIN_STATE) == origin:
                    response["Access-Control-Allow-Origin"] = origin
                    response["Access-Control-Expose-Headers"] = EXPOSE_HEADERS
            await send(message)

        await self.app(scope, receive, send_with_cors)

    @staticmethod
    async def _preflight(origin: str, send: Send) -> None:
        headers = [
            (b"access-control-allow-origin", origin.encode("latin-1")),
            (b"access-control-allow-methods", ALLOW_METHODS.encode()),
            (b"access-control-allow-headers", ALLOW_HEADERS.encode()),
            (b"access-control-max-age", MAX_AGE.encode()),
            (b"vary", b"Origin"),
            (b"content-length", b"0"),
        ]
        await send({"type": "http.response.start", "status": 204, "headers": headers})
        await send({"type": "http.response.body", "body": b""})
