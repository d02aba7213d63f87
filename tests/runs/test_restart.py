"""Persistence across a real server restart: stop the process, start a new one, history intact."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path
from typing import Any

from langgraph_sdk import get_client

from chorus.agents.storage.database import Database
from tests.conftest import free_port, make_tenant, start_server_process


def _start(database_url: str, home: Path, port: int) -> subprocess.Popen[bytes]:
    return start_server_process(database_url, home, port).process


async def test_thread_survives_restart(
    db: Database, database_url: str, tmp_path: Path, acme_config: dict[str, Any]
) -> None:
    tenant = await make_tenant(db)
    port = free_port()
    proc = _start(database_url, tmp_path, port)
    try:
        sdk = get_client(url=f"http://127.0.0.1:{port}", api_key=tenant.key)
        assistant = await sdk.assistants.create(graph_id="chatbot", context=acme_config)
        thread = await sdk.threads.create()
        await sdk.runs.wait(
            thread["thread_id"],
            assistant["assistant_id"],
            input={"messages": [{"role": "user", "content": "Where is my order ORD-1001?"}]},
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)

    proc = _start(database_url, tmp_path, port)
    try:
        sdk = get_client(url=f"http://127.0.0.1:{port}", api_key=tenant.key)
        state = await sdk.threads.get_state(thread["thread_id"])
        assert [m["type"] for m in state["values"]["messages"]] == ["human", "ai", "tool", "ai"]
        result: Any = await sdk.runs.wait(
            thread["thread_id"], assistant["assistant_id"], input={"messages": [{"role": "user", "content": "thanks!"}]}
        )
        assert len(result["messages"]) == 6
        assert "welcome" in result["messages"][-1]["content"]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
