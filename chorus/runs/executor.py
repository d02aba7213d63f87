"""Executes one claimed run: the thread's pinned graph, streamed to the run's subscribers, checkpointed
step by step, ended in one statement with the thread's new values.

A run claimed again after its process died resumes from its last checkpoint (LangGraph re-runs only the
unfinished step; side-effecting tools do not repeat, see agents/tools/ledger.py). How a run stops early
depends on why: a user's interrupt keeps what it checkpointed, a rollback erases it, a draining process
hands the run back to the queue, and a lost lease leaves everything to the worker that took it over.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import psycopg
from langchain_core.messages import AnyMessage, HumanMessage
from langchain_core.runnables import RunnableConfig
from langgraph.types import Command, Durability, StreamMode
from psycopg_pool import PoolTimeout

from chorus.agents.configs.environments import Serving
from chorus.agents.errors import ChorusError, DatabaseUnavailable, ServerBusy
from chorus.agents.observability.logs import run_id_var, tenant_id_var, thread_id_var
from chorus.agents.observability.metrics import FIRST_TOKEN, RUNS, TURN_LATENCY
from chorus.agents.queue import Job, JobContext, JobQueue, Lease, StopReason
from chorus.agents.storage.database import Database
from chorus.agents.tools.ledger import recorded_outcomes
from chorus.graphs.checkpointer import ChorusCheckpointer
from chorus.graphs.compiler import CompiledBot
from chorus.graphs.nodes.tools import TOOL_MOCKS_KEY
from chorus.graphs.repair import dangling_tool_calls, unanswered_tool_calls
from chorus.runs.handles import HandleTable, RunHandle
from chorus.runs.relay import EventRelay
from chorus.runs.runs_repository import RunRepository
from chorus.runs.serialization import jsonable
from chorus.runs.statuses import RunStatus
from chorus.runs.stream_modes import ChunkTranslator, langgraph_modes
from chorus.runs.threads_repository import ThreadRepository
from chorus.runs.usage import UsageCollector

log = logging.getLogger(__name__)
DEFAULT_DURABILITY: Durability = "sync"  # a step's writes are in Postgres before the next step starts
_NEEDS_REPAIR = frozenset({RunStatus.ERROR, RunStatus.TIMEOUT, RunStatus.INTERRUPTED})
GraphFor = Callable[[str, str, Serving], Awaitable[CompiledBot]]
RETRY_AFTER_DB_FAULT_S = 2.0  # a run the database failed is claimed again no sooner than this
T = TypeVar("T")
GraphInput = dict[str, Any] | Command[Any] | None
# The run's mocked tool results (kwargs key, set only by the eval runner through RunEngine.submit) and where the
# tools node reads them (a `__` key of `configurable`, which no client's run config may carry: schemas.py).
EVAL_TOOL_MOCKS = "eval_tool_mocks"


def _may_pause(spec: RunSpec) -> bool:
    """Whether the run can stop short of the graph's end: it set breakpoints, or resumed an interrupt."""
    kw = spec.kwargs
    return bool(kw.get("interrupt_before") or kw.get("interrupt_after") or kw.get("command"))


async def _to_completion(step: Awaitable[T]) -> tuple[T, bool]:
    """Await `step` to its end even if the task is cancelled meanwhile; its result, and whether a cancel
    arrived (the caller acts on the stop once the step is done)."""
    task = asyncio.ensure_future(step)
    try:
        return await asyncio.shield(task), False
    except asyncio.CancelledError:
        return await task, True


@dataclass(frozen=True)
class RunSpec:
    """What executing a run needs, read from its row (or handed over by the process that stored it)."""

    run_id: str
    tenant_id: str
    thread_id: str
    assistant_id: str
    serving: Serving
    kwargs: dict[str, Any]
    previous_status: str | None

    @property
    def version(self) -> int:
        return self.serving.version

    @classmethod
    def from_row(cls, row: dict[str, Any], tenant_id: str) -> RunSpec:
        return cls(
            run_id=str(row["run_id"]),
            tenant_id=tenant_id,
            thread_id=str(row["thread_id"]),
            assistant_id=str(row["assistant_id"]),
            serving=Serving.of(row),
            kwargs=row["kwargs"] or {},
            previous_status=row.get("previous_status"),
        )

    def input_messages(self) -> list[AnyMessage]:
        stored = (self.kwargs.get("input") or {}).get("messages") or []
        return [HumanMessage(content=m["content"], id=m["id"]) for m in stored]

    @property
    def stream_mode(self) -> list[str]:
        modes = self.kwargs.get("stream_mode") or ["values"]
        return [modes] if isinstance(modes, str) else list(modes)


class RunExecutor:
    """The queue's handler for jobs of kind `run`."""

    def __init__(
        self,
        *,
        db: Database,
        runs: RunRepository,
        threads: ThreadRepository,
        queue: JobQueue,
        handles: HandleTable,
        relay: EventRelay,
        graph_for: GraphFor,
        checkpointer: ChorusCheckpointer | None,
        run_timeout_s: float,
    ) -> None:
        self.db = db
        self.runs = runs
        self.threads = threads
        self.queue = queue
        self.handles = handles
        self.relay = relay
        self.graph_for = graph_for
        self.checkpointer = checkpointer
        self.run_timeout_s = run_timeout_s
        # Specs of runs stored by this process and claimed at once: no need to read them back.
        self.prepared: dict[str, RunSpec] = {}

    async def run(self, job: Job, ctx: JobContext) -> None:
        spec = self.prepared.pop(job.job_id, None)
        stopped_early = False
        if spec is None:
            # A stop that arrives while the row is read must still be recorded with it: read it to the end.
            row, stopped_early = await _to_completion(self.runs.for_execution(job.job_id))
            if row is None or job.tenant_id is None:  # the thread (and its runs) were deleted
                await self.queue.finish(job.job_id, ctx.lease)
                ctx.finished = True
                return
            spec = RunSpec.from_row(row, job.tenant_id)
        handle = self.handles.add(
            RunHandle(spec.run_id, spec.tenant_id, spec.thread_id, spec.assistant_id, stream_mode=spec.stream_mode)
        )
        if handle.attempt != job.attempts:  # a later attempt: its events number from 1 again
            handle.attempt, handle.seq = job.attempts, 0
        handle.resumable = handle.resumable or bool(spec.kwargs.get("stream_resumable"))
        handle.executed_here = True
        handle.status = RunStatus.RUNNING
        self.relay.unwatch(spec.run_id)  # it executes here now
        if stopped_early:
            await self._stopped(spec, handle, job, ctx)
        else:
            await self._execute(spec, handle, job, ctx)

    async def given_up(self, job: Job, lease: Lease) -> None:
        await self.runs.end_unexecuted(
            job.job_id,
            RunStatus.ERROR,
            f"the run's server process stopped {job.attempts} time(s) while running it; what it checkpointed is "
            "kept and the thread takes new runs",
            given_up=lease,
        )

    def _emit(self, handle: RunHandle, event: str, data: Any) -> None:
        handle.publish(event, data)
        if self.relay.watched(handle.run_id):
            self.relay.send(handle, event, data)

    async def _execute(self, spec: RunSpec, h: RunHandle, job: Job, ctx: JobContext) -> None:
        tenant_id_var.set(spec.tenant_id)
        thread_id_var.set(spec.thread_id)
        run_id_var.set(spec.run_id)
        started = time.perf_counter()
        usage = UsageCollector()
        final: dict[str, Any] | None = None
        paused = False
        status, error = RunStatus.SUCCESS, None
        try:
            graph = await self.graph_for(spec.tenant_id, spec.assistant_id, spec.serving)
            asked = spec.kwargs.get("config") or {}
            config: RunnableConfig = {
                "configurable": {
                    **(asked.get("configurable") or {}),  # the client's own keys; Chorus's (below) are reserved
                    "thread_id": spec.thread_id,
                    "tenant_id": spec.tenant_id,
                    "run_id": spec.run_id,
                    "assistant_id": spec.assistant_id,
                    TOOL_MOCKS_KEY: spec.kwargs.get(EVAL_TOOL_MOCKS) or {},
                    "environment": spec.serving.environment,  # its tool calls use this environment's secrets
                },
                "metadata": {"run_id": spec.run_id, "assistant_id": spec.assistant_id},
                "callbacks": [usage],
                "recursion_limit": int(asked.get("recursion_limit") or 25),
                "tags": list(asked.get("tags") or []),
            }
            resume = job.attempts > 1 and await self.runs.has_checkpoints(spec.thread_id, spec.run_id)
            graph_input: GraphInput = None  # None: go on from the checkpoint (a resumed attempt, a breakpoint)
            fork_from = spec.kwargs.get("checkpoint_id")
            command = spec.kwargs.get("command")
            if not resume and fork_from:
                # An edit or a regenerate: a new branch from that checkpoint (history keeps the old one).
                config["configurable"]["checkpoint_id"] = fork_from
            if resume:
                graph_input = None
            elif command is not None:  # resume an interrupted thread (`resume`), or send it elsewhere (`goto`)
                graph_input = Command(
                    resume=command.get("resume"), goto=command.get("goto") or (), update=command.get("update")
                )
            elif fork_from or not spec.input_messages():
                messages = spec.input_messages()  # none: a regenerate, or a thread going on from a breakpoint
                graph_input = {"messages": messages} if messages else None
            else:
                messages = spec.input_messages()
                if spec.previous_status in _NEEDS_REPAIR:
                    history = (await graph.aget_state(config)).values.get("messages", [])
                    unanswered = [(str(c["id"]), c["name"]) for c in unanswered_tool_calls(history)]
                    recorded = await recorded_outcomes(
                        self.db, tenant_id=spec.tenant_id, thread_id=spec.thread_id, calls=unanswered
                    )
                    messages = dangling_tool_calls(history, recorded) + messages
                graph_input = {"messages": messages}
            async with asyncio.timeout(self.run_timeout_s):
                final = await self._stream(graph, graph_input, config, spec, h, started)
            latest: RunnableConfig = {
                "configurable": {k: v for k, v in config["configurable"].items() if k != "checkpoint_id"}
            }
            if final is None:  # resumed after the graph had already finished
                final = (await graph.aget_state(latest)).values
            if _may_pause(spec):  # stopped at a breakpoint or an interrupt(): the thread waits for a resume
                paused = bool((await graph.aget_state(latest)).next)
        except asyncio.CancelledError:
            await self._stopped(spec, h, job, ctx)
            return
        except TimeoutError:
            status, error = (
                RunStatus.TIMEOUT,
                {
                    "error": "timeout",
                    "message": f"the run took longer than {self.run_timeout_s:g} s and was stopped "
                    "(CHORUS_RUN_TIMEOUT_SECONDS); what it checkpointed is kept",
                },
            )
        except (PoolTimeout, ServerBusy, DatabaseUnavailable, psycopg.OperationalError) as exc:
            await self._left_to_the_queue(spec, h, job, ctx, exc)
            return
        except ChorusError as exc:
            status, error = RunStatus.ERROR, {"error": exc.code, "message": exc.detail}
        except Exception as exc:
            log.exception("run failed")
            status, error = RunStatus.ERROR, {"error": type(exc).__name__, "message": str(exc) or type(exc).__name__}
        finally:
            TURN_LATENCY.observe(time.perf_counter() - started)
        values = jsonable(final or {}) if status == RunStatus.SUCCESS else None
        if error is not None:
            self._emit(h, "error", error)
        await self._end(spec, h, ctx, status, error=error, values=values, paused=paused)
        if status == RunStatus.SUCCESS:
            try:
                await usage.store(self.db, tenant_id=spec.tenant_id, run_id=spec.run_id, thread_id=spec.thread_id)
            except Exception:
                log.exception("could not store token usage")
            if spec.kwargs.get("delete_thread_when_done"):  # a stateless cron's run: its thread served once
                with contextlib.suppress(ChorusError):
                    await self.threads.delete(spec.tenant_id, spec.thread_id)
                    if self.checkpointer is not None:
                        await self.checkpointer.adelete_thread(spec.thread_id)

    async def _stream(
        self,
        graph: CompiledBot,
        graph_input: GraphInput,
        config: RunnableConfig,
        spec: RunSpec,
        h: RunHandle,
        started: float,
    ) -> dict[str, Any] | None:
        wanted = spec.stream_mode
        durability = cast(Durability, spec.kwargs.get("durability") or DEFAULT_DURABILITY)
        subgraphs = bool(spec.kwargs.get("stream_subgraphs"))
        final: dict[str, Any] | None = None

        def first_token() -> None:
            FIRST_TOKEN.observe(time.perf_counter() - started)

        translate = ChunkTranslator(wanted, lambda event, data: self._emit(h, event, data), on_first_token=first_token)
        modes = langgraph_modes(wanted)
        if "events" in wanted:
            return await self._stream_events(graph, graph_input, config, h, translate, modes, durability, spec)
        async for item in graph.astream(
            graph_input,
            config,
            stream_mode=modes,
            durability=durability,
            subgraphs=subgraphs,
            context=spec.kwargs.get("context"),
            interrupt_before=spec.kwargs.get("interrupt_before"),
            interrupt_after=spec.kwargs.get("interrupt_after"),
        ):
            namespace, mode, chunk = cast(tuple[tuple[str, ...], str, Any], item if subgraphs else ((), *item))
            if mode == "values" and not namespace:
                final = chunk
            translate(namespace, mode, chunk)
        return final

    async def _stream_events(
        self,
        graph: CompiledBot,
        graph_input: GraphInput,
        config: RunnableConfig,
        h: RunHandle,
        translate: ChunkTranslator,
        modes: list[StreamMode],
        durability: Durability,
        spec: RunSpec,
    ) -> dict[str, Any] | None:
        """The `events` mode: every LangChain event of the run; the graph's own stream chunks among them
        (its root's `on_chain_stream`) feed the other modes asked for."""
        final: dict[str, Any] | None = None
        root: str | None = None
        subgraphs = bool(spec.kwargs.get("stream_subgraphs"))
        async for event in graph.astream_events(
            graph_input,
            config,
            version="v2",
            stream_mode=modes,
            durability=durability,
            subgraphs=subgraphs,
            context=spec.kwargs.get("context"),
            interrupt_before=spec.kwargs.get("interrupt_before"),
            interrupt_after=spec.kwargs.get("interrupt_after"),
        ):
            if root is None:
                root = event["run_id"]  # the graph's own on_chain_start comes first
            self._emit(h, "events", event)
            if event["event"] == "on_chain_stream" and event["run_id"] == root:
                chunk = event["data"]["chunk"]
                namespace, mode, data = cast(tuple[tuple[str, ...], str, Any], chunk if subgraphs else ((), *chunk))
                if mode == "values" and not namespace:
                    final = data
                translate(namespace, mode, data)
        return final

    async def _end(
        self,
        spec: RunSpec,
        h: RunHandle,
        ctx: JobContext,
        status: RunStatus,
        *,
        error: dict[str, str] | None = None,
        values: Any = None,
        delete_run: bool = False,
        paused: bool = False,
    ) -> None:
        try:
            # A cancel arriving now (a user's, a client leaving) must not cut the outcome's write short.
            ended, _stopped_meanwhile = await _to_completion(
                self.runs.finish(
                    run_id=spec.run_id,
                    thread_id=spec.thread_id,
                    lease=ctx.lease,
                    status=status,
                    error=error["message"] if error else None,
                    values=values,
                    metadata={"escalated": bool(values.get("escalated"))} if isinstance(values, dict) else None,
                    expires_at=self.threads.expiry(),
                    delete_run=delete_run,
                    paused=paused,
                    webhook=spec.kwargs.get("webhook"),
                )
            )
            ctx.finished = True
            if not ended:
                log.warning("another worker took this run over before it ended here; its outcome is theirs")
        except Exception:
            # The lease runs out and the run is claimed again; it resumes from its last checkpoint.
            log.exception("could not record the end of a run; it will be resumed by the queue")
        finally:  # even when cancelled meanwhile: whoever follows the run learns it ended here
            RUNS.labels(status.value).inc()
            h.finish(status.value, result=values, error=error)
            self.relay.send_end(h)
            self.handles.finished(h)

    async def _left_to_the_queue(self, spec: RunSpec, h: RunHandle, job: Job, ctx: JobContext, exc: Exception) -> None:
        """The database gave the run no connection (overload) or went away. The run is not failed for that:
        it goes back to the queue, to be resumed from its last checkpoint a moment later (the attempt
        counts), here or in another process. Under overload whoever follows it goes on waiting for its
        events and end; in an outage, of unknown length, their streams end saying so."""
        log.warning("the database failed a running run (%s); the queue resumes it", type(exc).__name__)
        try:
            await self.queue.put_back(job.job_id, ctx.lease, after_s=RETRY_AFTER_DB_FAULT_S)
        except Exception:
            log.warning("could not put the run back; its lease lapses and the queue resumes it then")
        ctx.finished = True  # no more renewals
        if isinstance(exc, (PoolTimeout, ServerBusy)):
            self.relay.watch(h)  # its events (from a resumed attempt) and its end reach the same handle
            return
        message = "the database is unavailable; the run resumes from its last step once it is back (join it again)"
        self._emit(h, "error", {"error": "database_unavailable", "message": message})
        h.finish(RunStatus.PENDING.value, error={"error": "database_unavailable", "message": message})
        self.handles.drop(spec.run_id)

    async def _stopped(self, spec: RunSpec, h: RunHandle, job: Job, ctx: JobContext) -> None:
        reason = ctx.stop_reason or StopReason.HAND_BACK
        if reason == StopReason.ROLLBACK:
            if self.checkpointer is not None:
                # What the run still holds must not reach Postgres after the erase below.
                await self.checkpointer.aforget(spec.thread_id)
            await self.runs.erase_checkpoints(spec.thread_id, spec.run_id)
            if self.checkpointer is not None:
                self.checkpointer.forget(spec.thread_id)
            await self._end(spec, h, ctx, RunStatus.INTERRUPTED, delete_run=True)
        elif reason == StopReason.INTERRUPT:
            await self._end(spec, h, ctx, RunStatus.INTERRUPTED)
        elif reason == StopReason.HAND_BACK:
            try:
                await self.queue.hand_back(job.job_id, ctx.lease)
                await self.runs.hand_back(spec.run_id)
            except Exception:
                log.exception("could not hand a run back; its lease will run out and it will be resumed")
            ctx.finished = True
            message = "this server process is stopping; the run goes on in another one (join it again)"
            self._emit(h, "error", {"error": "server_draining", "message": message})
            h.finish(RunStatus.PENDING.value, error={"error": "server_draining", "message": message})
            self.handles.drop(spec.run_id)
        else:  # LOST: another worker holds the run now
            ctx.finished = True
            message = "another server process took this run over; join it again to follow it"
            self._emit(h, "error", {"error": "run_moved", "message": message})
            h.finish(RunStatus.RUNNING.value, error={"error": "run_moved", "message": message})
            self.handles.drop(spec.run_id)
