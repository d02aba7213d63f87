"""Voice fixtures: the example voicebot compiled on the real Postgres checkpointer, behind a GraphLLM; a stand-in
LiveKit server API (tests/fakes.py) for SIP provisioning and outbound calls."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from livekit import api

from chorus.agents.configs.models import BotConfig
from chorus.agents.storage.database import Database
from chorus.agents.tools.builtins import build_registry
from chorus.graphs.checkpointer import ChorusCheckpointer
from chorus.graphs.compiler import CompiledBot, GraphDeps, compile_bot
from chorus.voice.graph_llm import CallThread
from tests.conftest import Tenant, example
from tests.fakes import LIVEKIT_KEY, LIVEKIT_SECRET, LiveKitState, livekit_api, serve


@pytest.fixture
async def checkpointer(db: Database) -> ChorusCheckpointer:
    saver = ChorusCheckpointer(db.pool)
    await saver.setup()
    return saver


def voicebot(**overrides: Any) -> BotConfig:
    raw = example("healthcare_scheduler")
    raw.update(overrides)
    return BotConfig.model_validate(raw)


@pytest.fixture
def scheduler_graph(db: Database, checkpointer: ChorusCheckpointer) -> CompiledBot:
    deps = GraphDeps(db=db, registry=build_registry(), checkpointer=checkpointer, offline=True)
    return compile_bot(voicebot(), deps)


@pytest.fixture
def call(tenant: Tenant) -> CallThread:
    return CallThread(tenant_id=tenant.tenant_id, thread_id=str(uuid.uuid4()))


@dataclass
class LiveKit:
    url: str
    state: LiveKitState

    def client(self, secret: str = LIVEKIT_SECRET) -> api.LiveKitAPI:
        return api.LiveKitAPI(self.url, LIVEKIT_KEY, secret)

    def env(self) -> dict[str, str]:
        return {"LIVEKIT_URL": self.url, "LIVEKIT_API_KEY": LIVEKIT_KEY, "LIVEKIT_API_SECRET": LIVEKIT_SECRET}


@pytest.fixture
async def livekit() -> AsyncIterator[LiveKit]:
    app = livekit_api()
    async with serve(app) as url:
        yield LiveKit(url, app.state.lk)
