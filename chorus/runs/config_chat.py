"""The config editor chat (`POST /api/v1/configs/chat`): one turn of a conversation with Chorus's own editor bot
(configs/system/config-editor.json) about one of the tenant's configs.

The editor is compiled once per process by the bot compiler like any bot and checkpointed in Postgres, but
it is no tenant's assistant: a conversation is a checkpoint thread whose id is derived from the tenant and
the conversation id, so it has no row in `threads` (no thread API, no widget, no listing reaches it) and
another tenant's conversation id names a thread of its own tenant that does not exist. The key that started a
conversation is recorded in its checkpoints; another key of the same tenant is told it does not exist.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.runnables import RunnableConfig

from chorus.agents.configs.config_chat import (
    EDITOR_SESSION,
    EditorSession,
    Preview,
    Proposal,
    is_confirmation,
)
from chorus.agents.configs.models import BotConfig
from chorus.agents.configs.repository import StoredConfig, parse_uuid
from chorus.agents.configs.service import ConfigService
from chorus.agents.errors import Conflict, InvalidInput, NotFound
from chorus.agents.tenancy.keys import Principal
from chorus.graphs.compiler import CompiledBot, GraphDeps, compile_bot

EDITOR_CONFIG = Path(__file__).resolve().parents[2] / "configs" / "system" / "config-editor.json"
# Conversation ids become checkpoint thread ids under this namespace, per tenant (see the module docstring).
_THREAD_NAMESPACE = uuid.UUID("5d0f3a7e-6f2b-4c51-9a53-3c8a1d6e2b90")
# The checkpoints' metadata naming the conversation's key and config (LangGraph keeps scalar values only).
_OWNER = "chorus_config_chat_"
CONFIRM_MESSAGE = "yes, apply it"


def conversation_thread(tenant_id: str, conversation_id: str) -> str:
    return str(uuid.uuid5(_THREAD_NAMESPACE, f"{tenant_id}/{conversation_id}"))


@dataclass(frozen=True)
class ChatTurn:
    """What one turn did, in the seed's answer shape (`to_dict`)."""

    conversation_id: str
    config_key: str
    config_id: str
    response: str
    preview: Preview | None
    applied: dict[str, Any] | None
    errors: list[dict[str, Any]]  # the tools' errors this turn, as the model was told them
    problems: list[dict[str, Any]]  # what was wrong with a rejected change, by JSON path
    pending: Proposal | None

    @property
    def status(self) -> str:
        if self.applied is not None:
            return str(self.applied["status"])
        if self.preview is not None:
            return "proposed"
        return "rejected" if self.errors else "answered"

    def to_dict(self) -> dict[str, Any]:
        p = self.preview
        c = p.classification if p else None
        return {
            "response": self.response,
            "conversation_id": self.conversation_id,
            "config_id": self.config_key,
            "assistant_id": self.config_id,
            "status": self.status,
            "detected_changes": p.detected_changes() if p else [],
            "requires_approval": c.requires_approval if c else bool(self.applied and self.applied["requires_approval"]),
            "risk_level": c.risk_level if c else (self.applied["risk_level"] if self.applied else None),
            "approval_required_from": list(c.approval_required_from) if c else [],
            "proposal_id": p.proposal.proposal_id if p else None,
            "can_apply": not p.missing_permissions if p else None,
            "preview": {"based_on": p.proposal.based_on, "diff": p.diff, "patch": p.json_patch} if p else None,
            "preview_url": None,
            "applied": self.applied,
            "pending_proposal_id": self.pending.proposal_id if self.pending else None,
            "errors": self.errors,
            "problems": self.problems,
        }


def _pending(messages: list[BaseMessage]) -> Proposal | None:
    """The last proposal shown that was neither applied nor replaced by an error-free later one."""
    for m in reversed(messages):
        if not isinstance(m, ToolMessage) or m.status == "error":
            continue
        if m.name == "apply_change":
            return None
        if m.name == "propose_change":
            try:
                return Proposal.from_dict(json.loads(str(m.content)))
            except (ValueError, KeyError, TypeError):
                return None
    return None


class ConfigChat:
    def __init__(self, *, service: ConfigService, deps: GraphDeps, editor: Path = EDITOR_CONFIG) -> None:
        self.service = service
        self.deps = deps
        self.editor = BotConfig.model_validate(json.loads(editor.read_text(encoding="utf-8")))
        self._graph: CompiledBot | None = None
        # One turn at a time per conversation in this process: a second "yes" sent at once then finds the
        # proposal applied (across processes, the version check in apply_proposal is what stops it).
        self._turns: dict[str, tuple[asyncio.Lock, int]] = {}  # the lock and how many turns hold or wait for it

    @property
    def graph(self) -> CompiledBot:
        # One graph for every tenant: the tenant of a turn travels in its config, like any bot's.
        if self._graph is None:
            self._graph = compile_bot(self.editor, self.deps)
        return self._graph

    async def turn(
        self,
        principal: Principal,
        *,
        config_id: str | None,
        message: str | None,
        conversation_id: str | None,
        confirm: bool,
        product_type: str | None,
    ) -> ChatTurn:
        tenant = principal.tenant_id
        owner: dict[str, Any] | None = None
        if conversation_id is not None:
            conversation_id = parse_uuid(conversation_id, "conversation")
            owner = await self._owner(principal, conversation_id)
            if config_id is None:
                config_id = str(owner["config_id"])
        elif config_id is None:
            raise InvalidInput(
                "send config_id to start a conversation (or conversation_id to continue one)",
                errors=[{"path": "$.config_id", "message": "required without conversation_id"}],
            )
        stored = await self.service.repo.find(tenant, config_id)
        if owner is not None and stored.config_id != owner["config_id"]:
            raise InvalidInput(
                f"this conversation edits config '{owner['config_key']}', not '{config_id}'; start a new "
                "conversation (leave conversation_id out) to edit another config",
                errors=[{"path": "$.config_id", "message": "not this conversation's config"}],
            )
        if product_type is not None and product_type != stored.product_type:
            raise InvalidInput(
                f"config '{stored.key}' is a {stored.product_type}, not a {product_type}",
                errors=[{"path": "$.product_type", "message": f"expected {stored.product_type}"}],
            )
        conversation_id = conversation_id or str(uuid.uuid4())
        thread = conversation_thread(tenant, conversation_id)
        lock, users = self._turns.get(thread, (asyncio.Lock(), 0))
        self._turns[thread] = (lock, users + 1)
        try:
            async with lock:
                return await self._turn(
                    principal, stored, owner, conversation_id, thread, message=message, confirm=confirm
                )
        finally:
            lock, users = self._turns[thread]
            if users == 1:
                del self._turns[thread]
            else:
                self._turns[thread] = (lock, users - 1)

    async def _turn(
        self,
        principal: Principal,
        stored: StoredConfig,
        owner: dict[str, Any] | None,
        conversation_id: str,
        thread: str,
        *,
        message: str | None,
        confirm: bool,
    ) -> ChatTurn:
        tenant = principal.tenant_id
        run_config: RunnableConfig = {
            "configurable": {"thread_id": thread, "tenant_id": tenant},
            "metadata": {
                f"{_OWNER}key_id": principal.key_id,
                f"{_OWNER}config_id": stored.config_id,
                f"{_OWNER}config_key": stored.key,
            },
            "recursion_limit": 12,
        }
        before = list((await self.graph.aget_state(run_config)).values.get("messages", [])) if owner else []
        pending = _pending(before)
        if confirm and pending is None:
            raise Conflict(
                "there is no proposed change waiting in this conversation to confirm; ask for a change first"
            )
        text = message if message is not None else CONFIRM_MESSAGE
        session = EditorSession(
            principal=principal,
            service=self.service,
            config_id=stored.config_id,
            pending=pending,
            confirmed=pending is not None and (confirm or is_confirmation(text)),
        )
        human = HumanMessage(content=text, id=str(uuid.uuid4()))
        token = EDITOR_SESSION.set(session)
        try:
            state = await self.graph.ainvoke({"messages": [human]}, run_config)
        finally:
            EDITOR_SESSION.reset(token)
        if session.refused:  # the caller's key may not make this change: the conversation says so, so does HTTP
            raise session.refused[-1]
        messages: list[BaseMessage] = list(state.get("messages", []))
        start = next((i for i, m in enumerate(messages) if m.id == human.id), len(messages) - 1)
        new = messages[start + 1 :]
        answer = next((str(m.content) for m in reversed(new) if isinstance(m, AIMessage) and m.content), "")
        errors = [
            {"tool": m.name, "message": str(m.content)}
            for m in new
            if isinstance(m, ToolMessage) and m.status == "error"
        ]
        problems = [e for rejected in session.rejected for e in rejected.errors]
        applied = None
        if session.applied:
            done = session.applied[-1]
            c = done.classification
            applied = {
                "status": done.status if done.changed else "unchanged",
                "version": done.config.version,
                "current_version": done.config.latest_version,
                "based_on": done.based_on,
                "source": "chat",
                "risk_level": c.risk_level,
                "requires_approval": c.requires_approval,
                "approval_required_from": list(c.approval_required_from),
            }
        return ChatTurn(
            conversation_id=conversation_id,
            config_key=stored.key,
            config_id=stored.config_id,
            response=answer,
            preview=session.previews[-1] if session.previews else None,
            applied=applied,
            errors=errors,
            problems=problems,
            pending=_pending(messages),
        )

    async def _owner(self, principal: Principal, conversation_id: str) -> dict[str, Any]:
        """The conversation's recorded owner, if this key started it; else 404, whoever started it."""
        thread = conversation_thread(principal.tenant_id, conversation_id)
        snapshot = await self.graph.aget_state({"configurable": {"thread_id": thread}})
        recorded = snapshot.metadata or {}
        owner = {k.removeprefix(_OWNER): v for k, v in recorded.items() if k.startswith(_OWNER)}
        if not owner.get("config_id") or owner.get("key_id") != principal.key_id:
            raise NotFound(
                f"conversation '{conversation_id}' does not exist for your key; start one by sending config_id "
                "without conversation_id"
            )
        return owner
