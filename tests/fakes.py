"""Local stand-ins for remote services (the only fakes in the suite): an HTTP API for declarative tools,
an OpenAI-compatible server (chat completions for the real langchain-openai client, embeddings for
the real openai client), a scripted tool-calling model, LiveKit's server API (SIP, agent dispatch, call
control and egress, for the real livekit-api client), the person a warm transfer reaches, an
OpenAI-compatible eval judge answering scripted verdicts, and zero-latency speech providers and room audio
for the voice benchmarks."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from google.protobuf.message import Message
from livekit import api, rtc
from livekit.agents import stt, tts
from livekit.agents.language import LanguageCode
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS, NOT_GIVEN, APIConnectOptions, NotGivenOr
from livekit.agents.voice import io

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
    app.state.authorizations = []  # each call's Authorization header: which key reached the server

    @app.post("/v1/chat/completions")
    async def completions(request: Request) -> Any:
        body = await request.json()
        calls.append(body)
        app.state.authorizations.append(request.headers.get("authorization"))
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


def restaurant_api() -> FastAPI:
    """A restaurant's booking system, for a bot nobody wrote Chorus for: GET /reservations/{confirmation}.
    A test may set `app.state.on_lookup` (an async callable) to act while a lookup is being answered."""
    app = FastAPI()
    seen: list[str] = []
    app.state.seen = seen
    app.state.on_lookup = None
    booked = {"K7Q2": {"guest": "Ada Lovelace", "party_size": 4, "time": "19:30", "table": "terrace 3"}}

    @app.get("/reservations/{confirmation}")
    async def reservation(confirmation: str) -> JSONResponse:
        seen.append(confirmation)
        if app.state.on_lookup is not None:
            await app.state.on_lookup()
        if confirmation not in booked:
            return JSONResponse({"detail": f"no reservation {confirmation}"}, status_code=404)
        return JSONResponse({"confirmation": confirmation, **booked[confirmation]})

    return app


def clinic_api() -> FastAPI:
    """A clinic's backend for the voicebot: GET /hours (the opening days, in words a caller can hear)."""
    app = FastAPI()
    app.state.calls = 0

    @app.get("/hours")
    async def hours() -> dict[str, Any]:
        app.state.calls += 1
        return {"days": "monday to friday"}

    return app


# -- Zero-latency speech providers and room audio (the voice benchmarks) ------------------------------------
# Stand-ins for Deepgram, ElevenLabs and the room's audio tracks that take no time at all, so that what a
# voice turn measures is the runtime alone (LiveKit's session and Chorus's GraphLLM on the compiled graph).
# Their hooks stamp `time.perf_counter()`.

INSTANT_SAMPLE_RATE = 16000
INSTANT_AUDIO_MS = 20  # of silence per text chunk pushed to InstantTTS


class InstantSTT(stt.STT[Any]):
    """A streaming STT that ignores the audio: `hear(text)` makes its open streams emit a caller's whole turn
    at once (start of speech, the final transcript, end of speech), as a provider that recognises in no time
    would. Use it with `turn_detection="stt"`: the STT's end of speech ends the turn."""

    def __init__(self) -> None:
        # manual_flush: the session flushes the stream when it closes, and gets its (empty) final transcript at
        # once instead of waiting for one (session_close_transcript_timeout, 2 s).
        super().__init__(capabilities=stt.STTCapabilities(streaming=True, interim_results=False, manual_flush=True))
        self._streams: list[_InstantRecognizeStream] = []

    @property
    def model(self) -> str:
        return "instant"

    @property
    def provider(self) -> str:
        return "fake"

    async def _recognize_impl(
        self, buffer: Any, *, language: NotGivenOr[str] = NOT_GIVEN, conn_options: APIConnectOptions
    ) -> stt.SpeechEvent:
        return stt.SpeechEvent(
            type=stt.SpeechEventType.FINAL_TRANSCRIPT,
            alternatives=[stt.SpeechData(language=LanguageCode("en"), text="")],
        )

    def stream(
        self, *, language: NotGivenOr[str] = NOT_GIVEN, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS
    ) -> stt.RecognizeStream:
        stream = _InstantRecognizeStream(self, conn_options)
        self._streams.append(stream)
        return stream

    def hear(self, text: str) -> float:
        """The caller says `text`; returns when its final transcript was sent (perf_counter)."""
        open_streams = [s for s in self._streams if not s.closed]
        if not open_streams:
            raise RuntimeError("InstantSTT has no open stream: start the session before the caller speaks")
        speech = stt.SpeechData(language=LanguageCode("en"), text=text, confidence=1.0)
        for s in open_streams:
            s.emit(stt.SpeechEvent(type=stt.SpeechEventType.START_OF_SPEECH))
        sent_at = time.perf_counter()
        for s in open_streams:
            s.emit(stt.SpeechEvent(type=stt.SpeechEventType.FINAL_TRANSCRIPT, alternatives=[speech]))
            s.emit(stt.SpeechEvent(type=stt.SpeechEventType.END_OF_SPEECH))
        return sent_at


class _InstantRecognizeStream(stt.RecognizeStream):
    def __init__(self, owner: InstantSTT, conn_options: APIConnectOptions) -> None:
        super().__init__(stt=owner, conn_options=conn_options)

    @property
    def closed(self) -> bool:
        return self._event_ch.closed

    def emit(self, event: stt.SpeechEvent) -> None:
        self._event_ch.send_nowait(event)

    async def _run(self) -> None:
        async for data in self._input_ch:  # the audio is not listened to
            if isinstance(data, self._FlushSentinel):
                empty = stt.SpeechData(language=LanguageCode("en"), text="")
                self.emit(stt.SpeechEvent(type=stt.SpeechEventType.FINAL_TRANSCRIPT, alternatives=[empty]))


class InstantTTS(tts.TTS[Any]):
    """A streaming TTS that answers every text chunk with silence at once. `asked` holds, per synthesis (one
    per speech), when the first text was pushed to it (perf_counter)."""

    def __init__(self) -> None:
        super().__init__(
            capabilities=tts.TTSCapabilities(streaming=True), sample_rate=INSTANT_SAMPLE_RATE, num_channels=1
        )
        self.asked: list[float] = []

    @property
    def model(self) -> str:
        return "instant"

    @property
    def provider(self) -> str:
        return "fake"

    def synthesize(
        self, text: str, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS
    ) -> tts.ChunkedStream:
        return self._synthesize_with_stream(text, conn_options=conn_options)

    def stream(self, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS) -> tts.SynthesizeStream:
        return _InstantSynthesizeStream(self, conn_options)


class _InstantSynthesizeStream(tts.SynthesizeStream):
    def __init__(self, owner: InstantTTS, conn_options: APIConnectOptions) -> None:
        super().__init__(tts=owner, conn_options=conn_options)
        self._owner = owner
        self._asked = False

    def push_text(self, token: str) -> None:
        if token and not self._asked:
            self._asked = True
            self._owner.asked.append(time.perf_counter())
        super().push_text(token)

    async def _run(self, output_emitter: tts.AudioEmitter) -> None:
        silence = b"\0\0" * (INSTANT_SAMPLE_RATE * INSTANT_AUDIO_MS // 1000)
        output_emitter.initialize(
            request_id="instant", sample_rate=INSTANT_SAMPLE_RATE, num_channels=1, mime_type="audio/pcm", stream=True
        )
        in_segment = False
        async for data in self._input_ch:
            if isinstance(data, self._FlushSentinel):
                if in_segment:
                    output_emitter.end_segment()
                    in_segment = False
                continue
            if not in_segment:
                self._mark_started()
                output_emitter.start_segment(segment_id=f"segment-{len(self._owner.asked)}")
                in_segment = True
            output_emitter.push(silence)
        if in_segment:
            output_emitter.end_segment()


class InstantAudioOutput(io.AudioOutput):
    """The room's audio track for the agent's speech, played out the moment it is flushed (a listener with
    no playback time): the session goes back to listening as soon as an answer is synthesised."""

    def __init__(self) -> None:
        super().__init__(
            label="instant-output",
            capabilities=io.AudioOutputCapabilities(pause=False),
            sample_rate=INSTANT_SAMPLE_RATE,
        )
        self._played = 0.0
        self._playing = False

    async def capture_frame(self, frame: rtc.AudioFrame) -> None:
        await super().capture_frame(frame)
        if not self._playing:
            self._playing = True
            self.on_playback_started(created_at=time.time())
        self._played += frame.duration

    def flush(self) -> None:
        super().flush()
        played, self._played, self._playing = self._played, 0.0, False
        self.on_playback_finished(playback_position=played, interrupted=False)

    def clear_buffer(self) -> None:
        played, self._played, self._playing = self._played, 0.0, False
        for _ in range(self._pending_playback_count):
            self.on_playback_finished(playback_position=played, interrupted=True)
            played = 0.0


# -- a scripted model -----------------------------------------------------------------------------------

Script = Callable[[list[dict[str, Any]]], dict[str, Any]]


def scripted_model_api(script: Script) -> FastAPI:
    """An OpenAI-compatible /v1/chat/completions whose answer `script(messages)` decides: {"content": text} or
    {"tool_call": {"name": …, "arguments": {…}}}. For what the offline model cannot be made to call."""
    app = FastAPI()
    app.state.calls = []

    @app.post("/v1/chat/completions")
    async def completions(request: Request) -> Any:
        body = await request.json()
        app.state.calls.append(body)
        answer = script(body["messages"])
        created = int(time.time())
        call = answer.get("tool_call")
        tool_calls = (
            [
                {
                    "index": 0,
                    "id": f"call_{len(app.state.calls)}",
                    "type": "function",
                    "function": {"name": call["name"], "arguments": json.dumps(call.get("arguments", {}))},
                }
            ]
            if call
            else None
        )
        message: dict[str, Any] = {"role": "assistant", "content": answer.get("content")}
        if tool_calls:
            message["tool_calls"] = [{k: v for k, v in c.items() if k != "index"} for c in tool_calls]
        finish = "tool_calls" if tool_calls else "stop"
        base = {"id": "cmpl-s", "created": created, "model": body["model"]}
        if not body.get("stream"):
            return {
                **base,
                "object": "chat.completion",
                "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            }

        async def events() -> AsyncIterator[bytes]:
            delta: dict[str, Any] = {"role": "assistant", "content": answer.get("content")}
            if tool_calls:
                delta["tool_calls"] = tool_calls
            for choice in (
                {"index": 0, "delta": delta, "finish_reason": None},
                {"index": 0, "delta": {}, "finish_reason": finish},
            ):
                chunk = {**base, "object": "chat.completion.chunk", "choices": [choice]}
                yield f"data: {json.dumps(chunk)}\n\n".encode()
            yield b"data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    return app


# -- LiveKit's Twirp API, the call-control part -------------------------------------------------------------

LIVEKIT_KEY, LIVEKIT_SECRET = "fake-livekit-key", "fake-livekit-secret-of-at-least-32-chars"
LIVEKIT_CALL_METHODS: dict[str, tuple[type[Message], type[Message]]] = {
    "livekit.RoomService/DeleteRoom": (api.DeleteRoomRequest, api.DeleteRoomResponse),
    "livekit.RoomService/MoveParticipant": (api.MoveParticipantRequest, api.MoveParticipantResponse),
    "livekit.SIP/TransferSIPParticipant": (api.TransferSIPParticipantRequest, api.TransferSIPParticipantResponse),
    "livekit.SIP/CreateSIPParticipant": (api.CreateSIPParticipantRequest, api.SIPParticipantInfo),
}


def livekit_call_api() -> FastAPI:
    """LiveKit's Twirp API for hang-up, transfers and moving participants: it checks each request's token
    (signed with LIVEKIT_KEY / LIVEKIT_SECRET) and decodes its protobuf; `app.state.calls` holds (method, request);
    `app.state.errors[method] = (http_status, twirp_error_body)` makes a method fail as the server would."""
    app = FastAPI()
    app.state.calls = []
    app.state.errors = {}
    verifier = api.TokenVerifier(LIVEKIT_KEY, LIVEKIT_SECRET)

    @app.post("/twirp/{service}/{method}")
    async def twirp(service: str, method: str, request: Request) -> Response:
        kinds = LIVEKIT_CALL_METHODS.get(f"{service}/{method}")
        if kinds is None:
            return JSONResponse({"code": "bad_route", "msg": f"no {service}/{method} here"}, status_code=404)
        if request.headers.get("content-type") != "application/protobuf":
            return JSONResponse({"code": "malformed", "msg": "protobuf only"}, status_code=415)
        try:
            verifier.verify(request.headers.get("authorization", "").removeprefix("Bearer "))
        except Exception:
            return JSONResponse({"code": "unauthenticated", "msg": "bad token"}, status_code=401)
        message = kinds[0].FromString(await request.body())
        app.state.calls.append((method, message))
        if method in app.state.errors:
            status, body = app.state.errors[method]
            return JSONResponse(body, status_code=status)
        return Response(kinds[1]().SerializeToString(), media_type="application/protobuf")

    return app


def livekit_client(url: str) -> api.LiveKitAPI:
    return api.LiveKitAPI(url=url, api_key=LIVEKIT_KEY, api_secret=LIVEKIT_SECRET)


@dataclass
class FakePerson:
    """The person a warm transfer reaches, as the consultation room would report them: takes the call or not."""

    takes_call: bool = True
    briefings: list[dict[str, str]] = field(default_factory=list)

    async def brief(self, *, room: str, identity: str, text: str) -> bool:
        self.briefings.append({"room": room, "identity": identity, "text": text})
        return self.takes_call


# -- the eval judge ------------------------------------------------------------------------------------

MARK_NO, MARK_IDK = "WRONG", "UNSURE"  # what the scripted judge answers 'no' / 'idk' to


def scripted_verdicts(system: str, prompt: str) -> dict[str, Any]:
    """A judge's answer by rule, so each formula can be checked: a Verdicts step gets one verdict per numbered
    item ('no' when the item holds WRONG, 'idk' when UNSURE, else 'yes'); a Statements step gets the sentences
    of the <text> or <task> given, or for a <conversation> each user turn."""
    if '"verdicts"' in system:
        block = prompt.split("numbered items:\n", 1)[1].rsplit("\n\nGive exactly", 1)[0]
        items = re.split(r"(?m)^\d+\. ", block)[1:]
        verdicts = [
            {"verdict": "no" if MARK_NO in i else "idk" if MARK_IDK in i else "yes", "reason": f"judged: {i[:40]}"}
            for i in items
        ]
        return {"verdicts": verdicts}
    for tag in ("text", "task"):
        found = re.search(rf"<{tag}>\n(.*?)\n</{tag}>", prompt, re.S)
        if found:
            return {"statements": [s for s in re.split(r"(?<=[.!?])\s+", found.group(1).strip()) if s]}
    conversation = re.search(r"<conversation>\n(.*?)\n</conversation>", prompt, re.S)
    users = re.findall(r"(?m)^User: (.*)$", conversation.group(1)) if conversation else []
    return {"statements": [f"the user wants: {u}" for u in users]}


def judge_api(
    script: Callable[[str, str], Any] = scripted_verdicts, *, invalid_first: int = 0, delay_s: float = 0.0
) -> FastAPI:
    """An OpenAI-compatible chat model playing the eval judge (non-streaming): `script(system, prompt)` gives
    its answer (a dict is sent as JSON, a string as is); its first `invalid_first` answers are not JSON;
    with `delay_s` it answers only after that long (a model's latency, or a hang). `app.state.calls` holds
    every request, `app.state.keys` each one's Authorization header."""
    app = FastAPI()
    calls: list[dict[str, Any]] = []
    app.state.calls = calls
    app.state.keys = keys = []  # the Authorization header of each request

    @app.post("/v1/chat/completions")
    async def completions(request: Request) -> Any:
        body = await request.json()
        calls.append(body)
        keys.append(request.headers.get("authorization"))
        if delay_s:
            await asyncio.sleep(delay_s)
        messages = body["messages"]
        system = next((m["content"] for m in messages if m["role"] == "system"), "")
        prompt = next(m["content"] for m in messages if m["role"] == "user")
        if len(calls) <= invalid_first:
            reply = "Sure! Here are my verdicts: the first is yes"
        else:
            answer = script(system, prompt)
            reply = answer if isinstance(answer, str) else json.dumps(answer)
        return {
            "id": "judge-1",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": reply}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 50, "completion_tokens": 20, "total_tokens": 70},
        }

    return app


class EgressStandIn:
    """LiveKit's Twirp Egress API (StartRoomCompositeEgress), checking what the real livekit-api client sends:
    the protobuf request, and a token signed with the API secret that grants room recording. `fail_with`:
    answer every request with that HTTP status and a Twirp error instead."""

    def __init__(self, *, api_key: str = "lk-test-key", api_secret: str = "lk-test-secret-0123456789abcdefgh") -> None:
        from livekit import api

        self.api_key, self.api_secret = api_key, api_secret
        self.requests: list[api.RoomCompositeEgressRequest] = []
        self.refused: list[str] = []  # why a request was refused (bad token, no recording grant)
        self.fail_with: int | None = None
        self.app = FastAPI()

        @self.app.post("/twirp/livekit.Egress/StartRoomCompositeEgress")
        async def start(request: Request) -> Any:
            from fastapi.responses import Response

            try:
                token = request.headers.get("authorization", "").removeprefix("Bearer ")
                claims = api.TokenVerifier(self.api_key, self.api_secret).verify(token)
            except Exception as exc:
                self.refused.append(f"token: {exc}")
                return JSONResponse({"code": "unauthenticated", "msg": "invalid token"}, status_code=401)
            if not (claims.video and claims.video.room_record):
                self.refused.append("no room_record grant")
                return JSONResponse({"code": "permission_denied", "msg": "no permissions"}, status_code=403)
            if request.headers.get("content-type") != "application/protobuf":
                return JSONResponse({"code": "malformed", "msg": "not protobuf"}, status_code=400)
            body = api.RoomCompositeEgressRequest.FromString(await request.body())
            self.requests.append(body)
            if self.fail_with is not None:
                return JSONResponse({"code": "unavailable", "msg": "egress is down"}, status_code=self.fail_with)
            info = api.EgressInfo(
                egress_id=f"EG_{len(self.requests):06d}",
                room_name=body.room_name,
                status=api.EgressStatus.EGRESS_STARTING,
            )
            return Response(info.SerializeToString(), media_type="application/protobuf")


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
