"""Shared fixtures: one real Postgres per session, a real server on a free port, a fresh tenant per test."""

from __future__ import annotations

import asyncio
import copy
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from langgraph_sdk import get_client
from langgraph_sdk.client import LangGraphClient
from playwright.async_api import Browser
from typer.testing import CliRunner

from chorus.agents.knowledge.service import KnowledgeBase, standalone_knowledge_base
from chorus.agents.settings import Settings
from chorus.agents.storage.database import Database, open_database
from chorus.agents.storage.embedded import embedded_database_url
from chorus.agents.tenancy.keys import create_api_key, ensure_tenant
from chorus.cli import app as chorus_app
from chorus.server import create_app
from tests.browser import chromium

ROOT = Path(__file__).resolve().parents[1]
JS = Path(__file__).parent / "js"
EXAMPLES = ROOT / "configs" / "examples"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def example(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EXAMPLES / f"{name}.json").read_text())
    return data


@pytest.fixture(scope="session")
def chorus_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("chorus-home")


@pytest.fixture(scope="session")
def database_url(chorus_home: Path) -> str:
    return os.environ.get("DATABASE_URL") or embedded_database_url(chorus_home)


@pytest.fixture(scope="session")
def settings(chorus_home: Path, database_url: str) -> Settings:
    return Settings(home=chorus_home, database_url=database_url, offline=True, max_body_bytes=256 * 1024)


@pytest.fixture(scope="session")
async def db(settings: Settings) -> AsyncIterator[Database]:
    database = await open_database(settings)
    yield database
    await database.close()


@pytest.fixture(scope="session")
async def kb(db: Database) -> AsyncIterator[KnowledgeBase]:
    """A knowledge base on the session's database (tests/knowledge, and the browser tests' cited answers)."""
    async with standalone_knowledge_base(db, max_file_bytes=2 * 1024 * 1024) as knowledge:
        yield knowledge


@dataclass
class RunningServer:
    url: str
    app: Any


@pytest.fixture(scope="session")
async def server(settings: Settings, db: Database) -> AsyncIterator[RunningServer]:
    app = create_app(settings, database=db)
    port = free_port()
    # A request still open at the end of the session must not hold the suite's teardown for ever.
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", lifespan="on", timeout_graceful_shutdown=10
    )
    srv = uvicorn.Server(config)
    task = asyncio.create_task(srv.serve())
    for _ in range(200):
        if srv.started:
            break
        await asyncio.sleep(0.05)
    assert srv.started, "test server did not start"
    yield RunningServer(f"http://127.0.0.1:{port}", app)
    srv.should_exit = True
    await task


@dataclass
class Tenant:
    tenant_id: str
    name: str
    key: str


async def make_tenant(db: Database, role: str = "admin") -> Tenant:
    name = f"t-{uuid.uuid4().hex[:10]}"
    tenant_id = await ensure_tenant(db, name)
    key = await create_api_key(db, tenant_id=tenant_id, role=role)  # type: ignore[arg-type]
    return Tenant(tenant_id, name, key)


@pytest.fixture
async def tenant(db: Database) -> Tenant:
    return await make_tenant(db)


@pytest.fixture
async def http(server: RunningServer, tenant: Tenant) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.url, headers={"x-api-key": tenant.key}, timeout=30) as client:
        yield client


@pytest.fixture
def sdk(server: RunningServer, tenant: Tenant) -> LangGraphClient:
    return get_client(url=server.url, api_key=tenant.key)


@pytest.fixture
def acme_config() -> dict[str, Any]:
    return example("acme_support_bot")


@pytest.fixture
def voice_config() -> dict[str, Any]:
    return example("healthcare_scheduler")


def slow_bot(config: dict[str, Any], delay_ms: int = 30) -> dict[str, Any]:
    """The same bot on the offline model with a pause between streamed tokens."""
    cfg = copy.deepcopy(config)
    cfg["llm_config"] = {"provider": "offline", "model": "chorus-offline", "offline_token_delay_ms": delay_ms}
    cfg["config_metadata"]["name"] = f"slow-{uuid.uuid4().hex[:6]}"
    return cfg


PICKUP = {"messages": [{"role": "user", "content": "Please schedule a pickup for order ORD-1001"}]}


def with_pickup_tool(config: dict[str, Any], base_url: str) -> dict[str, Any]:
    """The bot plus `schedule_pickup`, a declarative POST tool (side-effecting) to `{base_url}/pickups`;
    the offline model calls it for PICKUP."""
    cfg = copy.deepcopy(config)
    cfg["config_metadata"]["name"] = f"pickup-{uuid.uuid4().hex[:6]}"
    cfg["tools_needed"].append(
        {
            "tool_name": "schedule_pickup",
            "description": "Schedule a courier pickup for an order.",
            "input_schema": {"order_id": "string"},
            "http": {"method": "POST", "url": base_url + "/pickups"},
        }
    )
    cfg["tools_available"].append({"tool_name": "schedule_pickup", "status": "implemented"})
    return cfg


@pytest.fixture
async def assistant_id(sdk: LangGraphClient, acme_config: dict[str, Any]) -> str:
    created = await sdk.assistants.create(graph_id="chatbot", context=acme_config)
    return str(created["assistant_id"])


@pytest.fixture(scope="session")
def node_sdk() -> Path:
    """tests/js with its node_modules installed from the lock file (npm ci): the official LangGraph JS SDK,
    React and esbuild at the locked versions; a skip where node is missing."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        if os.environ.get("CHORUS_REQUIRE_BROWSER"):
            pytest.fail("node and npm are required (CHORUS_REQUIRE_BROWSER) but not installed")
        pytest.skip("node/npm are not installed: the JS tests need them")
    packages = json.loads((JS / "package-lock.json").read_text())["packages"]
    direct = {**packages[""].get("dependencies", {}), **packages[""].get("devDependencies", {})}

    def installed(name: str) -> str | None:
        manifest = JS / "node_modules" / name / "package.json"
        return json.loads(manifest.read_text())["version"] if manifest.exists() else None

    if any(installed(name) != packages[f"node_modules/{name}"]["version"] for name in direct):
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--silent"], cwd=JS, check=True, timeout=600)
    return JS


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """Headless Chromium (Debian's, driven by Playwright); a skip where it is missing, a failure under
    CHORUS_REQUIRE_BROWSER (CI)."""
    async with chromium() as browser:
        yield browser


@dataclass
class ServerProcess:
    url: str
    process: subprocess.Popen[bytes]


def start_server_process(
    database_url: str, home: Path, port: int | None = None, *, env: dict[str, str] | None = None
) -> ServerProcess:
    """`chorus serve` as a real process on the shared test database (offline model), `env` added."""
    port = port or free_port()
    env = {
        **os.environ,
        **(env or {}),
        "DATABASE_URL": database_url,
        "CHORUS_HOME": str(home),
        "CHORUS_OFFLINE": "1",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "chorus.cli", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return ServerProcess(url, proc)
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise AssertionError("server did not start")


@dataclass
class Result:
    code: int
    out: str
    err: str


Cli = Callable[..., Awaitable[Result]]


@pytest.fixture
async def cli(server: RunningServer, tenant: Tenant) -> Cli:
    """`chorus ARGS` in this process, against the test server (in a thread: the server shares this loop),
    with the tenant's admin key unless `key` is given."""

    async def run(*args: str, key: str | None = None) -> Result:
        env = {"CHORUS_URL": server.url, "CHORUS_API_KEY": key or tenant.key}

        def invoke() -> Result:
            done = CliRunner().invoke(chorus_app, list(args), env=env)
            return Result(done.exit_code, done.stdout, done.stderr)

        return await asyncio.to_thread(invoke)

    return run


Client = Callable[..., Awaitable[httpx.AsyncClient]]


@pytest.fixture
async def client_of(server: RunningServer, db: Database, tenant: Tenant) -> AsyncIterator[Client]:
    """A client with a new key of the tenant, of the role and environment asked for."""
    clients: list[httpx.AsyncClient] = []

    async def make(role: str = "organization_admin", environment: str = "production") -> httpx.AsyncClient:
        key = await create_api_key(db, tenant_id=tenant.tenant_id, role=role, environment=environment)  # type: ignore[arg-type]
        clients.append(httpx.AsyncClient(base_url=server.url, headers={"x-api-key": key}, timeout=60))
        return clients[-1]

    yield make
    for client in clients:
        await client.aclose()
