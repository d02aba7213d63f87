"""The config editor bot's tools: `get_config`, `propose_change`, `apply_change` (configs/system/config-editor.json).

They work only inside `POST /api/v1/configs/chat`, on the config that conversation edits, with the caller's
key (chorus/agents/configs/config_chat.py); bound to any other bot or invoked over the tools API, they refuse.
`propose_change` stores nothing; `apply_change` stores the proposal the person confirmed, through PATCH's path.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from chorus.agents.configs.config_chat import apply_proposal, editor_session, propose, tool_catalogue
from chorus.agents.configs.config_edits import ProposeArguments, parse_edits
from chorus.agents.errors import InvalidInput
from chorus.agents.tools.registry import RegisteredTool, ToolContext, ToolRegistry


async def get_config(
    ctx: ToolContext,
    path: Annotated[
        str | None, Field(default=None, max_length=200, description="Only this dotted path, e.g. voice_settings")
    ] = None,
) -> dict[str, Any]:
    session = editor_session("get_config")
    current = await session.service.repo.find(session.principal.tenant_id, session.config_id)
    value: Any = current.config
    for part in (path or "").split(".") if path else []:
        value = value.get(part) if isinstance(value, dict) else None
    return {
        "config_id": current.key,
        "version": current.version,
        "product_type": current.product_type,
        "path": path,
        "value": value,
        "tool_catalogue": tool_catalogue(session.service, current.config),
    }


async def propose_change(ctx: ToolContext, edits: list[dict[str, Any]], summary: str | None = None) -> dict[str, Any]:
    session = editor_session("propose_change")
    current = await session.service.repo.find(session.principal.tenant_id, session.config_id)
    try:
        preview = await propose(session.service, session.principal, current, parse_edits(edits), summary)
    except InvalidInput as exc:
        session.rejected.append(exc)
        raise
    session.previews.append(preview)
    return preview.to_dict()


async def apply_change(
    ctx: ToolContext,
    proposal_id: Annotated[str, Field(min_length=1, max_length=64, description="The proposal_id propose_change gave")],
) -> dict[str, Any]:
    session = editor_session("apply_change")
    done = await apply_proposal(session, proposal_id)
    c = done.classification
    return {
        "status": done.status if done.changed else "unchanged",
        "config_id": done.config.key,
        "version": done.config.version,
        "current_version": done.config.latest_version,
        "risk_level": c.risk_level,
        "requires_approval": c.requires_approval,
        "approval_required_from": list(c.approval_required_from),
    }


def _propose_schema() -> dict[str, Any]:
    schema = ProposeArguments.model_json_schema()
    schema.pop("title", None)
    schema.pop("description", None)
    return schema


def register(registry: ToolRegistry) -> None:
    registry.tool(
        "get_config",
        "Read the config being edited (or one dotted path of it), its version and the tools that can be added.",
        side_effects=False,
    )(get_config)
    registry.register(
        RegisteredTool(
            "propose_change",
            "Preview a change to the config being edited: edits (set a path, scale a number, set the greeting, "
            "add or remove a tool) are classified, diffed and validated. Stores nothing.",
            _propose_schema(),
            propose_change,
            side_effects=False,
        )
    )
    registry.tool(
        "apply_change",
        "Store a proposed change as a new version, after the person confirmed it (approval rules apply).",
        side_effects=True,
    )(apply_change)
