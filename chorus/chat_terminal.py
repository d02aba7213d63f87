"""`chorus chat`: a terminal conversation with a bot, in-process, streaming the agent's tokens."""

from __future__ import annotations

import asyncio
import sys
import uuid
from pathlib import Path
from typing import Any, cast

from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage, ToolMessage
from langchain_core.runnables import RunnableConfig

from chorus.agents.configs.models import BotConfig
from chorus.agents.configs.repository import ConfigRepository
from chorus.agents.errors import ChorusError, NotFound
from chorus.agents.secrets.master_key import load_vault_key
from chorus.agents.secrets.repository import SecretRepository
from chorus.agents.secrets.service import SecretVault
from chorus.agents.settings import Settings
from chorus.agents.storage.database import Database, open_database
from chorus.agents.tenancy.keys import DEFAULT_TENANT, ensure_tenant, find_tenant
from chorus.agents.tools.builtins import build_registry
from chorus.agents.tools.registry import ToolRegistry
from chorus.demo import load_config_file, load_demo_knowledge
from chorus.graphs.checkpointer import ChorusCheckpointer
from chorus.graphs.compiler import GraphDeps, compile_bot


async def _resolve(
    db: Database, bot: str, *, tenant: str, settings: Settings, registry: ToolRegistry
) -> tuple[str, str, int, BotConfig]:
    """(tenant_id, config_id, version, config) for a file (stored in `tenant` under its config_metadata.config_id,
    as a new bot or a new version), a config's own id in `tenant`, or an assistant id (in its own tenant)."""
    path = Path(bot)
    is_file = await asyncio.to_thread(path.exists)
    if path.suffix == ".json" or is_file:
        if not is_file:
            raise ChorusError(f"{path}: no such file")
        tenant_id = await ensure_tenant(db, tenant)
        if tenant == DEFAULT_TENANT:
            # The examples' knowledge, as `make run` loads it (unchanged files are skipped).
            await load_demo_knowledge(db, settings, tenant_id)
        config_id, version, _ = await load_config_file(db, tenant_id, path, registry=registry)
    else:
        try:
            uuid.UUID(bot)
        except ValueError:
            # A config's own id (its file's config_metadata.config_id), in the tenant given.
            try:  # (a tenant that does not exist has no such config either)
                found = await ConfigRepository(db).find(await find_tenant(db, tenant), bot)
            except NotFound:
                raise ChorusError(f"'{bot}' is neither a config file nor a config id of tenant '{tenant}'") from None
            return found.tenant_id, found.config_id, found.version, BotConfig.model_validate(found.config)
        async with db.connection() as conn:
            cur = await conn.execute(
                "SELECT tenant_id, latest_version FROM bot_configs WHERE config_id = %s AND deleted_at IS NULL", (bot,)
            )
            row = await cur.fetchone()
        if row is None:
            raise ChorusError(f"no stored config with id {bot}")
        tenant_id, config_id, version = str(row["tenant_id"]), bot, int(row["latest_version"])
    stored = await ConfigRepository(db).get(tenant_id, config_id, version)
    return tenant_id, config_id, version, BotConfig.model_validate(stored.config)


async def run_terminal_chat(bot: str, *, tenant: str, thread_id: str, settings: Settings) -> None:
    db = await open_database(settings)
    registry = build_registry()
    try:
        try:
            tenant_id, config_id, version, cfg = await _resolve(
                db, bot, tenant=tenant, settings=settings, registry=registry
            )
        except ChorusError as exc:
            print(f"error: {exc.detail}", file=sys.stderr)
            raise SystemExit(1) from None
        checkpointer = ChorusCheckpointer(db.pool)
        await checkpointer.setup()
        try:
            graph = compile_bot(
                cfg,
                GraphDeps(
                    db=db,
                    registry=registry,
                    checkpointer=checkpointer,
                    offline=settings.offline,
                    secrets=SecretVault(SecretRepository(db), load_vault_key(settings)),
                ),
            )
        except ChorusError as exc:
            print(f"error: {exc.detail}", file=sys.stderr)
            raise SystemExit(1) from None
        print(f"{cfg.display_name} (config {config_id} v{version}, thread {thread_id}). Ctrl-D to quit.")
        if cfg.first_message:
            print(f"bot> {cfg.first_message}")
        config: RunnableConfig = {"configurable": {"thread_id": thread_id, "tenant_id": tenant_id}}
        echo = not sys.stdin.isatty()  # piped input: show what was said, as a terminal would
        while True:
            try:
                text = (await asyncio.to_thread(input, "you> ")).strip()
            except EOFError:
                print()
                return
            if echo:
                print(text)
            if text:
                await _print_turn(graph, text, config)
    finally:
        await db.close()


async def _print_turn(graph: Any, text: str, config: RunnableConfig) -> None:
    """Stream one turn: each bot message on its own `bot>` line as its tokens come, each tool result
    indented under the call that asked for it."""
    line_open = False  # a bot message is being printed on the current line
    printing: str | None = None  # and this is its id
    turn = {"messages": [HumanMessage(text, id=str(uuid.uuid4()))]}
    async for item in graph.astream(turn, config, stream_mode="messages"):
        msg, meta = cast(tuple[BaseMessage, dict[str, Any]], item)
        node = meta.get("langgraph_node")
        # Tokens of the agent's answer; whole messages of the other nodes (a model called inside a tool is
        # not the bot speaking).
        said = node == "agent" if isinstance(msg, AIMessageChunk) else node in ("intake", "tools", "agent")
        if isinstance(msg, AIMessage) and said and msg.content:
            if not line_open or msg.id != printing:
                print(("\n" if line_open else "") + "bot> ", end="")
                line_open, printing = True, msg.id
            print(msg.content, end="", flush=True)
        elif isinstance(msg, ToolMessage):
            print(("\n" if line_open else "") + f"  [{msg.name}] {str(msg.content)[:200]}", flush=True)
            line_open = False
    if line_open:
        print()
