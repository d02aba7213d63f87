"""The run engine: what the API asks of runs — submit, cancel, join, follow — in any server process.

A run is stored with its input and queued in one statement; the process that stored it runs it at once
when its thread is free (no hop between processes on the common path), otherwise whichever worker
claims it when the thread's earlier runs end. Cancels reach the process running a run through Postgres;
a run executing elsewhere is followed through the event relay.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

from psycopg.errors import ForeignKeyViolation

from chorus.agents.configs.deployments_repository import DeploymentRepository
from chorus.agents.configs.environments import Serving, effective_config
from chorus.agents.configs.models import BotConfig
from chorus.agents.configs.repository import ConfigRepository, parse_uuid
from chorus.agents.errors import InvalidInput, RunEnded, ThreadBusy, ThreadNotFound
from chorus.agents.queue import CancelAction, JobStatus, Notifications, Worker
from chorus.agents.storage.database import Database
from chorus.agents.tenancy.environments import DEFAULT_ENVIRONMENT, Environment
from chorus.graphs.checkpointer import ChorusCheckpointer
from chorus.graphs.compiler import CHATBOT_NODES, CompiledBot, GraphCache
from chorus.runs.admission import NO_INPUT, Pins, input_messages, is_uuid, resolve_graph_id, run_kwargs
from chorus.runs.executor import EVAL_TOOL_MOCKS, RunExecutor, RunSpec
from chorus.runs.handles import EventId, HandleTable, RunHandle
from chorus.runs.relay import EventRelay
from chorus.runs.runs_repository import RUN_KIND, NewRun, RunRepository
from chorus.runs.schemas import RunCreate
from chorus.runs.statuses import RunStatus, ThreadStatus
from chorus.runs.threads_repository import ThreadRepository

ASSISTANT_DELETED_CHANNEL = "chorus_assistant_deleted"
REPLAY_WAIT_S = 2.0  # how long a rejoin waits for another process to replay what the client missed


class RunEngine:
    def __init__(
        self,
        *,
        db: Database,
        configs: ConfigRepository,
        threads: ThreadRepository,
        cache: GraphCache,
        worker: Worker,
        notifications: Notifications,
        run_timeout_s: float = 300.0,
        max_runs: int = 200,
    ) -> None:
        self.db = db
        self.configs = configs
        self.threads = threads
        self.cache = cache
        self.worker = worker
        self.runs = RunRepository(db)
        self.handles = HandleTable()
        self.pins = Pins(threads=threads, configs=configs)
        self.relay = EventRelay(
            notifications,
            self.handles,
            me=worker.lease.worker,
            lookup=self.runs.outcomes,
            executing_here=lambda run_id: worker.running(run_id) is not None,
        )
        checkpointer = cache.deps.checkpointer
        self.checkpointer = checkpointer if isinstance(checkpointer, ChorusCheckpointer) else None
        self.executor = RunExecutor(
            db=db,
            runs=self.runs,
            threads=threads,
            queue=worker.queue,
            handles=self.handles,
            relay=self.relay,
            graph_for=self.graph_for,
            checkpointer=self.checkpointer,
            run_timeout_s=run_timeout_s,
        )
        worker.register(RUN_KIND, self.executor, concurrency=max_runs)
        worker.on_lane_free.append(worker.claim_lane)
        notifications.on(ASSISTANT_DELETED_CHANNEL, self.pins.forget_assistant)
        notifications.on_reconnect(self.pins.clear)  # a deletion may have been announced while away
        self._graphs: OrderedDict[tuple[str, str, int, str, int], CompiledBot] = OrderedDict()
        self.environments = DeploymentRepository(db)

    @property
    def run_timeout_s(self) -> float:
        return self.executor.run_timeout_s

    @run_timeout_s.setter
    def run_timeout_s(self, value: float) -> None:
        self.executor.run_timeout_s = value

    # -- submitting ------------------------------------------------------------------------------

    async def submit(
        self,
        tenant_id: str,
        thread_id: str,
        req: RunCreate,
        *,
        run_id: str | None = None,
        delete_thread_when_done: bool = False,
        environment: Environment | None = None,
        tool_mocks: dict[str, Any] | None = None,
    ) -> RunHandle:
        """Store the run and its input (durable from here on), then run it here or queue it. `run_id`: an id
        of the caller's (AlreadyExists if taken); `delete_thread_when_done`: a stateless cron's thread;
        `environment`: the caller's (its key's), whose deployed version a new thread gets; `tool_mocks`: tool
        name -> the result it returns in this run (the eval runner's only: no API request can set it)."""
        messages = input_messages(req)
        thread_id = parse_uuid(thread_id, "thread")
        if not is_uuid(req.assistant_id):
            resolved = await resolve_graph_id(self.configs, tenant_id, req.assistant_id)
            req = req.model_copy(update={"assistant_id": resolved})
        # Checked before the thread is pinned to the assistant: a refused run leaves nothing behind.
        if not messages and req.command is None and req.fork_from is None:
            thread = await self.threads.get(tenant_id, thread_id)
            if thread["status"] != ThreadStatus.INTERRUPTED:
                raise InvalidInput(NO_INPUT, errors=[{"path": "$.input.messages", "message": "required"}])
        if req.fork_from is not None and not await self.runs.is_checkpoint_of(thread_id, req.fork_from):
            raise InvalidInput(
                f"checkpoint '{req.fork_from[:64]}' is not a checkpoint of thread '{thread_id}'; take one from "
                "the thread's history (POST /threads/{thread_id}/history)",
                errors=[{"path": "$.checkpoint.checkpoint_id", "message": "not a checkpoint of this thread"}],
            )
        _check_nodes(req, CHATBOT_NODES)
        pin = await self.pins.pinned(tenant_id, thread_id, req, environment=environment)
        assistant_id = pin.assistant_id
        if req.interrupt_before or req.interrupt_after:  # this bot's own nodes (`tools` only if it has tools)
            graph = await self.graph_for(tenant_id, assistant_id, pin.serving)
            _check_nodes(req, [n for n in graph.nodes if not n.startswith("__")])
        run = NewRun(
            run_id=run_id or str(uuid.uuid4()),
            tenant_id=tenant_id,
            thread_id=thread_id,
            assistant_id=assistant_id,
            serving=pin.serving,
            strategy=req.multitask_strategy,
            kwargs={
                **run_kwargs(req, messages),
                "delete_thread_when_done": delete_thread_when_done,
                **({EVAL_TOOL_MOCKS: tool_mocks} if tool_mocks else {}),
            },
            metadata=req.metadata,
            after_seconds=req.after_seconds,
        )
        claim = self.worker.lease if self.worker.has_room(RUN_KIND) and not req.after_seconds else None
        try:
            row, job = await self.runs.insert(run, claim=claim)
        except ForeignKeyViolation:
            self.pins.forget(thread_id)
            raise ThreadNotFound(thread_id) from None
        handle = self.handles.add(
            RunHandle(
                run.run_id,
                tenant_id,
                thread_id,
                assistant_id,
                stream_mode=list(req.stream_mode),
                resumable=req.stream_resumable,
            )
        )
        handle.row = row
        if job.status == JobStatus.RUNNING and job.worker == self.worker.lease.worker:
            handle.status = RunStatus.RUNNING
            self.executor.prepared[run.run_id] = RunSpec.from_row(row, tenant_id)
            self.worker.adopt(job)
            return handle
        await self._busy_thread(handle, req)
        return handle

    async def _busy_thread(self, handle: RunHandle, req: RunCreate) -> None:
        """The run was queued behind others: apply its multitask strategy."""
        lane = await self.worker.queue.lane_jobs(handle.thread_id)
        ahead = []
        for job in lane:
            if job.job_id == handle.run_id:
                break
            ahead.append(job)
        if ahead and req.multitask_strategy == "reject":
            cancelled = await self.worker.queue.request_cancel(handle.run_id, CancelAction.INTERRUPT)
            if cancelled is not None and cancelled.status == JobStatus.QUEUED:
                await self.runs.end_unexecuted(handle.run_id, RunStatus.INTERRUPTED, notify=False)
                await self.runs.delete_finished(handle.tenant_id, handle.run_id)
                self.handles.drop(handle.run_id)
                raise ThreadBusy(
                    f"thread '{handle.thread_id}' is busy with run '{ahead[0].job_id}'; wait for it, or send "
                    "multitask_strategy 'enqueue', 'interrupt' or 'rollback'"
                )
        if req.multitask_strategy in ("interrupt", "rollback"):
            for job in ahead:
                await self._cancel_job(job.job_id, handle.tenant_id, CancelAction(req.multitask_strategy))
        self.relay.watch(handle)  # whichever process claims it, its events reach this handle

    # -- cancelling ------------------------------------------------------------------------------

    async def cancel(self, tenant_id: str, thread_id: str, run_id: str, *, action: str, wait: bool) -> None:
        row = await self.runs.get(tenant_id, thread_id, run_id)
        run_id = str(row["run_id"])
        if not RunStatus(row["status"]).active:
            raise RunEnded(f"run '{run_id}' has already ended (status '{row['status']}'); there is nothing to cancel")
        await self._cancel_job(run_id, tenant_id, CancelAction(action))
        if wait:
            await self.join(tenant_id, thread_id, run_id)

    async def cancel_many(
        self, tenant_id: str, *, thread_id: str | None, run_ids: list[str] | None, status: str | None, action: str
    ) -> int:
        """Cancel the tenant's active runs: these ids (of one thread, if given), or all pending and/or running
        ones. How many were asked to stop; runs that ended meanwhile are left as they are."""
        statuses = {
            "pending": ["pending"],
            "running": ["running"],
            None: ["pending", "running"],
            "all": ["pending", "running"],
        }[status]
        if thread_id is not None:
            thread_id = parse_uuid(thread_id, "thread")
        ids = [parse_uuid(r, "run") for r in run_ids] if run_ids else None
        rows = await self.runs.active(tenant_id, thread_id=thread_id, run_ids=ids, statuses=statuses)
        for row in rows:
            await self._cancel_job(row["run_id"], tenant_id, CancelAction(action))
        return len(rows)

    async def _cancel_job(self, run_id: str, tenant_id: str, action: CancelAction) -> None:
        job = await self.worker.queue.request_cancel(run_id, action)
        if job is None:
            return  # it ended meanwhile
        if job.status == JobStatus.QUEUED:  # removed from the queue before it started
            await self.runs.end_unexecuted(run_id, RunStatus.INTERRUPTED)
            if action == CancelAction.ROLLBACK:
                await self.runs.delete_finished(tenant_id, run_id)
            handle = self.handles.get(run_id)
            if handle is not None:
                self.relay.unwatch(run_id)
                handle.finish(RunStatus.INTERRUPTED.value)
                self.handles.finished(handle)
        else:
            self.worker.cancel_local(run_id, action)  # the notification reaches other processes

    # -- following -------------------------------------------------------------------------------

    async def follow(self, tenant_id: str, thread_id: str, run_id: str) -> RunHandle | None:
        """A handle on the run's events, wherever it executes; None if it has ended."""
        row = await self.runs.get(tenant_id, thread_id, run_id)
        run_id = str(row["run_id"])
        handle = self.handles.get(run_id)
        if handle is not None:
            return handle
        if not RunStatus(row["status"]).active:
            return None
        handle = self.handles.add(RunHandle(run_id, tenant_id, str(row["thread_id"]), str(row["assistant_id"])))
        handle.row = row
        self.relay.watch(handle)
        return handle

    async def rejoin(self, tenant_id: str, thread_id: str, run_id: str, after: EventId) -> RunHandle | None:
        """A handle on the run for a client that rejoins with `Last-Event-ID`: its log holds what the client
        missed, asked of the process that executed the run when that is another one (an ended run's events
        too, while that process keeps them); None if nobody has them and the run has ended."""
        handle = await self.follow(tenant_id, thread_id, run_id)
        if handle is not None:
            if not handle.executed_here:
                await self.relay.replay(handle, after, wait_s=REPLAY_WAIT_S)
            return handle
        row = await self.runs.get(tenant_id, thread_id, run_id)
        ended = RunHandle(
            str(row["run_id"]), tenant_id, str(row["thread_id"]), str(row["assistant_id"]), resumable=True
        )
        await self.relay.replay(ended, after, wait_s=REPLAY_WAIT_S)
        if not ended.log:
            return None
        ended.attempt, ended.seq = ended.log[-1][0]
        ended.finish(str(row["status"]))
        return ended

    async def join(self, tenant_id: str, thread_id: str, run_id: str) -> Any:
        """Wait for the run to end; its outcome (the thread's values, or the error)."""
        handle = await self.follow(tenant_id, thread_id, run_id)
        if handle is not None:
            await handle.done.wait()
            return handle.outcome()
        thread = await self.threads.get(tenant_id, thread_id)
        return thread["values"] or {}

    # -- threads ---------------------------------------------------------------------------------

    async def delete_thread(self, tenant_id: str, thread_id: str) -> None:
        """Delete the thread with its runs and checkpoints; 409 while a run is queued or running on it."""
        thread_id = parse_uuid(thread_id, "thread")
        await self.threads.delete(tenant_id, thread_id)
        if self.checkpointer is not None:
            await self.checkpointer.adelete_thread(thread_id)
        self.pins.forget(thread_id)

    async def delete_assistant(self, tenant_id: str, assistant_id: str, *, delete_threads: bool) -> None:
        """Delete an assistant. Its threads are kept whole (state, history, and new runs with another
        assistant; its versions stay for them) or, with `delete_threads`, deleted with their runs and
        checkpoints: then a 409, and nothing deleted, while a run is queued or running on one of them."""
        assistant_id = parse_uuid(assistant_id, "assistant")
        async with self.db.connection() as conn, conn.transaction():
            await ConfigRepository.mark_deleted(conn, tenant_id, assistant_id)
            gone = await ThreadRepository.delete_of_assistant(conn, tenant_id, assistant_id) if delete_threads else []
            await ConfigRepository.purge_if_unused(conn, assistant_id)
            # Every process forgets its threads' pins (sent when this commits).
            await conn.execute("SELECT pg_notify(%s, %s)", (ASSISTANT_DELETED_CHANNEL, assistant_id))
        self.pins.forget_assistant(assistant_id)
        for thread_id in gone:
            self.pins.forget(thread_id)
            if self.checkpointer is not None:
                await self.checkpointer.adelete_thread(thread_id)

    def forget_thread(self, thread_id: str) -> None:
        self.pins.forget(thread_id)

    async def graph_for(self, tenant_id: str, assistant_id: str, serving: Serving | int) -> CompiledBot:
        """The compiled graph of a version (an int: with no environment overrides) as an environment serves it."""
        if isinstance(serving, int):
            serving = Serving(serving, DEFAULT_ENVIRONMENT, 0)
        # A config version and an overrides revision never change, so a graph compiled for them is reused.
        key = (
            tenant_id,
            assistant_id,
            serving.version,
            serving.environment if serving.overrides_revision else "",
            serving.overrides_revision,
        )
        graph = self._graphs.get(key)
        if graph is None:
            # A deleted assistant's versions serve the threads pinned to them (state, history, runs in flight).
            stored = await self.configs.get(tenant_id, assistant_id, serving.version, deleted_too=True)
            found = await self.environments.overrides(
                tenant_id, stored.config_id, serving.environment, serving.overrides_revision
            )
            config = effective_config(stored.config, found.overrides if found else None)
            graph = self.cache.get(stored.config_id, serving.version, BotConfig.model_validate(config), variant=key[3:])
            self._graphs[key] = graph
            if len(self._graphs) > self.cache.capacity:
                self._graphs.popitem(last=False)
        else:
            self._graphs.move_to_end(key)
        return graph

    async def drain(self, grace_s: float) -> None:
        await self.worker.drain(grace_s)


def _check_nodes(req: RunCreate, nodes: Iterable[str]) -> None:
    known = sorted(nodes)
    for field_name, asked in (("interrupt_before", req.interrupt_before), ("interrupt_after", req.interrupt_after)):
        unknown = [n for n in (asked if isinstance(asked, list) else []) if n not in known]
        if unknown:
            raise InvalidInput(
                f"{field_name} names {unknown}, which are not nodes of this bot's graph; its nodes are {known}",
                errors=[{"path": f"$.{field_name}", "message": f"unknown nodes {unknown}"}],
            )
