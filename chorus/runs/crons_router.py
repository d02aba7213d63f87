"""Crons (LangGraph Agent Server API): runs created on a schedule, on a thread or each on a new one."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator

from chorus.agents.api_deps import DeveloperDep, PrincipalDep
from chorus.agents.errors import InvalidInput
from chorus.runs.admission import check_webhook, resolve_graph_id
from chorus.runs.cron_schedule import check_schedule
from chorus.runs.crons_repository import CronRepository, cron_view
from chorus.runs.deps import EngineDep, ThreadsDep
from chorus.runs.resources import Cron
from chorus.runs.schemas import RunCreate, webhook_url

router = APIRouter(tags=["crons"])
# What a cron's runs are made of: the run body a cron keeps (the rest of CronCreate is the schedule's).
_RUN_FIELDS = (
    "input",
    "config",
    "context",
    "metadata",
    "interrupt_before",
    "interrupt_after",
    "multitask_strategy",
    "stream_mode",
    "stream_subgraphs",
    "stream_resumable",
    "durability",
    "webhook",
)


class CronCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    schedule: str = Field(max_length=200)
    assistant_id: str
    timezone: str = "UTC"
    end_time: datetime | None = None
    enabled: bool = True
    on_run_completed: Literal["delete", "keep"] = "delete"
    input: dict[str, Any] | None = None
    config: dict[str, Any] | None = None
    context: dict[str, Any] | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    interrupt_before: Any = None
    interrupt_after: Any = None
    multitask_strategy: Literal["reject", "interrupt", "rollback", "enqueue"] = "enqueue"
    stream_mode: Any = None
    stream_subgraphs: bool | None = None
    stream_resumable: bool | None = None
    durability: Literal["sync", "async", "exit"] | None = None
    webhook: str | None = None
    checkpoint_during: bool | None = None

    _webhook = field_validator("webhook")(classmethod(lambda cls, value: webhook_url(value)))


class CronUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    schedule: str | None = Field(default=None, max_length=200)
    timezone: str | None = None
    end_time: datetime | None = None
    enabled: bool | None = None
    on_run_completed: Literal["delete", "keep"] | None = None
    input: dict[str, Any] | None = None
    config: dict[str, Any] | None = None
    context: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    interrupt_before: Any = None
    interrupt_after: Any = None
    stream_mode: Any = None
    stream_subgraphs: bool | None = None
    stream_resumable: bool | None = None
    durability: Literal["sync", "async", "exit"] | None = None
    webhook: str | None = None

    _webhook = field_validator("webhook")(classmethod(lambda cls, value: webhook_url(value)))


class CronSearch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    assistant_id: str | None = None
    thread_id: str | None = None
    enabled: bool | None = None
    metadata: dict[str, Any] | None = None
    limit: int = Field(default=10, ge=1, le=1000)
    offset: int = Field(default=0, ge=0)
    sort_by: Literal[
        "cron_id", "assistant_id", "thread_id", "next_run_date", "end_time", "created_at", "updated_at"
    ] = "created_at"
    sort_order: Literal["asc", "desc"] = "desc"
    select: list[str] | None = None


class CronCount(BaseModel):
    model_config = ConfigDict(extra="forbid")
    assistant_id: str | None = None
    thread_id: str | None = None
    metadata: dict[str, Any] | None = None


def _crons(request: Request) -> CronRepository:
    repo: CronRepository = request.app.state.crons
    return repo


CronsDep = Annotated[CronRepository, Depends(_crons)]


def _run_payload(body: BaseModel) -> dict[str, Any]:
    return {f: getattr(body, f) for f in _RUN_FIELDS if getattr(body, f, None) is not None}


def _check_payload(payload: dict[str, Any], assistant_id: str) -> None:
    """The run body a cron keeps, checked now as a run would be (a bad input fails here, not at 3 a.m.)."""
    RunCreate.model_validate({**payload, "assistant_id": assistant_id})
    if not (payload.get("input") or {}).get("messages"):
        raise InvalidInput(
            "a cron needs input.messages: what its runs send, e.g. {'messages': [{'role': 'user', 'content': "
            "'Send the daily summary'}]}",
            errors=[{"path": "$.input.messages", "message": "required"}],
        )


async def _create(
    body: CronCreate, tenant_id: str, thread_id: str | None, crons: CronRepository, engine: Any
) -> dict[str, Any]:
    check_schedule(body.schedule, body.timezone)
    if body.end_time is not None and body.end_time.tzinfo is None:
        raise InvalidInput("end_time needs a time zone offset, e.g. 2026-12-31T23:59:00Z")
    assistant_id = await resolve_graph_id(engine.configs, tenant_id, body.assistant_id)
    stored = await engine.configs.get(tenant_id, assistant_id)
    if stored.product_type != "chatbot":
        raise InvalidInput(f"assistant '{stored.config_id}' is a {stored.product_type}; only chatbots take runs")
    payload = _run_payload(body)
    _check_payload(payload, assistant_id)
    await check_webhook(body.webhook)
    cron = await crons.create(
        tenant_id,
        assistant_id=stored.config_id,
        thread_id=thread_id,
        schedule_expr=body.schedule,
        timezone=body.timezone,
        payload=payload,
        metadata=body.metadata,
        on_run_completed=body.on_run_completed,
        enabled=body.enabled,
        end_time=body.end_time.astimezone(UTC) if body.end_time else None,
    )
    return cron_view(cron)


@router.post(
    "/threads/{thread_id}/runs/crons", summary="Create a cron whose runs go to this thread", response_model=Cron
)
async def create_for_thread(
    thread_id: str, body: CronCreate, principal: DeveloperDep, crons: CronsDep, engine: EngineDep, threads: ThreadsDep
) -> dict[str, Any]:
    thread = await threads.get(principal.tenant_id, thread_id)
    return await _create(body, principal.tenant_id, str(thread["thread_id"]), crons, engine)


@router.post("/runs/crons", summary="Create a cron whose runs each get a new thread", response_model=Cron)
async def create(body: CronCreate, principal: DeveloperDep, crons: CronsDep, engine: EngineDep) -> dict[str, Any]:
    return await _create(body, principal.tenant_id, None, crons, engine)


@router.post(
    "/runs/crons/search",
    summary="Search crons",
    responses={200: {"model": list[Cron], "description": "the crons (with `select`, only those fields)"}},
)
async def search(body: CronSearch, principal: PrincipalDep, crons: CronsDep) -> list[dict[str, Any]]:
    rows = await crons.search(
        principal.tenant_id,
        assistant_id=body.assistant_id,
        thread_id=body.thread_id,
        enabled=body.enabled,
        metadata=body.metadata,
        sort_by=body.sort_by,
        sort_order=body.sort_order,
        limit=body.limit,
        offset=body.offset,
    )
    views = [cron_view(r) for r in rows]
    if body.select:
        unknown = sorted(set(body.select) - set(views[0] if views else _FIELDS))
        if unknown:
            raise InvalidInput(f"select names unknown fields {unknown}; a cron has {sorted(_FIELDS)}")
        views = [{k: v for k, v in view.items() if k in body.select} for view in views]
    return views


_FIELDS = [
    "cron_id",
    "assistant_id",
    "thread_id",
    "schedule",
    "timezone",
    "payload",
    "metadata",
    "on_run_completed",
    "enabled",
    "end_time",
    "next_run_date",
    "created_at",
    "updated_at",
    "user_id",
]


@router.post("/runs/crons/count", summary="Count crons", responses={200: {"description": "how many match"}})
async def count(body: CronCount, principal: PrincipalDep, crons: CronsDep) -> int:
    return await crons.count(
        principal.tenant_id, assistant_id=body.assistant_id, thread_id=body.thread_id, metadata=body.metadata
    )


@router.patch(
    "/runs/crons/{cron_id}", summary="Update a cron (its schedule, its runs' body, enabled)", response_model=Cron
)
async def update(cron_id: str, body: CronUpdate, principal: DeveloperDep, crons: CronsDep) -> dict[str, Any]:
    cron = await crons.get(principal.tenant_id, cron_id)
    changes: dict[str, Any] = {}
    for column in ("schedule", "timezone", "enabled", "on_run_completed", "metadata"):
        if (value := getattr(body, column)) is not None:
            changes[column] = value
    if "end_time" in body.model_fields_set:
        changes["end_time"] = body.end_time.astimezone(UTC) if body.end_time else None
    check_schedule(changes.get("schedule", cron["schedule"]), changes.get("timezone", cron["timezone"]))
    run_changes = _run_payload(body)
    if run_changes:
        _check_payload({**cron["payload"], **run_changes}, cron["assistant_id"])
        await check_webhook(body.webhook)
        changes["payload"] = run_changes
    return cron_view(await crons.update(principal.tenant_id, cron_id, changes))


@router.delete("/runs/crons/{cron_id}", status_code=204, summary="Delete a cron (its runs stay)")
async def delete(cron_id: str, principal: DeveloperDep, crons: CronsDep) -> Response:
    await crons.delete(principal.tenant_id, cron_id)
    return Response(status_code=204)
