"""A Chorus server in its own process (as in production) on a temporary database, with a tenant, a key
and the example support bot, for the benchmarks that go through HTTP."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from bench.harness import ACME, new_tenant, open_bench_database
from chorus.agents.tenancy.keys import create_api_key


@dataclass
class BenchServer:
    url: str
    key: str
    assistant_id: str


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@asynccontextmanager
async def chorus_server(config: dict[str, Any] | None = None) -> AsyncIterator[BenchServer]:
    """A server with a tenant, an admin key and one assistant: `config` (default the example support bot)."""
    db, url = await open_bench_database()
    tenant_id = await new_tenant(db)
    key = await create_api_key(db, tenant_id=tenant_id, role="admin")
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "CHORUS_OFFLINE": "1",
        "CHORUS_LOG_LEVEL": "WARNING",
        "CHORUS_DB_POOL_SIZE": "40",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "chorus.cli", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(os.environ.get("BENCH_SERVER_LOG", os.devnull), "w"),  # noqa: SIM115
    )
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base, headers={"x-api-key": key}) as client:
            for _ in range(300):
                if proc.poll() is not None:
                    raise RuntimeError(
                        f"chorus serve exited with {proc.returncode} (BENCH_SERVER_LOG=<file> keeps its log)"
                    )
                try:
                    if (await client.get("/health")).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.1)
            else:
                raise RuntimeError("chorus serve did not answer /health within 30 s")
            created = await client.post("/assistants", json={"graph_id": "chatbot", "context": config or ACME})
            created.raise_for_status()
            assistant_id = created.json()["assistant_id"]
        yield BenchServer(base, key, assistant_id)
    finally:
        proc.terminate()
        try:
            await asyncio.to_thread(proc.wait, 20)
        except subprocess.TimeoutExpired:
            proc.kill()
            await asyncio.to_thread(proc.wait)
        await db.close()
        await asyncio.sleep(0.2)
