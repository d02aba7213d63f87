"""Assistants (LangGraph Agent Server API): an assistant is a bot config, its versions are config versions."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from chorus.agents.api_deps import ConfigServiceDep, DeveloperDep, PrincipalDep
from chorus.agents.configs.approvals import assert_deployable
from chorus.agents.configs.history import Author
from chorus.agents.configs.repository import StoredConfig, id_taken
from chorus.agents.configs.versions import ConfigVersions
from chorus.agents.configs.versions_repository import VersionRepository
from chorus.agents.errors import InvalidInput, NotFound
from chorus.runs.deps import EngineDep
from chorus.runs.pagination import pagination_headers
from chorus.runs.resources import Assistant, AssistantGraph

router = APIRouter(prefix="/assistants", tags=["assistants"])


AssistantField = Literal[
    "assistant_id",
    "graph_id",
    "name",
    "description",
    "config",
    "context",
    "created_at",
    "updated_at",
    "metadata",
    "version",
]

# Every field the official SDKs send is served or refused with a 422 naming it (extra="forbid").


class AssistantCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    graph_id: Literal["chatbot", "voicebot"] | None = None
    assistant_id: str | None = None
    config: dict[str, Any] | None = Field(default=None, description="only config.configurable.bot_config is read")
    context: dict[str, Any] | None = Field(default=None, description="The bot config")
    metadata: dict[str, Any] = Field(default_factory=dict)
    if_exists: Literal["raise", "do_nothing"] = "raise"
    name: str | None = None
    description: str | None = None


class AssistantPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    graph_id: str | None = Field(default=None, description="must be the assistant's own (a bot keeps its kind)")
    config: dict[str, Any] | None = None
    context: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = Field(default=None, description="merged into the current metadata")
    name: str | None = None
    description: str | None = None


class AssistantCount(BaseModel):
    model_config = ConfigDict(extra="forbid")
    metadata: dict[str, Any] | None = None
    graph_id: str | None = None
    name: str | None = None


class AssistantSearch(AssistantCount):
    limit: int = Field(default=10, ge=1, le=1000)
    offset: int = Field(default=0, ge=0)
    sort_by: Literal["assistant_id", "graph_id", "name", "created_at", "updated_at"] = "created_at"
    sort_order: Literal["asc", "desc"] = "desc"
    select: list[AssistantField] | None = Field(default=None, min_length=1)


class VersionsSearch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    metadata: dict[str, Any] | None = None
    limit: int = Field(default=10, ge=1, le=1000)
    offset: int = Field(default=0, ge=0)


class SetLatest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: int = Field(ge=1)


def assistant_view(s: StoredConfig) -> dict[str, Any]:
    return {
        "assistant_id": s.config_id,
        "graph_id": s.product_type,
        "config": {},
        "context": s.config,
        "metadata": s.metadata,
        "version": s.version,
        "name": s.name,
        "description": s.description,
        "created_at": s.created_at,
        "updated_at": s.updated_at,
    }


def _bot_config(context: dict[str, Any] | None, config: dict[str, Any] | None) -> dict[str, Any] | None:
    """The bot config a request carries. An assistant's settings all live in its bot config, so `config`
    may hold nothing but `configurable.bot_config`: anything else would be ignored, and is refused."""
    config = config or {}
    configurable = config.get("configurable") or {}
    extra = [f"config.{k}" for k, v in config.items() if k != "configurable" and v not in (None, {}, [])]
    if isinstance(configurable, dict):
        extra += [f"config.configurable.{k}" for k in configurable if k != "bot_config"]
    else:
        extra.append("config.configurable")
    if extra:
        raise InvalidInput(
            f"{extra[0]} is not supported: a Chorus assistant's settings live in its bot config (`context`); "
            "`config` may only carry it as config.configurable.bot_config",
            errors=[{"path": f"$.{path}", "message": "not supported"} for path in extra],
        )
    if context:
        return context
    bot = configurable.get("bot_config")
    return bot if isinstance(bot, dict) else None


@router.post("", summary="Create an assistant from a bot config (in `context`)", response_model=Assistant)
async def create(body: AssistantCreate, principal: DeveloperDep, service: ConfigServiceDep) -> dict[str, Any]:
    if body.assistant_id:
        try:
            existing = await service.repo.get(principal.tenant_id, body.assistant_id)
        except NotFound:
            existing = None
        if existing is not None:
            if body.if_exists == "do_nothing":
                return assistant_view(existing)
            raise id_taken(body.assistant_id)
    raw = _bot_config(body.context, body.config)
    if raw is None:
        raise InvalidInput(
            "put the bot config in 'context' (or config.configurable.bot_config)",
            errors=[{"path": "$.context", "message": "required"}],
        )
    product = (raw.get("config_metadata") or {}).get("product_type") if isinstance(raw, dict) else None
    if body.graph_id and product and body.graph_id != product:
        raise InvalidInput(f"graph_id '{body.graph_id}' does not match config_metadata.product_type '{product}'")
    stored, _ = await service.create(
        principal.tenant_id,
        raw,
        metadata=body.metadata,
        name=body.name,
        description=body.description,
        config_id=body.assistant_id,
        author=Author.of(principal),
    )
    return assistant_view(stored)


@router.post(
    "/search",
    summary="Search assistants: filters, sort, select; X-Pagination-* headers",
    responses={200: {"model": list[Assistant], "description": "the assistants (with `select`, only those fields)"}},
)
async def search(
    body: AssistantSearch, principal: PrincipalDep, service: ConfigServiceDep, response: Response
) -> list[dict[str, Any]]:
    rows = await service.repo.search(
        principal.tenant_id,
        metadata=body.metadata,
        graph_id=body.graph_id,
        name=body.name,
        limit=body.limit + 1,  # one more: is there a next page?
        offset=body.offset,
        sort_by=body.sort_by,
        sort_order=body.sort_order,
    )
    more = len(rows) > body.limit
    rows = rows[: body.limit]
    pagination_headers(
        response, offset=body.offset, returned=len(rows), next_offset=body.offset + body.limit if more else None
    )
    views = [assistant_view(r) for r in rows]
    if body.select:
        views = [{k: v[k] for k in body.select} for v in views]
    return views


@router.post("/count", summary="Count assistants", responses={200: {"description": "how many match"}})
async def count(body: AssistantCount, principal: PrincipalDep, service: ConfigServiceDep) -> int:
    return await service.repo.count(principal.tenant_id, metadata=body.metadata, graph_id=body.graph_id, name=body.name)


@router.get("/{assistant_id}", summary="Get an assistant (its latest version)", response_model=Assistant)
async def get(assistant_id: str, principal: PrincipalDep, service: ConfigServiceDep) -> dict[str, Any]:
    return assistant_view(await service.repo.get(principal.tenant_id, assistant_id))


@router.patch(
    "/{assistant_id}", summary="Update an assistant: a new version; metadata is merged", response_model=Assistant
)
async def update(
    assistant_id: str, body: AssistantPatch, principal: DeveloperDep, service: ConfigServiceDep
) -> dict[str, Any]:
    raw = _bot_config(body.context, body.config)
    if body.graph_id is not None:
        current = await service.repo.get(principal.tenant_id, assistant_id)
        if body.graph_id != current.product_type:
            raise InvalidInput(
                f"graph_id '{body.graph_id[:32]}' is not this assistant's ('{current.product_type}'): an assistant "
                "keeps its kind; create another assistant for another graph",
                errors=[{"path": "$.graph_id", "message": f"must be '{current.product_type}'"}],
            )
    stored, _ = await service.update(
        principal.tenant_id,
        assistant_id,
        raw,
        metadata=body.metadata,
        name=body.name,
        description=body.description,
        author=Author.of(principal),
        reviewed=True,  # a medium or high risk change waits for approval: docs/api.md, "Changes and approval"
    )
    return assistant_view(stored)


@router.delete(
    "/{assistant_id}",
    status_code=204,
    summary="Delete an assistant; its threads stay usable with another assistant, or go with delete_threads=true",
)
async def delete(
    assistant_id: str,
    principal: DeveloperDep,
    engine: EngineDep,
    delete_threads: Annotated[
        bool, Query(description="also delete its threads with their runs and checkpoints (409 if one is busy)")
    ] = False,
) -> Response:
    await engine.delete_assistant(principal.tenant_id, assistant_id, delete_threads=delete_threads)
    return Response(status_code=204)


@router.post("/{assistant_id}/versions", summary="List an assistant's versions", response_model=list[Assistant])
async def versions(
    assistant_id: str, body: VersionsSearch, principal: PrincipalDep, service: ConfigServiceDep
) -> list[dict[str, Any]]:
    rows = await service.repo.versions(
        principal.tenant_id, assistant_id, limit=body.limit, offset=body.offset, metadata=body.metadata
    )
    return [assistant_view(r) for r in rows]


@router.post(
    "/{assistant_id}/latest",
    summary="Choose the version new threads use: a new version with its content, as a rollback (history shows it)",
    response_model=Assistant,
)
async def set_latest(
    assistant_id: str, body: SetLatest, principal: DeveloperDep, service: ConfigServiceDep
) -> dict[str, Any]:
    chosen = await service.repo.get(principal.tenant_id, assistant_id, body.version)
    current = await service.repo.get(principal.tenant_id, chosen.config_id)
    if current.version == body.version:
        return assistant_view(current)
    record = await VersionRepository(service.repo.db).get(principal.tenant_id, chosen.config_id, body.version)
    if record is not None:
        assert_deployable(record)  # a version waiting for approval, or rejected, never serves threads
    done = await ConfigVersions(service).rollback(
        principal.tenant_id,
        chosen.config_id,
        target=body.version,
        reason="chosen with POST /assistants/{assistant_id}/latest",
        author=Author.of(principal),
    )
    return assistant_view(done.config)


@router.get("/{assistant_id}/graph", summary="The compiled graph, as nodes and edges", response_model=AssistantGraph)
async def graph(
    assistant_id: str, principal: PrincipalDep, service: ConfigServiceDep, engine: EngineDep
) -> dict[str, Any]:
    stored = await service.repo.get(principal.tenant_id, assistant_id)
    if stored.product_type != "chatbot":
        raise InvalidInput("only chatbots compile to a chat graph")
    compiled = await engine.graph_for(principal.tenant_id, stored.config_id, stored.version)
    drawable: dict[str, Any] = compiled.get_graph().to_json()
    return drawable
