"""Persistence across a real server restart: stop the process, start a new one, history intact."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from langgraph_sdk import get_client

from chorus.agents.storage.database import Database
from tests.conftest import free_port, make_tenant


def _start(database_url: str, home: Path, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "DATABASE_URL": database_url, "CHORUS_HOME": str(home), "CHORUS_OFFLINE": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "chorus.cli", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise AssertionError("server did not start")


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
