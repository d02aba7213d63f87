"""Local stand-ins for remote services (the only fakes in the suite): an HTTP API for declarative tools,
an OpenAI-compatible server (chat completions for the real langchain-openai client, embeddings for
the real openai client), and LiveKit's server API (SIP and agent dispatch, for the real livekit-api client)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse

from chorus.voice.provider_keys import ProviderKeys


def inventory_api() -> FastAPI:
    """What a customer's backend might expose: GET /inventory/{id}, POST /tickets, a slow and a broken route,
    two careless ones that echo the request's headers back (in a JSON answer, in an error page), and
    POST /pickups, which answers only once the test sets `app.state.release` (a call in flight)."""
    app = FastAPI()
    seen: list[dict[str, Any]] = []
    app.state.seen = seen
    release = asyncio.Event()
    app.state.release = release

    @app.get("/inventory/{product_id}")
    async def inventory(product_id: str, request: Request) -> dict[str, Any]:
        seen.append({"path": request.url.path, "query": dict(request.query_params), "headers": dict(request.headers)})
        return {"product_id": product_id, "available": product_id != "SOLDOUT", "stock_count": 7}

    @app.post("/tickets")
    async def tickets(request: Request) -> dict[str, Any]:
        body = await request.json()
        seen.append({"path": request.url.path, "body": body, "headers": dict(request.headers)})
        return {"ticket_id": "T-1", "received": body}

    @app.post("/echo")
    async def echo(request: Request) -> dict[str, Any]:
        body = await request.json()
        seen.append({"path": request.url.path, "body": body, "headers": dict(request.headers)})
        return {"received": body, "your_headers": dict(request.headers)}

    @app.post("/reject")
    async def reject(request: Request) -> PlainTextResponse:
        seen.append({"path": request.url.path, "headers": dict(request.headers)})
        return PlainTextResponse(f"refused credentials: {request.headers.get('authorization')}", status_code=403)

    @app.post("/pickups")
    async def pickups(request: Request) -> dict[str, Any]:
        body = await request.json()
        seen.append({"path": request.url.path, "body": body, "headers": dict(request.headers)})
        await release.wait()
        return {"pickup_id": f"PU-{len(seen)}", "status": "scheduled", "received": body}

    @app.get("/slow/{item}")
    async def slow(item: str) -> dict[str, Any]:
        await asyncio.sleep(2)
        return {"item": item}

    @app.get("/broken/{item}")
    async def broken(item: str) -> JSONResponse:
        return JSONResponse({"error": "database down"}, status_code=500)

    return app


def openai_api(*, fail_first: int = 0, reply: str = "Hello from the stand-in model.") -> FastAPI:
    """An OpenAI-compatible /v1/chat/completions that streams `reply` (and fails its first N calls with 500)."""
    app = FastAPI()
    calls: list[dict[str, Any]] = []
    app.state.calls = calls

    @app.post("/v1/chat/completions")
    async def completions(request: Request) -> Any:
        body = await request.json()
        calls.append(body)
        if len(calls) <= fail_first:
            return JSONResponse({"error": {"message": "overloaded", "type": "server_error"}}, status_code=500)
        created = int(time.time())
        words = reply.split(" ")
        if not body.get("stream"):
            return {
                "id": "cmpl-1",
                "object": "chat.completion",
                "created": created,
                "model": body["model"],
                "choices": [{"index": 0, "message": {"role": "assistant", "content": reply}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 11, "completion_tokens": len(words), "total_tokens": 11 + len(words)},
            }

        async def events() -> AsyncIterator[bytes]:
            for i, word in enumerate(words):
                token = word if i == len(words) - 1 else word + " "
                chunk = {
                    "id": "cmpl-1",
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": body["model"],
                    "choices": [{"index": 0, "delta": {"role": "assistant", "content": token}, "finish_reason": None}],
                }
                yield f"data: {json.dumps(chunk)}\n\n".encode()
            final = {
                "id": "cmpl-1",
                "object": "chat.completion.chunk",
                "created": created,
                "model": body["model"],
                "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 11, "completion_tokens": len(words), "total_tokens": 11 + len(words)},
            }
            yield f"data: {json.dumps(final)}\n\n".encode()
            yield b"data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    @app.post("/v1/embeddings")
    async def embeddings(request: Request) -> Any:
        """1536-dim vectors whose similarity follows shared words (enough to rank, not a real model)."""
        body = await request.json()
        calls.append(body)
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        data = []
        for i, text in enumerate(inputs):
            vector = [0.0] * 1536
            for word in str(text).lower().split():
                token = "".join(ch for ch in word if ch.isalnum())
                if token:
                    vector[int(hashlib.sha256(token.encode()).hexdigest(), 16) % 1536] += 1.0
            vector[0] += 0.01
            data.append({"object": "embedding", "index": i, "embedding": vector})
        return {
            "object": "list",
            "data": data,
            "model": body["model"],
            "usage": {"prompt_tokens": 1, "total_tokens": 1},
        }

    return app


@asynccontextmanager
async def serve(app: FastAPI) -> AsyncIterator[str]:
    """Serve `app` on a free loopback port for the duration of the block; yields its base URL."""
    from tests.conftest import free_port

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


# Keys for the speech providers' real plugin classes (Deepgram, ElevenLabs), built without a network call.
FAKE_SPEECH_KEYS = ProviderKeys(deepgram="fake-deepgram-key", elevenlabs="fake-elevenlabs-key")


def clinic_api() -> FastAPI:
    """A clinic's backend for the voicebot: GET /hours (the opening days, in words a caller can hear)."""
    app = FastAPI()
    app.state.calls = 0

    @app.get("/hours")
    async def hours() -> dict[str, Any]:
        app.state.calls += 1
        return {"days": "monday to friday"}

    return app


# -- LiveKit's server API (Twirp over HTTP, protobuf bodies) ------------------------------------------------

LIVEKIT_KEY = "lk-test-key"
LIVEKIT_SECRET = "lk-test-secret-that-is-long-enough-for-hs256"


@dataclass
class LiveKitState:
    """What the stand-in LiveKit server holds and what it was asked (every decoded protobuf request, in
    order). `fail` makes a method answer a Twirp error; `dial` says how a CreateSIPParticipant on a trunk
    ends: None answers, (code, reason) fails with that SIP status."""

    inbound: dict[str, Any] = field(default_factory=dict)
    outbound: dict[str, Any] = field(default_factory=dict)
    rules: dict[str, Any] = field(default_factory=dict)
    dispatches: list[Any] = field(default_factory=list)
    participants: list[Any] = field(default_factory=list)
    deleted_rooms: list[str] = field(default_factory=list)
    requests: list[tuple[str, Any]] = field(default_factory=list)
    fail: dict[str, tuple[int, str, str]] = field(default_factory=dict)
    dial: dict[str, tuple[int, str] | None] = field(default_factory=dict)

    def methods(self) -> list[str]:
        return [method for method, _ in self.requests]

    def writes(self) -> list[str]:
        return [m for m in self.methods() if m.startswith(("Create", "Update", "Delete"))]


def livekit_api(*, key: str = LIVEKIT_KEY, secret: str = LIVEKIT_SECRET) -> FastAPI:
    """LiveKit's SIP, agent dispatch and room deletion as the real server speaks them (`POST /twirp/livekit.SIP/…`,
    protobuf in and out, Twirp JSON errors), with their auth: a JWT signed with the API secret carrying the
    SIP admin grant (trunks, rules), the SIP call grant (dialing) or room admin (dispatch)."""
    from livekit.api.access_token import TokenVerifier
    from livekit.protocol import agent_dispatch, room, sip

    app = FastAPI()
    state = LiveKitState()
    app.state.lk = state
    verifier = TokenVerifier(key, secret)
    S = sip
    methods: dict[str, tuple[Any, str]] = {  # method -> (request class, grant needed)
        "ListSIPInboundTrunk": (S.ListSIPInboundTrunkRequest, "sip.admin"),
        "ListSIPOutboundTrunk": (S.ListSIPOutboundTrunkRequest, "sip.admin"),
        "ListSIPDispatchRule": (S.ListSIPDispatchRuleRequest, "sip.admin"),
        "CreateSIPInboundTrunk": (S.CreateSIPInboundTrunkRequest, "sip.admin"),
        "CreateSIPOutboundTrunk": (S.CreateSIPOutboundTrunkRequest, "sip.admin"),
        "CreateSIPDispatchRule": (S.CreateSIPDispatchRuleRequest, "sip.admin"),
        "UpdateSIPInboundTrunk": (S.UpdateSIPInboundTrunkRequest, "sip.admin"),
        "UpdateSIPOutboundTrunk": (S.UpdateSIPOutboundTrunkRequest, "sip.admin"),
        "UpdateSIPDispatchRule": (S.UpdateSIPDispatchRuleRequest, "sip.admin"),
        "DeleteSIPTrunk": (S.DeleteSIPTrunkRequest, "sip.admin"),
        "DeleteSIPDispatchRule": (S.DeleteSIPDispatchRuleRequest, "sip.admin"),
        "CreateSIPParticipant": (S.CreateSIPParticipantRequest, "sip.call"),
        "CreateDispatch": (agent_dispatch.CreateAgentDispatchRequest, "room_admin"),
        "DeleteRoom": (room.DeleteRoomRequest, "room_create"),
    }

    def error(status: int, code: str, msg: str, meta: dict[str, str] | None = None) -> JSONResponse:
        return JSONResponse({"code": code, "msg": msg, **({"meta": meta} if meta else {})}, status_code=status)

    def new_id(prefix: str) -> str:
        return f"{prefix}_{uuid.uuid4().hex[:12]}"

    @app.post("/twirp/livekit.{service}/{method}")
    async def twirp(service: str, method: str, request: Request) -> Any:
        if method not in methods:
            return error(404, "bad_route", f"no method {service}/{method} in the stand-in")
        auth = request.headers.get("authorization", "")
        try:
            claims = verifier.verify(auth.removeprefix("Bearer "))
        except Exception as exc:  # any bad token: as the real server, 401
            return error(401, "unauthenticated", f"invalid token: {exc}")
        cls, grant = methods[method]
        granted = {
            "sip.admin": bool(claims.sip and claims.sip.admin),
            "sip.call": bool(claims.sip and claims.sip.call),
            "room_admin": bool(claims.video and claims.video.room_admin),
            "room_create": bool(claims.video and claims.video.room_create),
        }[grant]
        if not granted:
            return error(403, "permission_denied", f"{method} needs the {grant} grant")
        if request.headers.get("content-type") != "application/protobuf":
            return error(400, "malformed", "expected application/protobuf")
        req = cls.FromString(await request.body())
        state.requests.append((method, req))
        if method in state.fail:
            status, code, msg = state.fail[method]
            return error(status, code, msg)
        reply = handle(method, req)
        if isinstance(reply, JSONResponse):
            return reply
        return Response(reply.SerializeToString(), media_type="application/protobuf")

    def handle(method: str, req: Any) -> Any:
        if method == "ListSIPInboundTrunk":
            return S.ListSIPInboundTrunkResponse(items=list(state.inbound.values()))
        if method == "ListSIPOutboundTrunk":
            return S.ListSIPOutboundTrunkResponse(items=list(state.outbound.values()))
        if method == "ListSIPDispatchRule":
            return S.ListSIPDispatchRuleResponse(items=list(state.rules.values()))
        if method in ("CreateSIPInboundTrunk", "CreateSIPOutboundTrunk"):
            store = state.inbound if method == "CreateSIPInboundTrunk" else state.outbound
            trunk = type(req.trunk)()
            trunk.CopyFrom(req.trunk)
            trunk.sip_trunk_id = new_id("ST")
            store[trunk.sip_trunk_id] = trunk
            return trunk
        if method in ("UpdateSIPInboundTrunk", "UpdateSIPOutboundTrunk"):
            store = state.inbound if method == "UpdateSIPInboundTrunk" else state.outbound
            if req.sip_trunk_id not in store:
                return error(404, "not_found", f"no trunk {req.sip_trunk_id}")
            trunk = type(req.replace)()
            trunk.CopyFrom(req.replace)
            trunk.sip_trunk_id = req.sip_trunk_id
            store[req.sip_trunk_id] = trunk
            return trunk
        if method == "DeleteSIPTrunk":
            trunk = state.inbound.pop(req.sip_trunk_id, None) or state.outbound.pop(req.sip_trunk_id, None)
            if trunk is None:
                return error(404, "not_found", f"no trunk {req.sip_trunk_id}")
            return S.SIPTrunkInfo(sip_trunk_id=req.sip_trunk_id)
        if method == "CreateSIPDispatchRule":
            given = req.dispatch_rule
            rule = S.SIPDispatchRuleInfo()
            rule.CopyFrom(given)
            rule.sip_dispatch_rule_id = new_id("SDR")
            state.rules[rule.sip_dispatch_rule_id] = rule
            return rule
        if method == "UpdateSIPDispatchRule":
            if req.sip_dispatch_rule_id not in state.rules:
                return error(404, "not_found", f"no dispatch rule {req.sip_dispatch_rule_id}")
            rule = S.SIPDispatchRuleInfo()
            rule.CopyFrom(req.replace)
            rule.sip_dispatch_rule_id = req.sip_dispatch_rule_id
            state.rules[rule.sip_dispatch_rule_id] = rule
            return rule
        if method == "DeleteSIPDispatchRule":
            return state.rules.pop(req.sip_dispatch_rule_id, None) or error(404, "not_found", "no such rule")
        if method == "CreateDispatch":
            made = agent_dispatch.AgentDispatch(
                id=new_id("AD"), agent_name=req.agent_name, room=req.room, metadata=req.metadata
            )
            state.dispatches.append(made)
            return made
        if method == "DeleteRoom":
            state.deleted_rooms.append(req.room)
            return room.DeleteRoomResponse()
        if method == "CreateSIPParticipant":
            if req.sip_trunk_id not in state.outbound:
                return error(404, "not_found", f"no outbound trunk {req.sip_trunk_id}")
            outcome = state.dial.get(req.sip_trunk_id)
            if outcome is not None:
                code, reason = outcome
                meta = {"sip_status_code": str(code), "sip_status": reason}
                return error(400 if code < 500 else 503, "unavailable", f"call failed: {code} {reason}", meta)
            state.participants.append(req)
            return S.SIPParticipantInfo(
                participant_id=new_id("PA"),
                participant_identity=req.participant_identity,
                room_name=req.room_name,
                sip_call_id=new_id("SCL"),
            )
        raise AssertionError(method)

    return app
