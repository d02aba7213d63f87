"""The official LangGraph JS SDK (`@langchain/langgraph-sdk` from npm, pinned in tests/js/package-lock.json)
replays agent-chat-ui's requests against a live server: send with useStream's options, drop and rejoin
with the last event id, thread list, edit (fork), regenerate, stop (cancel on disconnect), cancel, and an
unknown stream mode. The flow itself is tests/js/agent_chat_ui_flow.mjs."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

from langgraph_sdk.client import LangGraphClient

from tests.conftest import RunningServer, Tenant, slow_bot


async def test_agent_chat_ui_requests_through_the_js_sdk(
    node_sdk: Path,
    server: RunningServer,
    tenant: Tenant,
    sdk: LangGraphClient,
    assistant_id: str,
    acme_config: dict[str, Any],
) -> None:
    slow = (await sdk.assistants.create(graph_id="chatbot", context=slow_bot(acme_config, 15)))["assistant_id"]
    env = {
        **os.environ,
        "CHORUS_URL": server.url,
        "CHORUS_KEY": tenant.key,
        "ASSISTANT_ID": assistant_id,
        "SLOW_ASSISTANT_ID": slow,
    }
    # Not subprocess.run: the test server answers the script on this very event loop.
    process = await asyncio.create_subprocess_exec(
        "node",
        "agent_chat_ui_flow.mjs",
        cwd=node_sdk,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=180)
    assert process.returncode == 0, stderr.decode()[-3000:]
    seen = json.loads(stdout.decode().strip().splitlines()[-1])

    assert set(seen["first_events"]) <= {"values", "messages", "custom", "updates"} and seen["first_ids"][0]
    assert seen["rejoined_ids"] == seen["all_ids"], "a rejoin with the last event id loses or repeats nothing"
    assert [(c["tool"], c["status"]) for c in seen["custom"]][-1] == ("fetch_order_status", "done")
    assert "shipped" in seen["final_answer"]
    assert seen["listed"] is True
    assert seen["edited_humans"] == ["Where is my order ORD-1003?"]
    assert seen["regenerated"] == {"humans": 1, "new_answer": True}
    assert seen["stopped_status"] == "interrupted"
    assert seen["cancelled_status"] == "interrupted"
    assert "telepathy" in seen["unknown_mode"]
