"""What the threads API does beyond plain rows: a thread created with supersteps, a copy, its state at a
checkpoint, its history, and updates to its state, which wait for no run: one is refused (409) while a
run is queued or running on the thread, and a run submitted during one waits for it."""

from __future__ import annotations

import contextlib
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.errors import InvalidUpdateError
from langgraph.types import StateUpdate

from chorus.agents.configs.environments import Serving
from chorus.agents.configs.repository import StoredConfig, parse_uuid
from chorus.agents.errors import AlreadyExists, ChorusError, Forbidden, InvalidInput, NotFound
from chorus.agents.tenancy.environments import DEFAULT_ENVIRONMENT, Environment
from chorus.graphs.compiler import CompiledBot
from chorus.runs.admission import resolve_graph_id
from chorus.runs.engine import RunEngine
from chorus.runs.schemas import HistoryRequest, ThreadCreate, ThreadStateUpdate
from chorus.runs.serialization import jsonable
from chorus.runs.state_updates import checked_update, update_nodes
from chorus.runs.state_views import checkpoint_ref, empty_state, state_view
from chorus.runs.threads_repository import LockedThread, ThreadRepository

Supersteps = list[list[StateUpdate]]


def _root(thread_id: str, checkpoint_id: str | None = None) -> RunnableConfig:
    configurable: dict[str, Any] = {"thread_id": thread_id, "checkpoint_ns": ""}
    if checkpoint_id is not None:
        configurable["checkpoint_id"] = checkpoint_id
    return {"configurable": configurable}


class ThreadService:
    def __init__(self, *, engine: RunEngine, threads: ThreadRepository) -> None:
        self.engine = engine
        self.threads = threads

    # -- creating and copying --------------------------------------------------------------------

    async def create(
        self, tenant_id: str, body: ThreadCreate, *, environment: Environment = DEFAULT_ENVIRONMENT
    ) -> dict[str, Any]:
        metadata = {**body.metadata, **({"graph_id": body.graph_id} if body.graph_id else {})}
        ttl = body.ttl.ttl if body.ttl else None
        if body.thread_id:
            self.engine.forget_thread(body.thread_id)
        if not body.supersteps:
            return await self.threads.create(
                tenant_id, thread_id=body.thread_id, metadata=metadata, if_exists=body.if_exists, ttl_minutes=ttl
            )
        # Everything is checked before the thread exists; a thread that exists is not updated again.
        stored = await self._assistant_named(tenant_id, metadata, for_what="supersteps")
        graph = await self.engine.graph_for(tenant_id, stored.config_id, stored.version)
        steps: Supersteps = [
            [
                StateUpdate(*checked_update(graph, u.values, u.as_node, path=f"$.supersteps[{i}].updates[{j}]"))
                for j, u in enumerate(step.updates)
            ]
            for i, step in enumerate(body.supersteps)
        ]
        row = await self.threads.insert(tenant_id, thread_id=body.thread_id, metadata=metadata, ttl_minutes=ttl)
        if row is None:
            assert body.thread_id is not None  # a generated id is new
            if body.if_exists == "do_nothing":
                return await self.threads.get(tenant_id, body.thread_id)
            raise AlreadyExists(f"thread '{body.thread_id}' already exists; pass if_exists='do_nothing' to reuse it")
        thread_id = str(row["thread_id"])
        try:
            async with self.threads.idle(tenant_id, thread_id, doing="apply its supersteps") as locked:
                serving = await self.engine.pins.serving(tenant_id, stored, thread_id, environment)
                graph = await self.engine.graph_for(tenant_id, stored.config_id, serving)
                await locked.pin(stored.config_id, serving)
                await self._apply(graph, locked, _root(thread_id), steps)
        except BaseException:
            with contextlib.suppress(ChorusError):  # a created thread whose supersteps failed is not kept
                await self.engine.delete_thread(tenant_id, thread_id)
            raise
        return await self.threads.get(tenant_id, thread_id)

    async def copy(self, tenant_id: str, thread_id: str) -> dict[str, Any]:
        thread_id = parse_uuid(thread_id, "thread")
        if self.engine.checkpointer is not None:
            await self.engine.checkpointer.aflush_thread(thread_id)
        return await self.threads.copy(tenant_id, thread_id)

    # -- reading state ---------------------------------------------------------------------------

    async def state(
        self, tenant_id: str, thread_id: str, *, checkpoint_id: str | None = None, select: list[str] | None = None
    ) -> dict[str, Any]:
        """The thread's state, now or at one of its checkpoints (404 for a checkpoint of any other thread,
        in the same words as for one that does not exist)."""
        thread = await self.threads.get(tenant_id, thread_id)
        thread_id = str(thread["thread_id"])
        if checkpoint_id is not None:
            await self._require_checkpoint(thread_id, checkpoint_id)
        graph = await self._pinned_graph(tenant_id, thread)
        if graph is None:
            return empty_state(thread_id, select)
        return state_view(await graph.aget_state(_root(thread_id, checkpoint_id)), select)

    async def history(self, tenant_id: str, thread_id: str, body: HistoryRequest) -> list[dict[str, Any]]:
        thread = await self.threads.get(tenant_id, thread_id)
        thread_id = str(thread["thread_id"])
        graph = await self._pinned_graph(tenant_id, thread)
        if graph is None:
            return []
        at = body.checkpoint.checkpoint_id if body.checkpoint else None
        before: Any = body.before
        if isinstance(before, str):
            before = _root(thread_id, before)
        elif isinstance(before, dict):
            fields = before.get("configurable", before)
            checkpoint_id = fields.get("checkpoint_id") if isinstance(fields, dict) else None
            if checkpoint_id is not None and not isinstance(checkpoint_id, str):
                raise InvalidInput(
                    "before.checkpoint_id must be a string (a checkpoint id from the thread's history)",
                    errors=[{"path": "$.before.checkpoint_id", "message": "expected a string"}],
                )
            before = _root(thread_id, checkpoint_id)
        return [
            state_view(s, body.select)
            async for s in graph.aget_state_history(
                _root(thread_id, at), filter=body.metadata, before=before, limit=body.limit
            )
        ]

    # -- updating state --------------------------------------------------------------------------

    async def update_state(
        self,
        tenant_id: str,
        thread_id: str,
        body: ThreadStateUpdate,
        *,
        environment: Environment = DEFAULT_ENVIRONMENT,
    ) -> dict[str, Any]:
        """Apply `values` as if node `as_node` had just run (from the latest checkpoint, or from
        `checkpoint_id`, which forks the thread); the new checkpoint."""
        async with self.threads.idle(tenant_id, thread_id, doing="update its state") as locked:
            graph = await self._graph_to_update(tenant_id, locked, environment)
            update = checked_update(graph, body.values, body.as_node)
            checkpoint_id = body.from_checkpoint
            if checkpoint_id is not None:
                await self._require_checkpoint(locked.thread_id, checkpoint_id)
            done = await self._apply(graph, locked, _root(locked.thread_id, checkpoint_id), [[StateUpdate(*update)]])
        ref = checkpoint_ref(done) or {}
        return {"checkpoint": {**ref, "checkpoint_map": {}}}

    async def _apply(
        self, graph: CompiledBot, locked: LockedThread, config: RunnableConfig, steps: Supersteps
    ) -> RunnableConfig:
        try:
            done = await graph.abulk_update_state(config, steps)
        except InvalidUpdateError as exc:
            reason = str(exc).splitlines()[0]
            hint = f"; send as_node, one of {update_nodes(graph)}" if "as_node" in reason else ""
            raise InvalidInput(f"the state update cannot be applied: {reason}{hint}") from None
        except ValueError as exc:  # a reducer refused it, e.g. removing a message id the state does not hold
            reason = (str(exc).splitlines() or [type(exc).__name__])[0][:200]
            raise InvalidInput(
                f"the state update cannot be applied: {reason}", errors=[{"path": "$.values", "message": reason}]
            ) from None
        latest = await graph.aget_state(_root(locked.thread_id))
        await locked.record_state(jsonable(latest.values))
        return done

    # -- which graph -----------------------------------------------------------------------------

    async def _pinned_graph(self, tenant_id: str, thread: dict[str, Any]) -> CompiledBot | None:
        if thread["assistant_id"] is None:
            return None
        return await self.engine.graph_for(tenant_id, str(thread["assistant_id"]), Serving.of(thread))

    async def _graph_to_update(self, tenant_id: str, locked: LockedThread, environment: Environment) -> CompiledBot:
        """The thread's graph; a thread without one is pinned, as its first run would pin it, to the assistant
        its metadata names (`assistant_id`, or `graph_id`: the tenant's default chatbot)."""
        graph = await self._pinned_graph(tenant_id, locked.row)
        if graph is not None:
            if locked.row["environment"] != environment:
                raise Forbidden(
                    f"thread '{locked.thread_id}' is a {locked.row['environment']} conversation; update it with a "
                    f"{locked.row['environment']} key"
                )
            return graph
        stored = await self._assistant_named(tenant_id, locked.row["metadata"], for_what="a state update")
        serving = await self.engine.pins.serving(tenant_id, stored, locked.thread_id, environment)
        await locked.pin(stored.config_id, serving)
        self.engine.forget_thread(locked.thread_id)
        return await self.engine.graph_for(tenant_id, stored.config_id, serving)

    async def _assistant_named(self, tenant_id: str, metadata: dict[str, Any], *, for_what: str) -> StoredConfig:
        named = metadata.get("assistant_id") or metadata.get("graph_id")
        if not isinstance(named, str) or not named:
            raise InvalidInput(
                f"{for_what} needs the thread's graph, and this thread has none yet: run it once, or create it "
                "with graph_id 'chatbot' (the tenant's default chatbot) or metadata.assistant_id"
            )
        try:
            assistant_id = await resolve_graph_id(self.engine.configs, tenant_id, named)
        except InvalidInput as exc:
            raise InvalidInput(f"the thread's metadata names no usable graph: {exc.detail}") from None
        stored = await self.engine.configs.get(tenant_id, assistant_id)
        if stored.product_type != "chatbot":
            raise InvalidInput(f"assistant '{stored.config_id}' is a {stored.product_type}; only chatbots have state")
        return stored

    async def _require_checkpoint(self, thread_id: str, checkpoint_id: str) -> None:
        if self.engine.checkpointer is not None:
            await self.engine.checkpointer.aflush_thread(thread_id)  # one just written may be held here
        if not await self.threads.has_checkpoint(thread_id, checkpoint_id):
            raise NotFound(
                f"checkpoint '{checkpoint_id[:64]}' is not a checkpoint of thread '{thread_id}'; take one from "
                f"its history (POST /threads/{thread_id}/history)"
            )
