"""Secrets inside tool calls: revealed only for the calling tenant, sent in headers, redacted from what
comes back, audited on every use, never read from the server's environment; the vault key and its errors."""

from __future__ import annotations

import base64
import logging
import os
import stat
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from langchain_core.messages import HumanMessage
from langgraph_sdk.client import LangGraphClient

from chorus.agents.configs.models import BotConfig, ToolNeeded
from chorus.agents.errors import SecretUndecryptable, ServerMisconfigured, ToolError
from chorus.agents.secrets.crypto import VaultKey
from chorus.agents.secrets.master_key import load_vault_key
from chorus.agents.secrets.repository import Actor, SecretRepository
from chorus.agents.secrets.service import SecretVault
from chorus.agents.settings import Settings
from chorus.agents.storage.database import Database
from chorus.agents.tools.builtins import build_registry
from chorus.agents.tools.http_tool import build_http_tool
from chorus.agents.tools.registry import ToolContext
from chorus.graphs.compiler import GraphDeps, compile_bot
from tests.agents.test_secrets import SECRETS, secret_value, with_header_tool
from tests.conftest import RunningServer, Tenant, example, make_tenant
from tests.fakes import inventory_api, serve

ECHO = {"messages": [{"role": "user", "content": "Please echo order ORD-1001"}]}


@pytest.fixture
def allow_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHORUS_HTTP_TOOLS_ALLOW_PRIVATE", "1")  # the stand-in API listens on loopback


def vault_of(server: RunningServer) -> SecretVault:
    vault: SecretVault = server.app.state.secrets
    return vault


async def test_environment_references_never_expand_even_if_stored(
    db: Database, tenant: Tenant, server: RunningServer, allow_loopback: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-server-own-key")
    monkeypatch.setenv("CHORUS_TEST_DATABASE_URL", "postgresql://root:hunter2@db/prod")
    api = inventory_api()
    ctx = ToolContext(tenant_id=tenant.tenant_id, db=db, secrets=vault_of(server))
    async with serve(api) as base:
        for header in ("${OPENAI_API_KEY}", "${CHORUS_TEST_DATABASE_URL}", "x ${DATABASE_URL} y"):
            # As if the config had been stored before validation refused such headers.
            leak = build_http_tool(
                ToolNeeded(
                    tool_name="leak",
                    input_schema={"order_id": "string"},
                    http={"method": "POST", "url": base + "/echo", "headers": {"X-Leak": header}},
                )
            )
            with pytest.raises(ToolError, match="not a vault reference") as raised:
                await leak.invoke(ctx, {"order_id": "ORD-1"})
            assert "sk-server-own-key" not in raised.value.detail and "hunter2" not in raised.value.detail
    assert api.state.seen == []  # the call was never made


async def places_holding(db: Database, needle: str) -> list[str]:
    """Every table.column in the database whose stored value contains `needle` (text or bytes)."""
    async with db.connection() as conn:
        cur = await conn.execute(
            "SELECT table_name, column_name, data_type FROM information_schema.columns"
            " WHERE table_schema = 'public' AND data_type IN ('text', 'jsonb', 'json', 'bytea', 'character varying')"
        )
        columns = await cur.fetchall()
        found = []
        for c in columns:
            column = f'"{c["column_name"]}"'
            test = (
                f"position(%s::bytea in {column}) > 0"
                if c["data_type"] == "bytea"
                else f"strpos({column}::text, %s) > 0"
            )
            cur = await conn.execute(
                f'SELECT 1 FROM "{c["table_name"]}" WHERE {test} LIMIT 1',
                (needle.encode() if c["data_type"] == "bytea" else needle,),
            )
            if await cur.fetchone():
                found.append(f"{c['table_name']}.{c['column_name']}")
    return found


async def test_a_turn_sends_the_secret_and_keeps_it_out_of_state_events_and_logs(
    sdk: LangGraphClient,
    http: httpx.AsyncClient,
    db: Database,
    allow_loopback: None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    first, second = secret_value(), secret_value()
    assert (await http.post(SECRETS, json={"name": "ECHO_KEY", "value": first})).status_code == 201
    api = inventory_api()
    async with serve(api) as base:
        cfg = with_header_tool(
            example("acme_support_bot"), {"Authorization": "Bearer ${secret:ECHO_KEY}"}, url=base + "/echo"
        )
        assistant = await sdk.assistants.create(graph_id="chatbot", context=cfg)
        thread = await sdk.threads.create()
        events = [
            part
            async for part in sdk.runs.stream(
                thread["thread_id"],
                assistant["assistant_id"],
                input=ECHO,
                stream_mode=["values", "updates", "messages-tuple"],
            )
        ]
        sent = api.state.seen[-1]
        assert sent["path"] == "/echo" and sent["headers"]["authorization"] == f"Bearer {first}"
        key_one = sent["headers"]["idempotency-key"]
        assert uuid.UUID(key_one)

        state = await sdk.threads.get_state(thread["thread_id"])
        tool_message = next(m for m in state["values"]["messages"] if m["type"] == "tool")
        assert "[secret ECHO_KEY redacted]" in tool_message["content"]  # the endpoint echoed it back
        assert first not in str(state) and first not in str(events)

        # Rotation: the next call uses the newest version; versions are kept.
        rotated = await http.post(f"{SECRETS}/ECHO_KEY/rotate", json={"value": second})
        assert rotated.json()["version"] == 2
        await sdk.runs.wait(thread["thread_id"], assistant["assistant_id"], input=ECHO)
        assert api.state.seen[-1]["headers"]["authorization"] == f"Bearer {second}"
        assert api.state.seen[-1]["headers"]["idempotency-key"] != key_one
        history = await sdk.threads.get_history(thread["thread_id"], limit=50)
        assert first not in str(history) and second not in str(history)

    # Nowhere in the database: not the checkpoints, the runs, the tool audit, nor the vault's own rows.
    assert await places_holding(db, first) == [] and await places_holding(db, second) == []

    uses = [e for e in (await http.get(f"{SECRETS}/ECHO_KEY/audit")).json()["events"] if e["action"] == "use"]
    assert [e["version"] for e in uses] == [2, 1]
    assert all(e["thread_id"] == thread["thread_id"] and e["tool_name"] == "echo_order" for e in uses)
    assert all(e["run_id"] and e["actor"] == f"run:{e['run_id']}" and e["tool_call_id"] for e in uses)
    got = (await http.get(f"{SECRETS}/ECHO_KEY")).json()
    assert got["usage_count"] == 2 and got["last_used"]

    logged = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert caplog.records  # the turn did log (request, tool and run lines)
    assert first not in logged and second not in logged


async def test_error_pages_that_echo_the_secret_are_redacted(
    db: Database, tenant: Tenant, server: RunningServer, allow_loopback: None
) -> None:
    value = secret_value()
    vault = vault_of(server)
    await vault.create(tenant.tenant_id, name="REJECTED_KEY", value=value, description=None, actor=Actor("test"))
    api = inventory_api()
    ctx = ToolContext(tenant_id=tenant.tenant_id, db=db, secrets=vault, tool_call_id="call-1", thread_id="t-1")
    async with serve(api) as base:
        tool = build_http_tool(
            ToolNeeded(
                tool_name="careless",
                input_schema={},
                http={
                    "method": "POST",
                    "url": base + "/reject",
                    "headers": {"Authorization": "Bearer ${secret:REJECTED_KEY}"},
                },
            )
        )
        with pytest.raises(ToolError) as raised:
            await tool.invoke(ctx, {})
        assert "HTTP 403" in raised.value.detail and "[secret REJECTED_KEY redacted]" in raised.value.detail
        assert value not in raised.value.detail
        with pytest.raises(ToolError):
            await tool.invoke(ctx, {})
        keys = [s["headers"]["idempotency-key"] for s in api.state.seen]
        assert keys[0] == keys[1]  # the same tool call of the same thread: the same key


async def test_a_secret_of_another_tenant_is_unknown_to_a_tool(db: Database, server: RunningServer) -> None:
    vault = vault_of(server)
    owner, other = await make_tenant(db), await make_tenant(db)
    await vault.create(owner.tenant_id, name="OWNERS_KEY", value=secret_value(), description=None, actor=Actor("test"))
    tool = build_http_tool(
        ToolNeeded(
            tool_name="borrow",
            input_schema={},
            http={"url": "https://shop.example/x", "headers": {"X-Key": "${secret:OWNERS_KEY}"}},
        )
    )
    with pytest.raises(ToolError, match="no secret named 'OWNERS_KEY'"):
        await tool.invoke(ToolContext(tenant_id=other.tenant_id, db=db, secrets=vault), {})
    audit = await vault.audit(other.tenant_id, "OWNERS_KEY", limit=10)
    assert [e.action for e in audit] == ["use_failed"]


async def test_wrong_vault_key_is_a_clear_error_not_a_crash(
    db: Database, tenant: Tenant, server: RunningServer
) -> None:
    vault = vault_of(server)
    await vault.create(tenant.tenant_id, name="SEALED", value=secret_value(), description=None, actor=Actor("test"))
    wrong = SecretVault(SecretRepository(db), VaultKey.from_bytes(os.urandom(32)))
    ctx = ToolContext(tenant_id=tenant.tenant_id, db=db, secrets=wrong)
    with pytest.raises(SecretUndecryptable, match=r"was encrypted with vault key .* set CHORUS_SECRET_KEY"):
        await wrong.reveal(ctx, "SEALED", tool_name="t")
    described = await wrong.describe(tenant.tenant_id, "SEALED", Actor("test"))
    assert described.decryptable is False

    # In a turn, the tool's failure is a message the model sees; the turn itself completes.
    cfg = BotConfig.model_validate(with_header_tool(example("acme_support_bot"), {"X-Key": "${secret:SEALED}"}))
    graph = compile_bot(
        cfg, GraphDeps(db=db, registry=build_registry(), checkpointer=None, offline=True, secrets=wrong)
    )
    conf: Any = {"configurable": {"thread_id": str(uuid.uuid4()), "tenant_id": tenant.tenant_id}}
    out = await graph.ainvoke({"messages": [HumanMessage("Please echo order ORD-1001", id="m1")]}, conf)
    tool_message = next(m for m in out["messages"] if m.type == "tool")
    assert tool_message.status == "error" and "CHORUS_SECRET_KEY" in tool_message.content


async def test_ciphertext_moved_to_another_tenant_does_not_open(db: Database, server: RunningServer) -> None:
    vault = vault_of(server)
    a, b = await make_tenant(db), await make_tenant(db)
    await vault.create(a.tenant_id, name="SWAP", value="a-value", description=None, actor=Actor("test"))
    await vault.create(b.tenant_id, name="SWAP", value="b-value", description=None, actor=Actor("test"))
    async with db.connection() as conn:
        await conn.execute(
            "UPDATE secret_versions SET nonce = src.nonce, ciphertext = src.ciphertext FROM secret_versions src"
            " WHERE secret_versions.tenant_id = %s AND src.tenant_id = %s",
            (b.tenant_id, a.tenant_id),
        )
    with pytest.raises(SecretUndecryptable, match="integrity check"):
        await vault.reveal(ToolContext(tenant_id=b.tenant_id, db=db), "SWAP", tool_name="t")
    assert await vault.reveal(ToolContext(tenant_id=a.tenant_id, db=db), "SWAP", tool_name="t") == "a-value"


def test_vault_key_from_environment_or_generated_file(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    good = base64.b64encode(os.urandom(32)).decode()
    assert load_vault_key(Settings(home=tmp_path, secret_key=good)).key_id
    for bad, message in (
        ("not base64!", "not valid base64"),
        (base64.b64encode(b"short").decode(), "decodes to 5 bytes"),
    ):
        with pytest.raises(ServerMisconfigured, match=message) as raised:
            load_vault_key(Settings(home=tmp_path, secret_key=bad))
        assert "CHORUS_SECRET_KEY" in raised.value.detail and "openssl rand -base64 32" in raised.value.detail

    caplog.set_level(logging.INFO)
    home = tmp_path / "home"
    generated = load_vault_key(Settings(home=home, secret_key=None))
    key_file = home / "secret.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert any(
        "generated a new vault key" in r.getMessage() and "CHORUS_SECRET_KEY" in r.getMessage() for r in caplog.records
    )
    assert load_vault_key(Settings(home=home, secret_key=None)).key_id == generated.key_id
    assert key_file.read_text().strip() not in caplog.text
    key_file.write_text("garbage")
    with pytest.raises(ServerMisconfigured, match="key file"):
        load_vault_key(Settings(home=home, secret_key=None))
