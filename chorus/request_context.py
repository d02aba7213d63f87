"""Pure ASGI middleware: request ids, the body size limit (also for chunked bodies), JSON text that cannot
be stored (lone surrogates) or is nested absurdly deep (422 for every endpoint at once), request metrics.

Pure ASGI rather than `@app.middleware("http")`: it adds no task or memory stream per request and
leaves streaming responses (SSE) untouched.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from chorus.agents.observability.logs import request_id_var
from chorus.agents.observability.metrics import HTTP_REQUESTS
from chorus.json_text import MAX_NESTING, lone_surrogate, nesting_over, unstorable_path


def _error_body(status: int, code: str, detail: str, **extra: Any) -> tuple[dict[str, Any], bytes]:
    body = json.dumps({"error": code, "detail": detail, **extra}).encode()
    start = {
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
    }
    return start, body


class RequestContextMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        upload_paths: frozenset[str] = frozenset(),
        max_upload_bytes: int = 0,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.upload_paths = upload_paths
        self.max_upload_bytes = max_upload_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        request_id = headers.get(b"x-request-id", b"").decode("latin-1") or uuid.uuid4().hex
        request_id_var.set(request_id)
        upload = scope["path"] in self.upload_paths
        limit = self.max_upload_bytes + 64 * 1024 if upload else self.max_body_bytes  # room for the form fields
        setting = "CHORUS_UPLOAD_MAX_BYTES" if upload else "CHORUS_MAX_BODY_BYTES"
        length = headers.get(b"content-length", b"").decode("latin-1")
        if length.isdigit() and int(length) > limit:
            await self._reject(send, 413, f"the body is {length} bytes; the limit is {limit} ({setting})")
            return
        content_type = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
        json_body: list[bytes] | None = [] if content_type.endswith(b"json") else None

        received = 0
        started = False
        rejected = 0
        status = 500

        async def counted_receive() -> Message:
            nonlocal received, rejected, started
            message = await receive()
            if message["type"] == "http.request":
                chunk = message.get("body", b"")
                received += len(chunk)
                if received > limit and not started:
                    # Chunked upload past the limit: answer 413 now and tell the app the client left.
                    rejected = 413
                    started = True
                    await self._reject(send, 413, f"the body is larger than {limit} bytes ({setting})")
                    return {"type": "http.disconnect"}
                if json_body is not None:
                    json_body.append(chunk)
                    whole = b"" if message.get("more_body") else b"".join(json_body)
                    if whole and not started and nesting_over(whole):
                        rejected = 422
                        started = True
                        await self._reject(
                            send,
                            422,
                            f"the body's JSON nests arrays and objects more than {MAX_NESTING} levels deep; no API"
                            " field is that deep: flatten it",
                            errors=[{"path": "$", "message": f"nested more than {MAX_NESTING} levels deep"}],
                        )
                        return {"type": "http.disconnect"}
                    bad = lone_surrogate(whole) if whole else None
                    if bad and not started:
                        rejected = 422
                        started = True
                        message_text = (
                            f"unpaired UTF-16 surrogate ({bad}): text that cannot be stored; send valid UTF-8 "
                            "(a high surrogate escape must be followed by its low half)"
                        )
                        await self._reject(
                            send,
                            422,
                            f"the body contains an {message_text}",
                            errors=[{"path": unstorable_path(whole), "message": message_text}],
                        )
                        return {"type": "http.disconnect"}
            return message

        async def send_with_id(message: Message) -> None:
            nonlocal started, status
            if rejected:
                return
            if message["type"] == "http.response.start":
                started = True
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, counted_receive, send_with_id)
        finally:
            route = scope.get("route")
            HTTP_REQUESTS.labels(scope["method"], getattr(route, "path", "unmatched"), str(rejected or status)).inc()

    @staticmethod
    async def _reject(send: Send, status: int, detail: str, **extra: Any) -> None:
        start, body = _error_body(status, "payload_too_large" if status == 413 else "invalid_input", detail, **extra)
        start["headers"].append((b"x-request-id", (request_id_var.get() or "").encode()))
        await send(start)
        await send({"type": "http.response.body", "body": body})
