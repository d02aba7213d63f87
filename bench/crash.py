"""Crash recovery: kill -9 a server process at random moments of tool-calling turns, start it again, and
count what the crash cost the conversation.

Two `chorus serve` processes, A and B, share one database. The bot's turn calls a side-effecting tool: a
declarative HTTP tool (POST, so it carries an Idempotency-Key) on a small backend run by the benchmark,
which counts the requests it receives per turn and per Idempotency-Key and answers after 0.3 s; the model
is the offline one at 40 ms per token. Each round starts a streamed turn on A (on one of a few threads,
at random), kills A (SIGKILL) at a random moment of one of four phases in turn — before the first token,
during the tool call, just after the tool result, among the answer's tokens — starts A again (a new
process on the same port), and at once sends the next turn on that thread to B, where it queues behind
the dead run until a live process takes that over (leases, reaper) and ends it. Then, per round:

- accepted messages lost: the killed turn's user message is missing from `GET /threads/{id}/state`
  (target 0); messages duplicated there are counted too;
- side effects repeated: requests the backend received for the turn beyond the first (target 0), with
  how many of them carried an Idempotency-Key already seen (a backend that honours the key absorbs those);
  and the turns where the model got a tool error instead of the result (the tool-call ledger's "outcome
  unknown" when the process died mid-call: the side effect may have happened, the customer is not told);
- recovery: seconds from the kill until B's new turn has been accepted and completed (target <= 10 s);
- the killed run's final status.

Baseline, same run: the same tool-calling turn, streamed on B with nothing killed (median). The ratio
is the median recovery over it; the absolute figures are printed with their targets.

    .venv/bin/python -m bench.crash [--kills 20] [--threads 5] [--baseline-turns 5] [--tiny]
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI, Request

from bench.harness import load_average, median, parse_sizes
from bench.server_process import BenchCluster, chorus_servers, free_port
from bench.sse_first_token import PACED_MS
from chorus.agents.storage.embedded import release_embedded_servers

SIZES = {"kills": 20, "threads": 5, "baseline_turns": 5}
TINY = {"kills": 1, "threads": 1, "baseline_turns": 2}
TOOL_DELAY_S = 0.3
RECOVERY_TARGET_S = 10.0
PHASES = ("before first token", "during the tool call", "after the tool result", "mid-tokens")
WAIT_S = 60.0  # for any one step; a recovery slower than this is reported as this


def side_effect_bot(backend_url: str) -> dict[str, Any]:
    """A bot whose every "place an order" turn POSTs to the backend once (the offline model at 40 ms/token)."""
    return {
        "config_metadata": {"product_type": "chatbot", "name": "crash-bench"},
        "system_prompt": {"role": "shop_assistant", "instructions": "Place orders when asked.", "tone": "friendly"},
        "tools_available": [{"tool_name": "place_order", "status": "implemented"}],
        "tools_needed": [
            {
                "tool_name": "place_order",
                "description": "Place an order for the customer.",
                "input_schema": {"note": "string"},
                "http": {"method": "POST", "url": f"{backend_url}/orders", "timeout_ms": 10_000},
            }
        ],
        "llm_config": {"provider": "offline", "model": "paced", "offline_token_delay_ms": PACED_MS},
    }


@dataclass
class Call:
    key: str
    note: str
    answered: bool = False


@dataclass
class Backend:
    """The side effect: POST /orders, counted when received (that is when a real backend would act)."""

    calls: list[Call] = field(default_factory=list)

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/orders")
        async def orders(request: Request) -> dict[str, Any]:
            body = await request.json()
            call = Call(request.headers.get("idempotency-key", ""), str(body.get("note", "")))
            self.calls.append(call)
            await asyncio.sleep(TOOL_DELAY_S)
            call.answered = True
            return {"order_id": f"O-{len(self.calls)}", "status": "placed"}

        return app

    def for_turn(self, tag: str) -> list[Call]:
        return [c for c in self.calls if tag in c.note]


@asynccontextmanager
async def backend_server(backend: Backend) -> AsyncIterator[str]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(backend.app(), host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@dataclass
class Progress:
    """What the client of the turn that gets killed has seen so far."""

    accepted: asyncio.Event = field(default_factory=asyncio.Event)
    run_id: str | None = None
    tool_call_seen: bool = False
    tokens: int = 0
    ended: bool = False


def _body(assistant_id: str, text: str) -> dict[str, Any]:
    return {
        "assistant_id": assistant_id,
        "input": {"messages": [{"role": "user", "content": text}]},
        "stream_mode": ["messages-tuple"],
    }


async def stream_turn(client: httpx.AsyncClient, thread_id: str, assistant_id: str, text: str, p: Progress) -> None:
    """Stream one turn, noting its progress; a broken connection (the process was killed) ends it quietly."""
    try:
        async with client.stream("POST", f"/threads/{thread_id}/runs/stream", json=_body(assistant_id, text)) as resp:
            resp.raise_for_status()
            p.run_id = resp.headers["content-location"].rsplit("/", 1)[-1]
            p.accepted.set()
            event = ""
            async for line in resp.aiter_lines():
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: ") and event == "messages":
                    message = json.loads(line[6:])[0]
                    if not str(message.get("type", "")).lower().startswith("ai"):
                        continue  # the tool's result, streamed as a message too
                    if message.get("tool_call_chunks") or message.get("tool_calls"):
                        p.tool_call_seen = True
                    elif message.get("content"):
                        p.tokens += 1
        p.ended = True
    except httpx.HTTPError:
        pass


async def until(condition: Callable[[], bool], timeout: float = WAIT_S) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.002)
    return True


async def moment(phase: str, p: Progress, backend: Backend, tag: str, rng: random.Random) -> None:
    """Wait for a random moment of `phase` of the turn tagged `tag`."""
    if phase == "before first token":
        await asyncio.sleep(rng.uniform(0, PACED_MS / 1000 / 2))
    elif phase == "during the tool call":
        await until(lambda: bool(backend.for_turn(tag)))
        await asyncio.sleep(rng.uniform(0, TOOL_DELAY_S * 0.8))
    elif phase == "after the tool result":
        await until(lambda: any(c.answered for c in backend.for_turn(tag)))
        await asyncio.sleep(rng.uniform(0, 0.03))
    else:
        wanted = rng.randint(1, 6)
        await until(lambda: p.tokens >= wanted or p.ended)


def observed_phase(p: Progress, calls: list[Call]) -> str:
    """Where the turn really was when the process died (the planned moment may have been overtaken)."""
    if p.ended:
        return "after the turn ended"
    if p.tokens:
        return "mid-tokens"
    if any(c.answered for c in calls):
        return "after the tool result"
    if calls:
        return "during the tool call"
    return "before first token" if not p.tool_call_seen else "after the tool call streamed, before the tool"


@dataclass
class Round:
    planned: str
    observed: str
    recovery_s: float
    killed_run_ended_s: float
    lost: bool
    duplicated: bool
    status: str
    executions: int
    same_key_repeats: int
    tool_error: str | None  # what the model was told instead of the tool's result
    new_turn_ok: bool


def tool_error(messages: list[dict[str, Any]], tag: str) -> str | None:
    """The error a tool call of the turn tagged `tag` returned to the model, if one did."""
    start = next((i for i, m in enumerate(messages) if m.get("type") == "human" and tag in str(m.get("content"))), None)
    for m in messages[start + 1 :] if start is not None else []:
        if m.get("type") == "human":
            break
        if m.get("type") == "tool" and m.get("status") == "error":
            return str(m.get("content"))
    return None


async def normal_turn(client: httpx.AsyncClient, thread_id: str, assistant_id: str) -> float:
    progress = Progress()
    started = time.perf_counter()
    await stream_turn(
        client, thread_id, assistant_id, f"Please place an order, note base-{uuid.uuid4().hex[:6]}", progress
    )
    if not progress.ended or not progress.tokens:
        raise AssertionError("a normal turn did not stream its answer")
    return time.perf_counter() - started


async def next_turn(client: httpx.AsyncClient, thread_id: str, assistant_id: str, tag: str) -> bool:
    """The thread's next turn, sent right after the kill; True once it has run and its answer is stored."""
    body = {"assistant_id": assistant_id, "input": {"messages": [{"role": "user", "content": f"thanks ({tag})"}]}}
    resp = await client.post(f"/threads/{thread_id}/runs/wait", json=body, timeout=WAIT_S)
    if resp.status_code != 200:
        return False
    messages = resp.json().get("messages") or []
    return bool(messages) and messages[-1].get("type") == "ai" and any(tag in str(m.get("content")) for m in messages)


async def seconds_until_ended(client: httpx.AsyncClient, thread_id: str, run_id: str, since: float) -> float:
    """Joins the killed run from the live process: seconds from `since` until it ended (wherever it resumed)."""
    try:
        await client.get(f"/threads/{thread_id}/runs/{run_id}/join", timeout=WAIT_S)
    except httpx.HTTPError:
        return WAIT_S
    return time.monotonic() - since


async def crash_round(
    i: int, cluster: BenchCluster, b: httpx.AsyncClient, backend: Backend, threads: list[str], rng: random.Random
) -> Round:
    server_a = cluster.servers[0]
    planned = PHASES[i % len(PHASES)]
    thread_id = rng.choice(threads)
    tag = f"turn-{i}-{uuid.uuid4().hex[:6]}"
    progress = Progress()
    async with httpx.AsyncClient(base_url=server_a.url, headers={"x-api-key": cluster.key}, timeout=WAIT_S) as a:
        text = f"Please place an order, note {tag}"
        streaming = asyncio.create_task(stream_turn(a, thread_id, cluster.assistant_id, text, progress))
        await asyncio.wait_for(progress.accepted.wait(), WAIT_S)
        await moment(planned, progress, backend, tag, rng)
        observed = observed_phase(progress, backend.for_turn(tag))
        server_a.kill()
        killed_at = time.monotonic()
        restarting = asyncio.create_task(server_a.start())
        resumed = asyncio.create_task(seconds_until_ended(b, thread_id, str(progress.run_id), killed_at))
        try:
            new_turn_ok = await next_turn(b, thread_id, cluster.assistant_id, f"after-{i}")
        except httpx.HTTPError:
            new_turn_ok = False
        recovery = time.monotonic() - killed_at
        await restarting
        killed_run_ended_s = await resumed
        await streaming
    state = (await b.get(f"/threads/{thread_id}/state")).json()
    messages = state["values"].get("messages", [])
    humans = [str(m.get("content")) for m in messages if m.get("type") == "human"]
    copies = sum(1 for h in humans if tag in h)
    run = (await b.get(f"/threads/{thread_id}/runs/{progress.run_id}")).json()
    calls = backend.for_turn(tag)
    keys = Counter(c.key for c in calls)
    return Round(
        planned=planned,
        observed=observed,
        recovery_s=recovery,
        killed_run_ended_s=killed_run_ended_s,
        lost=copies == 0,
        duplicated=copies > 1,
        status=str(run.get("status")),
        executions=len(calls),
        same_key_repeats=sum(n - 1 for n in keys.values()),
        tool_error=tool_error(messages, tag),
        new_turn_ok=new_turn_ok,
    )


async def main(
    *, kills: int = SIZES["kills"], threads: int = SIZES["threads"], baseline_turns: int = SIZES["baseline_turns"]
) -> dict[str, float]:
    rng = random.Random()
    backend = Backend()
    rounds: list[Round] = []
    async with backend_server(backend) as backend_url:
        env = {"CHORUS_HTTP_TOOLS_ALLOW_PRIVATE": "1"}
        async with (
            chorus_servers(2, side_effect_bot(backend_url), env=env) as cluster,
            httpx.AsyncClient(base_url=cluster.urls[1], headers={"x-api-key": cluster.key}, timeout=WAIT_S) as b,
        ):
            thread_ids = [(await b.post("/threads", json={})).json()["thread_id"] for _ in range(threads)]
            baseline_thread = (await b.post("/threads", json={})).json()["thread_id"]
            await normal_turn(b, baseline_thread, cluster.assistant_id)  # warm-up: compile the graph, fill pools
            normal = [await normal_turn(b, baseline_thread, cluster.assistant_id) for _ in range(baseline_turns)]
            for i in range(kills):
                rounds.append(await crash_round(i, cluster, b, backend, thread_ids, rng))

    recoveries = [r.recovery_s for r in rounds]
    executed = [r for r in rounds if r.executions]
    result = {
        "kills": float(len(rounds)),
        "lost": float(sum(r.lost for r in rounds)),
        "duplicated": float(sum(r.duplicated for r in rounds)),
        "repeated_side_effects": float(sum(max(0, r.executions - 1) for r in executed)),
        "repeated_same_key": float(sum(r.same_key_repeats for r in rounds)),
        "turns_repeating": float(sum(r.executions > 1 for r in rounds)),
        "turns_without_side_effect": float(sum(r.executions == 0 for r in rounds)),
        "not_success": float(sum(r.status != "success" for r in rounds)),
        "tool_errors": float(sum(r.tool_error is not None for r in rounds)),
        "new_turn_failed": float(sum(not r.new_turn_ok for r in rounds)),
        "recovery_p50_s": median(recoveries),
        "recovery_max_s": max(recoveries),
        "killed_run_ended_p50_s": median([r.killed_run_ended_s for r in rounds]),
        "normal_turn_s": median(normal),
    }
    result["ratio_recovery"] = result["recovery_p50_s"] / result["normal_turn_s"]
    result["ratio_recovery_max_vs_target"] = result["recovery_max_s"] / RECOVERY_TARGET_S
    by_phase: dict[str, list[Round]] = {}
    for r in rounds:
        by_phase.setdefault(r.observed, []).append(r)
    phases = "; ".join(
        f"{phase}: {len(rs)} kills, {sum(r.lost for r in rs)} lost, "
        f"{sum(max(0, r.executions - 1) for r in rs)} repeated, "
        f"{sum(r.tool_error is not None for r in rs)} tool errors, "
        f"recovery {min(r.recovery_s for r in rs):.1f}-{max(r.recovery_s for r in rs):.1f} s"
        for phase, rs in by_phase.items()
    )
    statuses = Counter(r.status for r in rounds)
    told = Counter((r.tool_error or "")[:90] for r in rounds if r.tool_error)
    print(
        f"crash (kill -9 mid-turn, {len(rounds)} times; 2 processes, restart): accepted messages lost "
        f"{result['lost']:.0f} (target 0), duplicated {result['duplicated']:.0f}; side effects repeated "
        f"{result['repeated_side_effects']:.0f} in {result['turns_repeating']:.0f} turns (target 0; "
        f"{result['repeated_same_key']:.0f} of them with an Idempotency-Key already sent); "
        f"recovery until the thread's next turn completed p50 {result['recovery_p50_s']:.1f} s, max "
        f"{result['recovery_max_s']:.1f} s (target <= {RECOVERY_TARGET_S:g} s -> "
        f"{result['ratio_recovery_max_vs_target']:.2f}x) "
        f"= {result['ratio_recovery']:.1f}x a normal tool-calling turn ({result['normal_turn_s'] * 1000:.0f} ms; "
        f"the killed run itself ended p50 {result['killed_run_ended_p50_s']:.1f} s after the kill); "
        f"killed runs ended {dict(statuses)}; next turn failed {result['new_turn_failed']:.0f}; the model got a tool "
        f"error instead of the result in {result['tool_errors']:.0f} turns {dict(told) if told else ''}. "
        f"By phase: {phases}. "
        f"Load average {load_average()}",
        flush=True,
    )
    return result


if __name__ == "__main__":
    try:
        asyncio.run(main(**parse_sizes(__doc__, SIZES, TINY)))
    finally:
        release_embedded_servers()
