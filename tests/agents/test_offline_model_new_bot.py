"""A bot nobody wrote Chorus for (a restaurant whose only tool is an HTTP lookup by confirmation code) can try
its first tool offline: the offline model asks for the argument, takes the answer as written, calls the tool."""

from __future__ import annotations

import copy
import uuid
from typing import Any

import pytest
from langchain_core.messages import HumanMessage

from chorus.agents.configs.models import BotConfig
from chorus.agents.storage.database import Database
from chorus.agents.tools.builtins import build_registry
from chorus.graphs.checkpointer import ChorusCheckpointer
from chorus.graphs.compiler import GraphDeps, compile_bot
from tests.conftest import Tenant, example
from tests.fakes import restaurant_api, serve


def restaurant_bot(base: str) -> dict[str, Any]:
    cfg = copy.deepcopy(example("acme_support_bot"))
    cfg["config_metadata"].update(config_id="trattoria", name="Trattoria Bot", description="Table reservations.")
    cfg["system_prompt"].update(role="restaurant_host", instructions="Help guests with their reservations.")
    cfg.pop("knowledge")
    cfg["tools_needed"] = [
        {
            "tool_name": "lookup_reservation",
            "description": "Look up a table reservation by its confirmation.",
            "input_schema": {"confirmation": "string"},
            "http": {"method": "GET", "url": base + "/reservations/{confirmation}"},
        }
    ]
    cfg["tools_available"] = [
        {"tool_name": "lookup_reservation", "status": "implemented"},
        {"tool_name": "escalate_to_human", "status": "implemented"},
    ]
    return cfg


async def test_a_new_bots_http_tool_is_tried_offline_with_the_answer_the_user_gave(
    db: Database, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHORUS_HTTP_TOOLS_ALLOW_PRIVATE", "1")  # the stand-in API listens on loopback
    saver = ChorusCheckpointer(db.pool)
    await saver.setup()
    api = restaurant_api()
    async with serve(api) as base:
        cfg = BotConfig.model_validate(restaurant_bot(base))
        graph = compile_bot(cfg, GraphDeps(db=db, registry=build_registry(), checkpointer=saver, offline=True))
        config: Any = {"configurable": {"thread_id": str(uuid.uuid4()), "tenant_id": tenant.tenant_id}}

        async def say(text: str) -> str:
            out = await graph.ainvoke({"messages": [HumanMessage(text, id=str(uuid.uuid4()))]}, config)
            return str(out["messages"][-1].content)

        asked = await say("Hi, can you look up my reservation?")
        assert "confirmation" in asked and api.state.seen == []
        answered = await say("Sure, it's K7Q2.")
        assert api.state.seen == ["K7Q2"]  # as the guest wrote it, no format imposed
        assert "Ada Lovelace" in answered and "terrace 3" in answered

        # An unknown code reaches the API as typed, and its refusal is explained, not hidden.
        missing = await say("look up reservation zz-404")
        assert api.state.seen[-1] == "zz-404"
        assert "couldn't" in missing and "zz-404" in missing
