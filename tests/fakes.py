"""Local stand-ins for remote services (the only fakes in the suite): an HTTP API for declarative tools,
an OpenAI-compatible server (chat completions for the real langchain-openai client, embeddings for
the real openai client), and an OpenAI-compatible eval judge answering scripted verdicts."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse

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
