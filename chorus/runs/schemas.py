"""Request bodies of the threads and runs API (the subset of the LangGraph Agent Server Chorus serves)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from chorus.runs.stream_modes import STREAM_MODES

MultitaskStrategy = Literal["reject", "interrupt", "rollback", "enqueue"]


class InputMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: str | None = None
    type: str | None = None
    content: str | list[Any]
    id: str | None = None


class RunInput(BaseModel):
    model_config = ConfigDict(extra="forbid")
    messages: list[InputMessage] = Field(default_factory=list, max_length=50)


RUN_CONFIG_KEYS = frozenset({"configurable", "recursion_limit", "tags"})
# What Chorus puts in every run's `configurable` (a client's value would misroute the run's checkpoints).
RESERVED_CONFIGURABLE = frozenset(
    {"thread_id", "tenant_id", "run_id", "assistant_id", "checkpoint_id", "checkpoint_ns", "checkpoint_map"}
)


class RunCreate(BaseModel):
    # The SDK sends many optional fields; unknown ones are ignored rather than rejected.
    model_config = ConfigDict(extra="ignore")
    assistant_id: str
    input: RunInput | None = None
    command: dict[str, Any] | None = None
    config: dict[str, Any] | None = None
    context: dict[str, Any] | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    stream_mode: list[str] | str = "values"
    multitask_strategy: MultitaskStrategy = "enqueue"
    if_not_exists: Literal["reject", "create"] = "reject"
    on_disconnect: Literal["cancel", "continue"] = "continue"
    on_completion: Literal["delete", "keep"] = "delete"
    durability: Literal["sync", "async", "exit"] | None = None
    stream_subgraphs: bool = False
    after_seconds: float = Field(default=0, ge=0, le=86_400)  # start no sooner than this (at most a day)
    stream_resumable: bool = False
    # Run from this checkpoint of the thread instead of its latest: an edit or a regenerate forks the thread.
    checkpoint: dict[str, Any] | None = None
    checkpoint_id: str | None = None

    @property
    def fork_from(self) -> str | None:
        """The checkpoint id the run starts from (`checkpoint_id`, or `checkpoint.checkpoint_id`), if any."""
        if self.checkpoint_id:
            return self.checkpoint_id
        value = (self.checkpoint or {}).get("checkpoint_id")
        return value if isinstance(value, str) and value else None

    interrupt_before: Any = None
    interrupt_after: Any = None

    @field_validator("stream_mode")
    @classmethod
    def _modes(cls, value: list[str] | str) -> list[str]:
        modes = [value] if isinstance(value, str) else list(value)
        bad = [m for m in modes if m not in STREAM_MODES]
        if bad:
            raise ValueError(f"unknown stream_mode {bad}; the stream modes are {list(STREAM_MODES)}")
        return list(dict.fromkeys(modes)) or ["values"]

    @field_validator("config")
    @classmethod
    def _config(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if not value:
            return None
        unknown = sorted(set(value) - RUN_CONFIG_KEYS)
        if unknown:
            raise ValueError(f"config keys {unknown} are not supported; a run's config takes {sorted(RUN_CONFIG_KEYS)}")
        limit = value.get("recursion_limit")
        if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= 200):
            raise ValueError("config.recursion_limit must be an integer from 1 to 200")
        configurable = value.get("configurable") or {}
        if not isinstance(configurable, dict):
            raise ValueError("config.configurable must be an object")
        reserved = sorted(set(configurable) & RESERVED_CONFIGURABLE)
        if reserved:
            raise ValueError(f"config.configurable {reserved} are set by Chorus for every run; leave them out")
        tags = value.get("tags")
        if tags is not None and (not isinstance(tags, list) or not all(isinstance(t, str) for t in tags)):
            raise ValueError("config.tags must be a list of strings")
        return value

    @field_validator("checkpoint")
    @classmethod
    def _checkpoint(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value and value.get("checkpoint_ns"):
            raise ValueError("checkpoint_ns must be '' (the root graph): Chorus bots have no subgraphs")
        if value and value.get("checkpoint_id") is not None and not isinstance(value["checkpoint_id"], str):
            raise ValueError("checkpoint.checkpoint_id must be a string (an id from the thread's history)")
        return value

    @field_validator("command")
    @classmethod
    def _command(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is None:
            return None
        unknown = sorted(set(value) - {"resume", "goto", "update"})
        if unknown or not value:
            raise ValueError(f"command takes 'resume', 'goto' and 'update' (got {sorted(value)})")
        goto = value.get("goto")
        if goto is not None and not (
            isinstance(goto, str) or (isinstance(goto, list) and all(isinstance(g, str) for g in goto))
        ):
            raise ValueError("command.goto must be a node name (or a list of them), e.g. '__end__'")
        if value.get("update") is not None and not isinstance(value["update"], dict):
            raise ValueError("command.update must be an object of state keys")
        return value

    @field_validator("interrupt_before", "interrupt_after")
    @classmethod
    def _interrupts(cls, value: Any) -> Any:
        if value is None or value == "*":
            return value
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValueError("must be '*' or a list of node names (e.g. ['tools'])")
        return value or None


class BatchRunCreate(RunCreate):
    """One run of `POST /runs/batch`: on `thread_id`, or on a new thread when it is absent."""

    thread_id: str | None = None


class RunCancelMany(BaseModel):
    model_config = ConfigDict(extra="forbid")
    thread_id: str | None = None
    run_ids: list[str] | None = Field(default=None, min_length=1, max_length=1000)
    status: Literal["pending", "running", "all"] | None = None

    @model_validator(mode="after")
    def _something(self) -> RunCancelMany:
        if self.thread_id is None and self.run_ids is None and self.status is None:
            raise ValueError("say which runs to cancel: `run_ids` (and `thread_id`), a `thread_id`, or a `status`")
        return self


class ThreadCreate(BaseModel):
    model_config = ConfigDict(extra="ignore")
    thread_id: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    if_exists: Literal["raise", "do_nothing"] = "raise"


class ThreadSearch(BaseModel):
    model_config = ConfigDict(extra="ignore")
    metadata: dict[str, Any] | None = None
    values: dict[str, Any] | None = None
    status: Literal["idle", "busy", "interrupted", "error"] | None = None
    limit: int = Field(default=10, ge=1, le=1000)
    offset: int = Field(default=0, ge=0)


class ThreadPatch(BaseModel):
    model_config = ConfigDict(extra="ignore")
    metadata: dict[str, Any] = Field(default_factory=dict)


class HistoryRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    limit: int = Field(default=10, ge=1, le=1000)
    before: dict[str, Any] | str | None = None
    metadata: dict[str, Any] | None = None
    checkpoint: dict[str, Any] | None = None


class ThreadPrune(BaseModel):
    model_config = ConfigDict(extra="forbid")
    thread_ids: list[str] = Field(min_length=1, max_length=1000)
    strategy: Literal["delete", "keep_latest"] = "delete"
