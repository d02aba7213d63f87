"""Chorus servers in their own processes (as in production) on a temporary database, with a tenant, a key
and one bot, for the benchmarks that go through HTTP: one process (`chorus_server`) or several sharing
the database (`chorus_servers`), each of which can be killed (-9) and started again."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
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


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc); 0 if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class ServerProcess:
    """One `chorus serve` on a fixed port; `start()` after `kill()` is a restart (a new process, same port)."""

    port: int
    env: dict[str, str]
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None, "the server is not started"
        return self.proc.pid

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.pid)

    def rss_bytes(self) -> int:
        """Resident set size now (Linux /proc: VmRSS)."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError(f"no VmRSS for process {self.pid}")

    def spawn(self) -> None:
        """Start the process without waiting for it to answer (see `wait_ready`)."""
        with open(os.environ.get("BENCH_SERVER_LOG", os.devnull), "a") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "chorus.cli", "serve", "--port", str(self.port)],
                env=self.env,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )

    async def wait_ready(self) -> None:
        assert self.proc is not None, "the server is not started"
        async with httpx.AsyncClient(base_url=self.url, timeout=2) as client:
            for _ in range(600):
                if self.proc.poll() is not None:
                    raise RuntimeError(
                        f"chorus serve exited with {self.proc.returncode} (BENCH_SERVER_LOG=<file> keeps its log)"
                    )
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get("/health")).status_code == 200:
                        return
                await asyncio.sleep(0.1)
        raise RuntimeError("chorus serve did not answer /health within 60 s")

    async def start(self) -> None:
        self.spawn()
        await self.wait_ready()

    def kill(self) -> None:
        """kill -9: no shutdown, no hand-back of its runs."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    async def stop(self) -> None:
        """SIGTERM (a graceful shutdown), kill -9 after 20 s."""
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            await asyncio.to_thread(proc.wait, 20)
        except subprocess.TimeoutExpired:
            self.kill()


@dataclass
class BenchCluster:
    """`servers` share one database; `key` and `assistant_id` work on all of them."""

    servers: list[ServerProcess]
    key: str
    assistant_id: str
    database_url: str

    @property
    def urls(self) -> list[str]:
        return [s.url for s in self.servers]


def server_env(database_url: str, extra_env: dict[str, str] | None = None) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "CHORUS_OFFLINE": "1",
        "CHORUS_LOG_LEVEL": "WARNING",
        "CHORUS_DB_POOL_SIZE": "40",
        **(extra_env or {}),
    }


async def create_assistant(url: str, key: str, config: dict[str, Any]) -> str:
    async with httpx.AsyncClient(base_url=url, headers={"x-api-key": key}, timeout=30) as client:
        created = await client.post("/assistants", json={"graph_id": "chatbot", "context": config})
        created.raise_for_status()
        return str(created.json()["assistant_id"])


@asynccontextmanager
async def chorus_servers(
    count: int, config: dict[str, Any] | None = None, *, env: dict[str, str] | None = None
) -> AsyncIterator[BenchCluster]:
    """`count` server processes on one database with a tenant, an admin key and one assistant: `config`
    (default the example support bot). Every process is stopped on the way out, killed if it must be."""
    db, url = await open_bench_database()
    servers: list[ServerProcess] = []
    try:
        tenant_id = await new_tenant(db)
        key = await create_api_key(db, tenant_id=tenant_id, role="admin")
        servers = [ServerProcess(free_port(), server_env(url, env)) for _ in range(count)]
        for server in servers:  # start together: each takes a few seconds to import and migrate
            server.spawn()
        await asyncio.gather(*(s.wait_ready() for s in servers))
        assistant_id = await create_assistant(servers[0].url, key, config or ACME)
        yield BenchCluster(servers, key, assistant_id, url)
    finally:
        await asyncio.gather(*(s.stop() for s in servers), return_exceptions=True)
        for server in servers:
            server.kill()
        await db.close()
        await asyncio.sleep(0.2)


@asynccontextmanager
async def chorus_server(config: dict[str, Any] | None = None) -> AsyncIterator[BenchServer]:
    """One server process with a tenant, an admin key and one assistant: `config` (default the example bot)."""
    async with chorus_servers(1, config) as cluster:
        yield BenchServer(cluster.urls[0], cluster.key, cluster.assistant_id)
