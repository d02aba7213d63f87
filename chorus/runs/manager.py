"""The run executor: one worker per busy thread runs its runs in order, streaming events to subscribers.

Multitask strategies for a run that arrives while its thread is busy: reject (409), interrupt (cancel
the active run, keep what it checkpointed), rollback (cancel it and erase it), enqueue (run after).
A thread is pinned to the config version of its first run, so a new config version never changes a
conversation in flight. Runs execute in this process; state lives in Postgres.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any, cast

from langchain_core.messages import AnyMessage, HumanMessage
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.types import StreamMode
from psycopg.errors import ForeignKeyViolation

from chorus.agents.configs.models import BotConfig
from chorus.agents.configs.repository import ConfigRepository, parse_uuid
from chorus.agents.errors import ChorusError, Conflict, InvalidInput, NotFound
from chorus.agents.observability.logs import run_id_var, tenant_id_var, thread_id_var
from chorus.agents.observability.metrics import FIRST_TOKEN, RUNS, TURN_LATENCY
from chorus.agents.storage.database import Database
from chorus.graphs.checkpointer import ChorusCheckpointer
from chorus.graphs.compiler import CompiledBot, GraphCache
from chorus.graphs.repair import dangling_tool_calls
from chorus.runs.schemas import RunCreate
from chorus.runs.serialization import jsonable, stream_metadata
from chorus.runs.threads_repository import Lease, ThreadRepository
from chorus.runs.usage import UsageCollector

log = logging.getLogger(__name__)
END = object()
LEASE_SECONDS = 30.0
_TAKE_RETRY_S = (0.02, 0.5)  # first and longest pause while waiting for another process's turn


@dataclass
class RunHandle:
    run_id: str
    tenant_id: str
    thread_id: str
    assistant_id: str
    version: int
    request: RunCreate
    row: dict[str, Any]
    subscribers: list[asyncio.Queue[Any]] = field(default_factory=list)
    done: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None
    status: str = "pending"
    result: Any = None
    error: dict[str, str] | None = None
    cancel_action: str | None = None

    def subscribe(self) -> asyncio.Queue[Any]:
        queue: asyncio.Queue[Any] = asyncio.Queue()
        if self.done.is_set():
            queue.put_nowait(END)
        else:
            self.subscribers.append(queue)
        return queue

    def publish(self, event: str, data: Any) -> None:
        for q in self.subscribers:
            q.put_nowait((event, data))

    def finish(self) -> None:
        for q in self.subscribers:
            q.put_nowait(END)
        self.subscribers.clear()
        self.done.set()


@dataclass
class _Lane:
    queue: deque[RunHandle] = field(default_factory=deque)
    active: RunHandle | None = None
    worker: asyncio.Task[None] | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0


def _input_messages(req: RunCreate) -> list[AnyMessage]:
    if req.input is None:
        raise InvalidInput(
            "input.messages is required: send {'input': {'messages': [{'role': 'user', 'content': '...'}]}}"
        )
    out: list[AnyMessage] = []
    for i, m in enumerate(req.input.messages):
        role = (m.role or m.type or "").lower()
        if role not in ("user", "human"):
            raise InvalidInput(
                f"input.messages[{i}] has role '{role or '?'}'; only user messages can be sent",
                errors=[{"path": f"$.input.messages[{i}].role", "message": "must be 'user'"}],
            )
        if isinstance(m.content, str) and not m.content.strip():
            raise InvalidInput(
                f"input.messages[{i}] is empty",
                errors=[{"path": f"$.input.messages[{i}].content", "message": "must not be empty"}],
            )
        out.append(HumanMessage(content=m.content, id=m.id or str(uuid.uuid4())))
    return out


class RunManager:
    def __init__(
        self,
        *,
        db: Database,
        configs: ConfigRepository,
        threads: ThreadRepository,
        cache: GraphCache,
        run_timeout_s: float = 300.0,
    ) -> None:
        self.run_timeout_s = run_timeout_s
        # This process's claim on the threads whose turns it runs (renewed while it lives).
        self.lease = Lease(owner=uuid.uuid4().hex, seconds=LEASE_SECONDS)
        self.db = db
        self.configs = configs
        self.threads = threads
        self.cache = cache
        self._lanes: dict[str, _Lane] = {}
        self._handles: dict[str, RunHandle] = {}
        self._needs_repair: set[str] = set()
        self._parsed: dict[tuple[str, int], BotConfig] = {}
        self._pending_input: dict[str, list[AnyMessage]] = {}
        self._graphs: dict[tuple[str, str, int], CompiledBot] = {}
        # thread -> (tenant, assistant, version): a thread's pin never changes once set.
        self._pins: dict[str, tuple[str, str, int]] = {}

    # -- submitting ------------------------------------------------------------------------------

    async def submit(self, tenant_id: str, thread_id: str, req: RunCreate) -> RunHandle:
        messages = _input_messages(req)
        thread_id = parse_uuid(thread_id, "thread")
        lane = self._lanes.setdefault(thread_id, _Lane())
        lane.users += 1
        try:
            async with lane.lock:
                handle = await self._admit(tenant_id, thread_id, req, lane)
                self._handles[handle.run_id] = handle
                self._pending_input[handle.run_id] = messages
                lane.queue.append(handle)
                self._lanes[thread_id] = lane
                if lane.worker is None or lane.worker.done():
                    lane.worker = asyncio.create_task(self._work(thread_id, lane))
                return handle
        finally:
            lane.users -= 1
            idle = not lane.queue and lane.active is None and (lane.worker is None or lane.worker.done())
            if idle and lane.users == 0 and self._lanes.get(thread_id) is lane:
                del self._lanes[thread_id]  # a rejected submission leaves nothing behind

    async def _pinned(self, tenant_id: str, thread_id: str, req: RunCreate) -> tuple[str, int]:
        """The (assistant, config version) the thread is pinned to, pinning it on its first run."""
        pin = self._pins.get(thread_id)
        if pin is None or pin[0] != tenant_id:
            pin = await self._pin_from_db(tenant_id, thread_id, req)
            self._pins[thread_id] = pin
        _, assistant_id, version = pin
        if not _is_uuid(req.assistant_id) or str(uuid.UUID(req.assistant_id)) != assistant_id:
            raise Conflict(
                f"thread '{thread_id}' belongs to assistant '{assistant_id}'; "
                "start a new thread to talk to another assistant"
            )
        return assistant_id, version

    async def _pin_from_db(self, tenant_id: str, thread_id: str, req: RunCreate) -> tuple[str, str, int]:
        try:
            thread = await self.threads.get(tenant_id, thread_id)
        except NotFound:
            if req.if_not_exists != "create":
                raise
            thread = await self.threads.create(tenant_id, thread_id=thread_id, metadata={})
        if thread["status"] == "error":
            self._needs_repair.add(thread_id)
        if thread["assistant_id"] is not None:
            return tenant_id, str(thread["assistant_id"]), int(thread["config_version"])
        stored = await self.configs.get(tenant_id, req.assistant_id)
        if stored.product_type != "chatbot":
            raise InvalidInput(
                f"assistant '{stored.config_id}' is a {stored.product_type}; only chatbots take chat runs"
            )
        await self.threads.pin(thread_id, stored.config_id, stored.version)
        return tenant_id, stored.config_id, stored.version

    @property
    def checkpointer(self) -> BaseCheckpointSaver[str]:
        saver = self.cache.deps.checkpointer
        assert saver is not None, "the run manager needs a checkpointer"
        return saver

    async def delete_thread(self, tenant_id: str, thread_id: str) -> None:
        """Delete the thread with its runs and checkpoints, and what this process remembers of it."""
        thread_id = parse_uuid(thread_id, "thread")
        await self.threads.delete(tenant_id, thread_id)  # NotFound for unknown or foreign threads
        await self.checkpointer.adelete_thread(thread_id)
        self.forget_thread(thread_id)

    def forget_thread(self, thread_id: str) -> None:
        """The thread was deleted or recreated: drop what this process remembers of it."""
        key = str(uuid.UUID(thread_id)) if _is_uuid(thread_id) else thread_id
        self._pins.pop(key, None)

    async def _admit(self, tenant_id: str, thread_id: str, req: RunCreate, lane: _Lane) -> RunHandle:
        assistant_id, version = await self._pinned(tenant_id, thread_id, req)
        busy = [h for h in ([lane.active] if lane.active else []) + list(lane.queue)]
        if busy:
            strategy = req.multitask_strategy
            if strategy == "reject":
                raise Conflict(
                    f"thread '{thread_id}' is busy with run '{busy[0].run_id}'; wait for it, or send "
                    "multitask_strategy 'enqueue', 'interrupt' or 'rollback'"
                )
            if strategy in ("interrupt", "rollback"):
                for h in busy:
                    await self._cancel(h, strategy)
        run_id = str(uuid.uuid4())
        kwargs = {"input": jsonable(req.input), "stream_mode": req.stream_mode, "config": req.config or {}}
        try:
            row = await self.threads.insert_run(
                run_id=run_id,
                tenant_id=tenant_id,
                thread_id=thread_id,
                assistant_id=assistant_id,
                version=version,
                strategy=req.multitask_strategy,
                kwargs=kwargs,
                metadata=req.metadata,
                # An idle thread starts the run in the same statement, if no other process holds it.
                lease=None if busy else self.lease,
            )
        except ForeignKeyViolation:
            self.forget_thread(thread_id)
            raise NotFound(f"thread '{thread_id}' does not exist") from None
        if not busy and row["status"] == "pending" and req.multitask_strategy != "enqueue":
            # Another server process is running this thread's turn; only waiting is possible from here.
            await self.threads.delete_run(run_id)
            raise Conflict(
                f"thread '{thread_id}' is busy with a run in another server process; wait for it, or send "
                "multitask_strategy 'enqueue'"
            )
        handle = RunHandle(run_id, tenant_id, thread_id, assistant_id, version, req, row)
        handle.status = str(row["status"])
        return handle

    # -- cancelling ------------------------------------------------------------------------------

    async def _cancel(self, handle: RunHandle, action: str) -> None:
        handle.cancel_action = action
        lane = self._lanes.get(handle.thread_id)
        if lane is not None and handle in lane.queue:
            lane.queue.remove(handle)
            await self._finish_cancelled(handle)
        elif handle.task is not None and not handle.task.done():
            handle.task.cancel()

    async def cancel(self, tenant_id: str, thread_id: str, run_id: str, *, action: str, wait: bool) -> None:
        row = await self.threads.get_run(tenant_id, thread_id, run_id)
        handle = self._handles.get(str(row["run_id"]))
        if handle is None or handle.done.is_set():
            if row["status"] in ("pending", "running"):
                await self.threads.set_run_status(str(row["run_id"]), "interrupted")
            return
        await self._cancel(handle, action)
        if wait:
            await handle.done.wait()

    async def _finish_cancelled(self, handle: RunHandle) -> None:
        handle.status = "interrupted"
        if handle.cancel_action == "rollback":
            await self._rollback(handle)
        else:
            await self.threads.set_run_status(handle.run_id, "interrupted")
        RUNS.labels("interrupted").inc()
        handle.finish()

    async def _rollback(self, handle: RunHandle) -> None:
        """Erase what the run checkpointed, then the run itself."""
        await self.threads.erase_run_checkpoints(handle.thread_id, handle.run_id)
        checkpointer = self.cache.deps.checkpointer
        if isinstance(checkpointer, ChorusCheckpointer):
            checkpointer.forget(handle.thread_id)
        await self.threads.delete_run(handle.run_id)

    # -- executing -------------------------------------------------------------------------------

    async def _work(self, thread_id: str, lane: _Lane) -> None:
        while lane.queue:
            handle = lane.queue.popleft()
            lane.active = handle
            handle.task = asyncio.create_task(self._execute(handle))
            try:
                await asyncio.wait({handle.task})
            finally:
                lane.active = None
        if lane.users == 0 and not lane.queue and self._lanes.get(thread_id) is lane:
            del self._lanes[thread_id]

    def _bot(self, config_id: str, version: int, raw: dict[str, Any]) -> BotConfig:
        key = (config_id, version)
        if key not in self._parsed:
            self._parsed[key] = BotConfig.model_validate(raw)
        return self._parsed[key]

    async def graph_for(self, tenant_id: str, assistant_id: str, version: int) -> CompiledBot:
        # A config version never changes, so a graph compiled for this tenant's version can be reused
        # without asking the database again.
        key = (tenant_id, assistant_id, version)
        graph = self._graphs.get(key)
        if graph is None:
            stored = await self.configs.get(tenant_id, assistant_id, version)
            graph = self.cache.get(stored.config_id, version, self._bot(stored.config_id, version, stored.config))
            self._graphs[key] = graph
            if len(self._graphs) > self.cache.capacity:
                self._graphs.pop(next(iter(self._graphs)))
        return graph

    async def _execute(self, h: RunHandle) -> None:
        tenant_id_var.set(h.tenant_id)
        thread_id_var.set(h.thread_id)
        run_id_var.set(h.run_id)
        started = time.perf_counter()
        first_token = True
        last_meta: Any = None
        last_meta_json: dict[str, Any] = {}
        usage = UsageCollector()
        messages = self._pending_input.pop(h.run_id, [])
        final: dict[str, Any] | None = None
        try:
            await self._take_thread(h)
            graph = await self.graph_for(h.tenant_id, h.assistant_id, h.version)
            config: RunnableConfig = {
                "configurable": {
                    "thread_id": h.thread_id,
                    "tenant_id": h.tenant_id,
                    "run_id": h.run_id,
                    "assistant_id": h.assistant_id,
                },
                "metadata": {"run_id": h.run_id, "assistant_id": h.assistant_id},
                "callbacks": [usage],
                "recursion_limit": 25,
            }
            if h.thread_id in self._needs_repair:
                state = await graph.aget_state(config)
                messages = dangling_tool_calls(state.values.get("messages", [])) + messages
                self._needs_repair.discard(h.thread_id)
            wanted = h.request.stream_mode
            modes: list[StreamMode] = ["values"]
            if "updates" in wanted:
                modes.append("updates")
            if "messages-tuple" in wanted:
                modes.append("messages")
            stream = graph.astream(
                {"messages": messages}, config, stream_mode=modes, durability=h.request.durability or "exit"
            )
            async with asyncio.timeout(self.run_timeout_s):
                async for item in stream:
                    mode, chunk = cast(tuple[str, Any], item)
                    if mode == "values":
                        final = chunk
                        if "values" in wanted:
                            h.publish("values", chunk)
                    elif mode == "updates":
                        h.publish("updates", chunk)
                    else:
                        msg, meta = chunk
                        if first_token:
                            FIRST_TOKEN.observe(time.perf_counter() - started)
                            first_token = False
                        if meta is not last_meta:  # one metadata dict per model call, reused per token
                            last_meta, last_meta_json = meta, stream_metadata(meta)
                        h.publish("messages", [msg, last_meta_json])
            h.status = "success"
            h.result = final
            values = jsonable(final or {})
            await self.threads.set_status(
                h.thread_id,
                "idle",
                values=values,
                metadata={"escalated": bool(values.get("escalated"))},
                release=self.lease,
                run=(h.run_id, "success", None),
            )
            await usage.store(self.db, tenant_id=h.tenant_id, run_id=h.run_id, thread_id=h.thread_id)
        except asyncio.CancelledError:
            self._needs_repair.add(h.thread_id)
            with contextlib.suppress(Exception):
                await self.threads.set_status(h.thread_id, "idle", release=self.lease)
                await self._finish_cancelled(h)
            return
        except TimeoutError:
            await self._fail(
                h,
                "timeout",
                f"the run took longer than {self.run_timeout_s:g} s and was stopped "
                "(CHORUS_RUN_TIMEOUT_SECONDS); what it checkpointed is kept",
                status="timeout",
            )
        except ChorusError as exc:
            await self._fail(h, exc.code, exc.detail)
        except Exception as exc:
            log.exception("run failed")
            await self._fail(h, type(exc).__name__, str(exc) or type(exc).__name__)
        finally:
            TURN_LATENCY.observe(time.perf_counter() - started)
            if h.status != "interrupted":
                RUNS.labels(h.status).inc()
                h.finish()
            # Keep the finished run in memory a while for late joiners, then let it go.
            asyncio.get_running_loop().call_later(300, self._handles.pop, h.run_id, None)

    async def _take_thread(self, h: RunHandle) -> None:
        """Wait until this process holds the thread (another process may be running a turn on it)."""
        pause = _TAKE_RETRY_S[0]
        while h.status != "running":
            if await self.threads.mark_running(h.run_id, h.thread_id, self.lease):
                h.status = "running"
                return
            await asyncio.sleep(pause)
            pause = min(pause * 2, _TAKE_RETRY_S[1])

    async def renew_leases_forever(self) -> None:
        while True:
            await asyncio.sleep(LEASE_SECONDS / 3)
            try:
                await self.threads.renew_leases(self.lease)
            except Exception:
                log.exception("could not renew thread leases")

    async def _fail(self, h: RunHandle, error: str, message: str, *, status: str = "error") -> None:
        h.status = status
        h.error = {"error": error, "message": message}
        h.publish("error", h.error)
        self._needs_repair.add(h.thread_id)
        with contextlib.suppress(Exception):
            await self.threads.set_status(h.thread_id, "error", release=self.lease, run=(h.run_id, status, message))

    # -- reading ---------------------------------------------------------------------------------

    def handle(self, run_id: str) -> RunHandle | None:
        return self._handles.get(run_id)

    def needs_repair(self, thread_ids: list[str]) -> None:
        """Threads whose last run died mid-turn: their next turn first answers dangling tool calls."""
        self._needs_repair.update(thread_ids)

    async def shutdown(self) -> None:
        """Stop active turns (they end as interrupted and give their threads back), then the workers."""
        active = [lane.active.task for lane in self._lanes.values() if lane.active and lane.active.task]
        for task in active:
            task.cancel()
        if active:
            await asyncio.wait(active, timeout=5)
        for lane in list(self._lanes.values()):
            if lane.worker:
                lane.worker.cancel()


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True
