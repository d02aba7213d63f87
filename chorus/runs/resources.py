"""What the Agent Server API answers with: assistants, threads, their state, runs and crons, with the field
names, types and nullability of the LangGraph Agent Server (`langgraph_sdk.schema`) and exactly the fields
Chorus sends. Times are ISO 8601 strings on the wire. Open content (metadata, state values, bot configs,
run payloads) stays open: any JSON object.

A field with a default is one Chorus sends only sometimes (e.g. `Thread.ttl`, only with `?include=ttl`);
routes that validate against these models leave unset fields out (`response_model_exclude_unset`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from chorus.runs.statuses import RunStatus, ThreadStatus

Json = dict[str, Any]
MultitaskStrategy = Literal["reject", "interrupt", "rollback", "enqueue"]


# -- assistants ----------------------------------------------------------------------------------


class Assistant(BaseModel):
    """A bot config as an assistant; its `version` is the config version."""

    assistant_id: str
    graph_id: Literal["chatbot", "voicebot"] = Field(description="the bot's kind (config_metadata.product_type)")
    config: Json = Field(description="always empty: an assistant's settings live in its bot config (`context`)")
    context: Json = Field(description="the bot config")
    metadata: Json
    version: int
    name: str
    description: str | None
    created_at: datetime
    updated_at: datetime


class GraphNode(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str | int


class GraphEdge(BaseModel):
    model_config = ConfigDict(extra="allow")
    source: str
    target: str


class AssistantGraph(BaseModel):
    """The compiled graph, drawable (LangGraph's `Graph.to_json()`)."""

    nodes: list[GraphNode]
    edges: list[GraphEdge]


# -- threads -------------------------------------------------------------------------------------


class Interrupt(BaseModel):
    id: str | None
    value: Any


class ThreadTTLInfo(BaseModel):
    strategy: Literal["delete"]
    ttl_minutes: float
    expires_at: datetime | None


class Thread(BaseModel):
    thread_id: str
    created_at: datetime
    updated_at: datetime
    state_updated_at: datetime
    metadata: Json
    status: ThreadStatus
    values: Json = Field(description="the thread's latest state values (e.g. `messages`); {} before its first run")
    interrupts: dict[str, list[Interrupt]]
    config: Json
    assistant_id: str | None = Field(description="the assistant the thread is pinned to; null before its first run")
    config_version: int | None = Field(description="the assistant version the thread is pinned to")
    environment: Literal["staging", "production"] = Field(
        description="the environment the thread's conversation runs in (the key of its first run's)"
    )
    expires_at: datetime | None = Field(description="when the thread is deleted unless it is used again")
    ttl: ThreadTTLInfo | None = Field(
        default=None, description="only with `?include=ttl`: the thread's ttl (its own, else the server's), or null"
    )
    extracted: Json | None = Field(default=None, description="only from a search with `extract`: alias -> value")


class ThreadPruneResult(BaseModel):
    pruned_count: int
    busy_thread_ids: list[str] = Field(description="threads kept because a run is queued or running on them")


class Checkpoint(BaseModel):
    thread_id: str
    checkpoint_ns: str
    checkpoint_id: str | None
    checkpoint_map: Json | None = Field(default=None, description="sent only by a state update ({})")


class ThreadTask(BaseModel):
    """A pending step of the state: where a thread's interrupts are found after a reload."""

    id: str
    name: str
    path: list[Any]
    error: str | None
    interrupts: list[Interrupt]
    checkpoint: Checkpoint | None
    state: None = Field(description="always null: Chorus bots have no subgraphs")
    result: Any


class ThreadState(BaseModel):
    """A thread's state at a checkpoint. With `select`, only the selected fields are sent."""

    values: Json
    next: list[str]
    checkpoint: Checkpoint
    metadata: Json
    created_at: str | None
    parent_checkpoint: Checkpoint | None
    tasks: list[ThreadTask]
    interrupts: list[Interrupt]


class ThreadStateUpdated(BaseModel):
    """The checkpoint a state update wrote."""

    checkpoint: Checkpoint


# -- runs ----------------------------------------------------------------------------------------


class Run(BaseModel):
    model_config = ConfigDict(validate_by_name=True)  # for mypy: `__init__` takes `run_kwargs`, not `kwargs`
    run_id: str
    thread_id: str
    assistant_id: str
    config_version: int = Field(description="the assistant version the run uses")
    created_at: datetime
    updated_at: datetime
    status: RunStatus
    metadata: Json
    multitask_strategy: MultitaskStrategy
    # Sent as `kwargs`; mypy's pydantic plugin cannot take a field of that name (it is `__init__`'s own).
    run_kwargs: Json = Field(alias="kwargs", description="the run's input, command, config, stream modes …")
    error: str | None


class RunRefused(BaseModel):
    """A run of a batch its thread refused (the error body its own request would have answered)."""

    model_config = ConfigDict(extra="allow")
    error: str
    detail: str


class RunOutput(BaseModel):
    """The thread's state values once the run ended (e.g. `messages`), or `{"__error__": {"error",
    "message"}}` when it failed. Open: any JSON object."""

    model_config = ConfigDict(extra="allow")


# -- crons ---------------------------------------------------------------------------------------


class Cron(BaseModel):
    cron_id: str
    assistant_id: str
    thread_id: str | None = Field(description="null: each run gets a new thread")
    schedule: str
    timezone: str
    payload: Json = Field(description="the body of the runs it creates")
    metadata: Json
    on_run_completed: Literal["delete", "keep"]
    enabled: bool
    end_time: datetime | None
    next_run_date: datetime | None
    created_at: datetime
    updated_at: datetime
    user_id: None = Field(description="always null: Chorus crons belong to the tenant")
