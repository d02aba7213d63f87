"""Voice fixtures: the example voicebot compiled on the real Postgres checkpointer, behind a GraphLLM."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from chorus.agents.configs.models import BotConfig
from chorus.agents.storage.database import Database
from chorus.agents.tools.builtins import build_registry
from chorus.graphs.checkpointer import ChorusCheckpointer
from chorus.graphs.compiler import CompiledBot, GraphDeps, compile_bot
from chorus.voice.graph_llm import CallThread
from tests.conftest import Tenant, example


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
