"""The tool-call ledger: a side-effecting tool runs at most once per (thread, tool call); read-only tools and
the tool API's invocations are not recorded; a thread's ledger goes with the thread."""

from __future__ import annotations

import asyncio
import re
import uuid
from typing import Any

import httpx
import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langgraph_sdk.client import LangGraphClient

from chorus.agents.configs.models import ToolNeeded
from chorus.agents.storage.database import Database
from chorus.agents.tools.builtins import build_registry
from chorus.agents.tools.http_tool import build_http_tool
from chorus.agents.tools.ledger import recorded_outcomes
from chorus.agents.tools.registry import RegisteredTool
from chorus.graphs.nodes.tools import make_tools_node
from chorus.graphs.repair import CANCELLED, dangling_tool_calls
from chorus.runs.threads_repository import ThreadRepository
from tests.conftest import PICKUP, Tenant, example, make_tenant, with_pickup_tool
from tests.fakes import inventory_api, serve

REFUND = {"order_id": "ORD-1001", "refund_amount": 10, "reason": "arrived late"}


@pytest.fixture
def allow_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHORUS_HTTP_TOOLS_ALLOW_PRIVATE", "1")  # the stand-in API listens on loopback


class ToolsStep:
    """The graph's tools node, run on its own as a resumed step would run it: same thread, same call ids."""

    def __init__(self, db: Database, tenant: Tenant, tools: list[RegisteredTool]) -> None:
        self.node = make_tools_node(tools={t.name: t for t in tools}, db=db, escalator=None)
        self.tenant = tenant

    async def run(self, thread_id: str, *calls: tuple[str, str, dict[str, Any]]) -> list[ToolMessage]:
        tool_calls = [{"name": name, "args": args, "id": call_id, "type": "tool_call"} for call_id, name, args in calls]
        state = {"messages": [HumanMessage("hi", id="h1"), AIMessage("", tool_calls=tool_calls, id="a1")]}
        config = {"configurable": {"tenant_id": self.tenant.tenant_id, "thread_id": thread_id, "run_id": None}}
        command = await self.node(state, config)
        return [m for m in command.update["messages"] if isinstance(m, ToolMessage)]


async def scalar(db: Database, sql: str, *params: Any) -> Any:
    async with db.connection() as conn:
        cur = await conn.execute(sql, params)
        row = await cur.fetchone()
    return None if row is None else next(iter(row.values()))


async def refunds(db: Database, tenant: Tenant) -> int:
    return int(await scalar(db, "SELECT count(*) FROM demo_refunds WHERE tenant_id = %s", tenant.tenant_id))


async def ledger_rows(db: Database, tenant: Tenant) -> list[dict[str, Any]]:
    async with db.connection() as conn:
        cur = await conn.execute(
            "SELECT thread_id, tool_call_id, tool_name, status, result FROM tool_calls WHERE tenant_id = %s"
            " ORDER BY started_at",
            (tenant.tenant_id,),
        )
        return await cur.fetchall()


async def test_a_side_effecting_call_runs_once_per_tool_call(db: Database, tenant: Tenant) -> None:
    step = ToolsStep(db, tenant, [build_registry().get("initiate_refund")])
    thread_id = str(uuid.uuid4())
    [first] = await step.run(thread_id, ("call-1", "initiate_refund", REFUND))
    assert first.status == "success" and "RF-" in str(first.content)
    [again] = await step.run(thread_id, ("call-1", "initiate_refund", REFUND))  # the step resumed after a crash
    assert again.content == first.content and again.status == "success"
    assert await refunds(db, tenant) == 1
    invocations = "SELECT count(*) FROM tool_invocations WHERE tenant_id = %s AND tool_name = 'initiate_refund'"
    assert await scalar(db, invocations, tenant.tenant_id) == 1  # the audit lists calls made, not reused

    rows = await ledger_rows(db, tenant)
    assert [(r["tool_call_id"], r["status"], r["result"]["content"]) for r in rows] == [
        ("call-1", "succeeded", first.content)
    ]
    # Another tool call is another refund, in this thread or another.
    await step.run(thread_id, ("call-2", "initiate_refund", REFUND))
    await step.run(str(uuid.uuid4()), ("call-1", "initiate_refund", REFUND))
    assert await refunds(db, tenant) == 3


async def test_a_failed_call_is_answered_with_its_recorded_error(db: Database, tenant: Tenant) -> None:
    step = ToolsStep(db, tenant, [build_registry().get("initiate_refund")])
    thread_id = str(uuid.uuid4())
    too_much = {**REFUND, "refund_amount": 100000}
    [first] = await step.run(thread_id, ("call-1", "initiate_refund", too_much))
    assert first.status == "error" and "exceeds" in str(first.content)
    [again] = await step.run(thread_id, ("call-1", "initiate_refund", too_much))
    assert (again.status, again.content) == ("error", first.content)
    assert [r["status"] for r in await ledger_rows(db, tenant)] == ["failed"]
    invocations = "SELECT count(*) FROM tool_invocations WHERE tenant_id = %s AND tool_name = 'initiate_refund'"
    assert await scalar(db, invocations, tenant.tenant_id) == 1


async def test_a_call_interrupted_mid_way_is_not_run_again(db: Database, tenant: Tenant) -> None:
    """A process that died during the call left its row 'started': nobody knows whether the refund happened."""
    thread_id = str(uuid.uuid4())
    async with db.connection() as conn:
        await conn.execute(
            "INSERT INTO tool_calls (tenant_id, thread_id, tool_call_id, tool_name, status)"
            " VALUES (%s, %s, 'call-1', 'initiate_refund', 'started')",
            (tenant.tenant_id, thread_id),
        )
    step = ToolsStep(db, tenant, [build_registry().get("initiate_refund")])
    [message] = await step.run(thread_id, ("call-1", "initiate_refund", REFUND))
    assert message.status == "error"
    assert "'initiate_refund' was not run" in str(message.content) and "unknown" in str(message.content)
    assert "check the current state" in str(message.content)
    assert await refunds(db, tenant) == 0
    assert [r["status"] for r in await ledger_rows(db, tenant)] == ["started"]  # still unknown


async def test_read_only_tools_and_tool_api_invocations_are_not_recorded(
    db: Database, http: httpx.AsyncClient, tenant: Tenant
) -> None:
    registry = build_registry()
    assert {t.name for t in registry.all() if t.side_effects} == {
        "initiate_refund",
        "update_shipping_address",
        "book_appointment",
        "apply_change",  # the config editor's (it stores a config version)
    }
    step = ToolsStep(db, tenant, [registry.get("fetch_order_status"), registry.get("escalate_to_human")])
    thread_id = str(uuid.uuid4())
    for _ in range(2):
        messages = await step.run(
            thread_id, ("c1", "fetch_order_status", {"order_id": "ORD-1001"}), ("c2", "escalate_to_human", {})
        )
        assert [m.status for m in messages] == ["success", "success"]
    listed = {t["name"]: t["side_effects"] for t in (await http.get("/api/v1/tools")).json()["tools"]}
    assert listed["initiate_refund"] is True and listed["fetch_order_status"] is False
    for _ in range(2):  # the tool API is a test bench: no thread, no tool call, every invocation runs
        assert (await http.post("/api/v1/tools/initiate_refund/invoke", json={"arguments": REFUND})).status_code == 200
    assert await refunds(db, tenant) == 2
    assert await ledger_rows(db, tenant) == []


async def test_http_tools_are_recorded_unless_they_get(db: Database, tenant: Tenant, allow_loopback: None) -> None:
    api = inventory_api()
    api.state.release.set()
    async with serve(api) as base:
        lookup = build_http_tool(
            ToolNeeded(
                tool_name="check_stock",
                input_schema={"product_id": "string"},
                http={"method": "GET", "url": base + "/inventory/{product_id}"},
            )
        )
        pickup = build_http_tool(
            ToolNeeded(
                tool_name="schedule_pickup",
                input_schema={"order_id": "string"},
                http={"method": "POST", "url": base + "/pickups"},
            )
        )
        assert (lookup.side_effects, pickup.side_effects) == (False, True)
        step = ToolsStep(db, tenant, [lookup, pickup])
        thread_id = str(uuid.uuid4())
        calls = (("c1", "check_stock", {"product_id": "SKU-1"}), ("c2", "schedule_pickup", {"order_id": "ORD-1"}))
        first = await step.run(thread_id, *calls)
        again = await step.run(thread_id, *calls)
    # The step's calls run concurrently, so only the count per path is fixed: the GET twice, the POST once.
    assert sorted(s["path"] for s in api.state.seen) == ["/inventory/SKU-1", "/inventory/SKU-1", "/pickups"]
    # The pickup's number counts the requests before it (1 or 2: the GET may come first or not); the second
    # step answered from the ledger, with the very same pickup.
    assert again[1].content == first[1].content and re.search(r'"pickup_id": "PU-[12]"', str(first[1].content))
    assert [(r["tool_name"], r["status"]) for r in await ledger_rows(db, tenant)] == [("schedule_pickup", "succeeded")]


async def test_the_ledger_is_per_tenant(db: Database, tenant: Tenant) -> None:
    other = await make_tenant(db)
    thread_id = str(uuid.uuid4())  # the same (thread, call) under two tenants: two different calls
    for who in (tenant, other):
        await ToolsStep(db, who, [build_registry().get("initiate_refund")]).run(
            thread_id, ("call-1", "initiate_refund", REFUND)
        )
        assert await refunds(db, who) == 1
        assert len(await ledger_rows(db, who)) == 1


async def test_deleting_or_expiring_a_thread_deletes_its_ledger(
    db: Database, http: httpx.AsyncClient, tenant: Tenant
) -> None:
    step = ToolsStep(db, tenant, [build_registry().get("initiate_refund")])
    deleted, expired, kept = [(await http.post("/threads", json={})).json()["thread_id"] for _ in range(3)]
    for thread_id in (deleted, expired, kept):
        await step.run(thread_id, ("call-1", "initiate_refund", REFUND))
    assert (await http.delete(f"/threads/{deleted}")).status_code == 204
    async with db.connection() as conn:
        await conn.execute("UPDATE threads SET expires_at = now() - interval '1 day' WHERE thread_id = %s", (expired,))
    assert expired in await ThreadRepository(db, ttl_days=30).expired()
    assert [r["thread_id"] for r in await ledger_rows(db, tenant)] == [kept]


async def test_repair_after_a_cancel_answers_recorded_calls_with_their_record(db: Database, tenant: Tenant) -> None:
    """A turn cancelled during its tools step: a call that ran keeps its result, one cut off mid-way is of
    unknown outcome, and only a call that never started reads as cancelled."""
    thread_id = str(uuid.uuid4())
    step = ToolsStep(db, tenant, [build_registry().get("initiate_refund")])
    [done] = await step.run(thread_id, ("call-done", "initiate_refund", REFUND))
    async with db.connection() as conn:
        await conn.execute(
            "INSERT INTO tool_calls (tenant_id, thread_id, tool_call_id, tool_name, status)"
            " VALUES (%s, %s, 'call-cut', 'initiate_refund', 'started')",
            (tenant.tenant_id, thread_id),
        )
    calls = [
        {"name": "initiate_refund", "args": REFUND, "id": f"call-{n}", "type": "tool_call"}
        for n in ("done", "cut", "never")
    ]
    history = [HumanMessage("refund please", id="h1"), AIMessage("", tool_calls=calls, id="a1")]
    recorded = await recorded_outcomes(
        db,
        tenant_id=tenant.tenant_id,
        thread_id=thread_id,
        calls=[(str(c["id"]), str(c["name"])) for c in calls],
    )
    repairs = dangling_tool_calls(history, recorded)
    assert [(r.tool_call_id, r.status) for r in repairs] == [
        ("call-done", "success"),
        ("call-cut", "error"),
        ("call-never", "error"),
    ]
    assert repairs[0].content == done.content
    assert "unknown" in str(repairs[1].content) and repairs[2].content == CANCELLED


async def test_a_run_cancelled_mid_call_tells_the_next_turn_the_outcome_is_unknown(
    sdk: LangGraphClient, db: Database, tenant: Tenant, allow_loopback: None
) -> None:
    api = inventory_api()
    async with serve(api) as base:
        assistant = await sdk.assistants.create(
            graph_id="chatbot", context=with_pickup_tool(example("acme_support_bot"), base)
        )
        thread = await sdk.threads.create()
        run = await sdk.runs.create(thread["thread_id"], assistant["assistant_id"], input=PICKUP)
        for _ in range(250):
            if api.state.seen:
                break
            await asyncio.sleep(0.02)
        assert [s["path"] for s in api.state.seen] == ["/pickups"]  # the request is in flight
        await sdk.runs.cancel(thread["thread_id"], run["run_id"], wait=True)
        api.state.release.set()
        after: Any = await sdk.runs.wait(thread["thread_id"], assistant["assistant_id"], input=PICKUP)
    tool_messages = [m for m in after["messages"] if m["type"] == "tool"]
    assert "unknown" in tool_messages[0]["content"] and tool_messages[0]["status"] == "error"
    assert len(api.state.seen) == 2  # the next turn's own call, not a repeat of the cut-off one
