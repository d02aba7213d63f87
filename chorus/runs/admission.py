"""Admitting a run: its input checked, its thread pinned to a config version, its multitask strategy
applied. A thread is pinned to the config version of its first run (what its key's environment served then),
so a new version or a deploy never changes a conversation in flight; a thread whose assistant was deleted is
pinned again by its next run's assistant."""

from __future__ import annotations

import uuid
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from langchain_core.messages import AnyMessage, HumanMessage

from chorus.agents.configs.deployments_repository import DeploymentRepository
from chorus.agents.configs.environments import Serving, serving
from chorus.agents.configs.repository import ConfigRepository, StoredConfig
from chorus.agents.destinations import check_destination
from chorus.agents.errors import Conflict, DestinationRefused, Forbidden, InvalidInput, NotFound
from chorus.agents.tenancy.environments import DEFAULT_ENVIRONMENT, Environment
from chorus.runs.schemas import RunCreate
from chorus.runs.serialization import jsonable
from chorus.runs.threads_repository import ThreadRepository

_PIN_CACHE = 50_000


NO_INPUT = (
    "input.messages is required: send {'input': {'messages': [{'role': 'user', 'content': '...'}]}} "
    "(or a `checkpoint` of the thread to regenerate from, or a `command` to resume an interrupted thread)"
)


def input_messages(req: RunCreate) -> list[AnyMessage]:
    """The run's new messages; none for a regenerate, a `command`, or a thread resumed from a breakpoint
    (the engine checks that the thread is paused)."""
    if req.input is None or not req.input.messages:
        return []
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


def run_kwargs(req: RunCreate, messages: list[AnyMessage]) -> dict[str, Any]:
    """What the run row keeps: the input (with message ids, so a retried run adds the same messages)
    and the options a worker in any process needs to execute it."""
    return {
        "input": {"messages": [{"type": "human", "content": m.content, "id": m.id} for m in messages]},
        "stream_mode": req.stream_mode,
        "config": jsonable(req.config or {}),
        "context": jsonable(req.context) if req.context is not None else None,
        "durability": req.durability,
        "stream_subgraphs": req.stream_subgraphs,
        "stream_resumable": req.stream_resumable,
        "checkpoint_id": req.fork_from,
        "command": jsonable(req.command) if req.command is not None else None,
        "interrupt_before": req.interrupt_before,
        "interrupt_after": req.interrupt_after,
        "webhook": req.webhook,
    }


async def check_webhook(url: str | None, *, path: str = "$.webhook") -> None:
    """A run's (or cron's) webhook must point where Chorus may send requests (the SSRF guard); checked before
    anything of the request is stored. Checked again at each delivery: a host may resolve elsewhere later."""
    if not url:
        return
    try:
        await check_destination(url, who="webhook")
    except DestinationRefused as exc:
        raise InvalidInput(exc.detail, errors=[{"path": path, "message": exc.detail}]) from None


GRAPH_IDS = ("chatbot",)


async def resolve_graph_id(configs: ConfigRepository, tenant_id: str, assistant_id: str) -> str:
    """A graph id sent as the assistant id (LangGraph clients are often set up with one, e.g. `chatbot`):
    the tenant's default chatbot — its only one, or the one whose metadata says `"default": true`."""
    if is_uuid(assistant_id):
        return assistant_id
    if assistant_id not in GRAPH_IDS:
        raise InvalidInput(
            f"assistant_id '{assistant_id[:64]}' is neither an assistant's id nor a graph id; use the "
            f"assistant_id of one of your bots (POST /assistants/search), or the graph id {list(GRAPH_IDS)}",
            errors=[{"path": "$.assistant_id", "message": "expected a UUID or a graph id"}],
        )
    bots = await configs.search(tenant_id, metadata=None, graph_id=assistant_id, name=None, limit=51, offset=0)
    chosen = [b for b in bots if b.metadata.get("default") is True] or bots
    if len(chosen) == 1:
        return chosen[0].config_id
    if not bots:
        raise InvalidInput(f"this tenant has no {assistant_id} yet: create one (POST /assistants)")
    names = ", ".join(f"'{b.name}' ({b.config_id})" for b in bots[:10])
    raise InvalidInput(
        f"graph id '{assistant_id}' names several bots of this tenant: {names}; send one's assistant_id, or "
        'mark one as the default (metadata {"default": true})',
        errors=[{"path": "$.assistant_id", "message": "ambiguous graph id"}],
    )


def is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class Pin:
    """What a thread talks to: an assistant, at a version, in an environment with its overrides revision."""

    tenant_id: str
    assistant_id: str
    serving: Serving


def _pin_of(tenant_id: str, thread: dict[str, Any]) -> Pin:
    return Pin(tenant_id, str(thread["assistant_id"]), Serving.of(thread))


class Pins:
    """Which (assistant, config version, environment) each thread talks to; remembered, since a pin never
    changes. A new thread gets what its environment serves (environments.py): a deploy changes that for
    new threads at once, in every process, since it is read from the database when a thread is pinned."""

    def __init__(self, *, threads: ThreadRepository, configs: ConfigRepository) -> None:
        self.threads = threads
        self.configs = configs
        self.environments = DeploymentRepository(configs.db)
        self._pins: OrderedDict[str, Pin] = OrderedDict()

    def forget(self, thread_id: str) -> None:
        key = str(uuid.UUID(thread_id)) if is_uuid(thread_id) else thread_id
        self._pins.pop(key, None)

    def forget_assistant(self, assistant_id: str) -> None:
        """The assistant was deleted (here or in another process): its threads' pins are read again."""
        for thread_id in [t for t, pin in self._pins.items() if pin.assistant_id == assistant_id]:
            del self._pins[thread_id]

    def clear(self) -> None:
        self._pins.clear()

    def __len__(self) -> int:
        return len(self._pins)

    async def pinned(
        self, tenant_id: str, thread_id: str, req: RunCreate, *, environment: Environment | None = None
    ) -> Pin:
        """What the thread is pinned to, pinning it on its first run to what `environment` serves (None: the
        server's own callers, crons and the widget: production for a new thread, else the thread's own).
        A caller's key of another environment than the thread's is refused: a staging key never drives a
        production conversation (its version, overrides and secrets), nor the reverse."""
        asked = str(uuid.UUID(req.assistant_id)) if is_uuid(req.assistant_id) else req.assistant_id
        pin = self._pins.get(thread_id)
        # A remembered pin to another assistant is read again: that assistant may have been deleted since.
        if pin is None or pin.tenant_id != tenant_id or pin.assistant_id != asked:
            pin = await self._from_db(tenant_id, thread_id, req, environment or DEFAULT_ENVIRONMENT)
            self._pins[thread_id] = pin
            if len(self._pins) > _PIN_CACHE:
                self._pins.popitem(last=False)
        else:
            self._pins.move_to_end(thread_id)
        if environment is not None and pin.serving.environment != environment:
            raise Forbidden(
                f"thread '{thread_id}' is a {pin.serving.environment} conversation; continue it with a "
                f"{pin.serving.environment} key (yours is a {environment} key), or start a new thread"
            )
        if asked != pin.assistant_id:
            raise Conflict(
                f"thread '{thread_id}' belongs to assistant '{pin.assistant_id}'; "
                "start a new thread to talk to another assistant"
            )
        return pin

    async def serving(
        self, tenant_id: str, stored: StoredConfig, thread_id: str, environment: Environment = DEFAULT_ENVIRONMENT
    ) -> Serving:
        """What a new thread of `stored` (at its current version) gets in `environment`."""
        state = await self.environments.state(tenant_id, stored.config_id, environment)
        return serving(state, environment=environment, current=stored.version, thread_id=thread_id)

    async def _from_db(self, tenant_id: str, thread_id: str, req: RunCreate, environment: Environment) -> Pin:
        try:
            thread = await self.threads.get(tenant_id, thread_id)
        except NotFound:
            if req.if_not_exists != "create":
                raise
            thread = await self.threads.create(tenant_id, thread_id=thread_id, metadata={}, if_exists="do_nothing")
        pinned_to = str(thread["assistant_id"]) if thread["assistant_id"] is not None else None
        if pinned_to is not None and await self.configs.is_live(tenant_id, pinned_to):
            return _pin_of(tenant_id, thread)
        if pinned_to is not None and is_uuid(req.assistant_id) and str(uuid.UUID(req.assistant_id)) == pinned_to:
            raise NotFound(
                f"assistant '{pinned_to}' was deleted; its threads keep their state and go on with another assistant"
            )
        stored = await self.configs.get(tenant_id, req.assistant_id)
        if stored.product_type != "chatbot":
            raise InvalidInput(
                f"assistant '{stored.config_id}' is a {stored.product_type}; only chatbots take chat runs"
            )
        chosen = await self.serving(tenant_id, stored, thread_id, environment)
        if pinned_to is None:
            await self.threads.pin(thread_id, stored.config_id, chosen)
        else:  # its assistant was deleted: the conversation goes on with this one, from its checkpoints
            await self.threads.repin(thread_id, old=pinned_to, new=stored.config_id, serving=chosen)
            await self.configs.purge(pinned_to)  # once no thread needs its versions any more
        # Another request may have pinned it first: what is stored wins.
        return _pin_of(tenant_id, await self.threads.get(tenant_id, thread_id))
