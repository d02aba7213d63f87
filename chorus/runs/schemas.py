"""Request bodies of the threads and runs API (the subset of the LangGraph Agent Server Chorus serves)."""

from __future__ import annotations

import uuid
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from chorus.agents.destinations import parse_url
from chorus.agents.errors import DestinationRefused
from chorus.runs.state_views import check_state_select
from chorus.runs.stream_modes import STREAM_MODES
from chorus.runs.thread_extract import ExtractPath, parse_extract

MultitaskStrategy = Literal["reject", "interrupt", "rollback", "enqueue"]
_MAX_URL_CHARS = 2048


def webhook_url(value: str | None) -> str | None:
    """A webhook URL as far as it can be checked without the network (an absolute http(s) URL with a host
    and no credentials); None for none. Where its host points is checked when the run or cron is made."""
    if not value:
        return None
    if len(value) > _MAX_URL_CHARS:
        raise ValueError(f"webhook is longer than {_MAX_URL_CHARS} characters")
    try:
        parse_url(value, who="webhook")
    except DestinationRefused as exc:
        raise ValueError(exc.detail) from None
    return value


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
    # Every field the official SDKs send is known here; one that is not is a 422 naming it, never ignored.
    model_config = ConfigDict(extra="forbid")
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
    # POSTed the run when it ends (chorus/runs/webhook_sender.py); its host is checked when the run is made.
    webhook: str | None = None
    # Sent by the SDKs; what Chorus does not offer is refused when set (below), never ignored.
    feedback_keys: list[str] | None = None
    langsmith_tracer: dict[str, Any] | None = None
    strict_resume: bool | None = None
    checkpoint_during: bool | None = None  # deprecated by LangGraph: True is durability "async", False "exit"
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

    _webhook = field_validator("webhook")(classmethod(lambda cls, value: webhook_url(value)))

    @field_validator("feedback_keys", "langsmith_tracer")
    @classmethod
    def _unsupported(cls, value: Any, info: ValidationInfo) -> None:
        if value:
            what = {
                "feedback_keys": "LangSmith feedback keys are not supported",
                "langsmith_tracer": "LangSmith tracing is not supported",
            }[str(info.field_name)]
            raise ValueError(what)
        return None

    @field_validator("strict_resume")
    @classmethod
    def _strict_resume(cls, value: bool | None) -> None:
        if value:
            raise ValueError("strict_resume is not supported: a resume applies to the thread's pending step")
        return None

    @model_validator(mode="after")
    def _checkpoint_during(self) -> RunCreate:
        if self.checkpoint_during is not None and self.durability is None:
            self.durability = "async" if self.checkpoint_during else "exit"
        return self

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
        reserved = sorted((set(configurable) & RESERVED_CONFIGURABLE) | {k for k in configurable if k.startswith("__")})
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


# -- threads -------------------------------------------------------------------------------------
# Every field the official SDKs send is either served or refused with a 422 naming it (extra="forbid").

ThreadField = Literal[
    "thread_id",
    "created_at",
    "updated_at",
    "state_updated_at",
    "metadata",
    "config",
    "status",
    "values",
    "interrupts",
    "assistant_id",
    "config_version",
    "environment",
    "expires_at",
]
THREAD_FIELDS: frozenset[str] = frozenset(get_args(ThreadField))
_MAX_TTL_MINUTES = 10 * 365 * 24 * 60


class ThreadTTL(BaseModel):
    """`{"ttl": minutes, "strategy": "delete"}` (the SDKs turn a bare number into this)."""

    model_config = ConfigDict(extra="forbid")
    ttl: float = Field(gt=0, le=_MAX_TTL_MINUTES, description="minutes without activity before the thread goes")
    strategy: str = "delete"

    @model_validator(mode="before")
    @classmethod
    def _minutes(cls, value: Any) -> Any:
        return {"ttl": value} if isinstance(value, int | float) and not isinstance(value, bool) else value

    @field_validator("strategy")
    @classmethod
    def _delete_only(cls, value: str) -> str:
        if value != "delete":
            raise ValueError(
                f"strategy '{value[:32]}' is not supported: Chorus deletes an expired thread ('delete'); "
                "checkpoints store only new messages per turn, so 'keep_latest' is not needed"
            )
        return value


class SuperstepUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    values: dict[str, Any] | None = None
    command: dict[str, Any] | None = None
    as_node: str

    @field_validator("command")
    @classmethod
    def _no_command(cls, value: dict[str, Any] | None) -> None:
        if value:
            raise ValueError("command is not supported in supersteps: send `values` with `as_node`")
        return None


class Superstep(BaseModel):
    model_config = ConfigDict(extra="forbid")
    updates: list[SuperstepUpdate] = Field(min_length=1, max_length=50)


class ThreadCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    thread_id: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    if_exists: Literal["raise", "do_nothing"] = "raise"
    graph_id: str | None = Field(default=None, description="stored as metadata.graph_id, as the SDKs send it")
    ttl: ThreadTTL | None = None
    supersteps: list[Superstep] | None = Field(default=None, max_length=100)

    @field_validator("thread_id")
    @classmethod
    def _uuid(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return str(uuid.UUID(value))
        except ValueError:
            raise ValueError("thread_id must be a UUID (or left out: one is generated)") from None


class ThreadPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    metadata: dict[str, Any] = Field(default_factory=dict)
    ttl: ThreadTTL | None = None


class ThreadCount(BaseModel):
    model_config = ConfigDict(extra="forbid")
    metadata: dict[str, Any] | None = None
    values: dict[str, Any] | None = None
    status: Literal["idle", "busy", "interrupted", "error"] | None = None


class ThreadSearch(ThreadCount):
    ids: list[uuid.UUID] | None = Field(default=None, max_length=1000)
    limit: int = Field(default=10, ge=1, le=1000)
    offset: int = Field(default=0, ge=0)
    sort_by: Literal["thread_id", "status", "created_at", "updated_at", "state_updated_at"] = "updated_at"
    sort_order: Literal["asc", "desc"] = "desc"
    select: list[ThreadField] | None = Field(default=None, min_length=1)
    extract: dict[str, str] | None = Field(default=None, description="alias -> path, e.g. values.messages[-1]")

    @field_validator("extract")
    @classmethod
    def _extract(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        if value:
            parse_extract(value, reserved=THREAD_FIELDS)
        return value or None

    @property
    def extract_paths(self) -> list[ExtractPath]:
        return parse_extract(self.extract, reserved=THREAD_FIELDS) if self.extract else []


class CheckpointRef(BaseModel):
    """A checkpoint of the thread in the path (`thread_id`, if sent, is that thread's)."""

    model_config = ConfigDict(extra="forbid")
    thread_id: str | None = None
    checkpoint_ns: str = ""
    checkpoint_id: str | None = Field(default=None, max_length=128)
    checkpoint_map: dict[str, Any] | None = None

    @field_validator("checkpoint_ns")
    @classmethod
    def _root(cls, value: str) -> str:
        if value:
            raise ValueError("checkpoint_ns must be '' (the root graph): Chorus bots have no subgraphs")
        return value

    @field_validator("checkpoint_map")
    @classmethod
    def _no_map(cls, value: dict[str, Any] | None) -> None:
        if value:
            raise ValueError("checkpoint_map must be empty: Chorus bots have no subgraphs")
        return None


class ThreadStateUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    values: dict[str, Any] | None = None
    as_node: str | None = Field(default=None, max_length=128)
    checkpoint: CheckpointRef | None = None
    checkpoint_id: str | None = Field(default=None, max_length=128)

    @property
    def from_checkpoint(self) -> str | None:
        return self.checkpoint_id or (self.checkpoint.checkpoint_id if self.checkpoint else None)


class StateAtCheckpoint(BaseModel):
    model_config = ConfigDict(extra="forbid")
    checkpoint: CheckpointRef
    subgraphs: bool = False
    select: list[str] | None = Field(default=None, min_length=1, max_length=20)

    @field_validator("select")
    @classmethod
    def _select(cls, value: list[str] | None) -> list[str] | None:
        return check_state_select(value)


class HistoryRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    limit: int = Field(default=10, ge=1, le=1000)
    before: dict[str, Any] | str | None = None
    metadata: dict[str, Any] | None = None
    checkpoint: CheckpointRef | None = None
    select: list[str] | None = Field(default=None, min_length=1, max_length=20)

    @field_validator("select")
    @classmethod
    def _select(cls, value: list[str] | None) -> list[str] | None:
        return check_state_select(value)


class ThreadPrune(BaseModel):
    model_config = ConfigDict(extra="forbid")
    thread_ids: list[str] = Field(min_length=1, max_length=1000)
    strategy: Literal["delete", "keep_latest"] = "delete"
