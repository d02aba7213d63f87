"""A bot config cannot read the server's environment through `llm_config.api_key_env`, nor send the
operator's model key to a server of its choosing through `base_url` (chorus/agents/configs/model_keys.py)."""

from __future__ import annotations

import copy
from typing import Any

import httpx
import pytest
from langchain_core.messages import HumanMessage

from chorus.agents.configs.models import LlmConfig
from chorus.agents.errors import ProviderUnavailable
from chorus.agents.providers.factory import build_chat_model
from tests.fakes import openai_api, serve

OPERATOR_KEY = "sk-operator-0123456789"


@pytest.mark.parametrize("name", ["CHORUS_SECRET_KEY", "DATABASE_URL", "HOME", "AWS_SECRET_ACCESS_KEY"])
async def test_a_config_naming_a_server_variable_is_refused_at_upload(
    name: str, http: httpx.AsyncClient, acme_config: dict[str, Any]
) -> None:
    primary = copy.deepcopy(acme_config)
    primary["llm_config"] = {"provider": "openai", "model": "gpt-4o-mini", "api_key_env": name}
    refused = await http.post("/api/v1/configs", json=primary)
    assert refused.status_code == 422, refused.text
    problem = next(e for e in refused.json()["errors"] if e["path"] == "$.llm_config.api_key_env")
    assert "CHORUS_MODEL_KEY_ENVS" in problem["message"] and "OPENAI_API_KEY" in problem["message"]
    fallback = copy.deepcopy(acme_config)
    fallback["llm_config"]["fallback"] = [{"provider": "anthropic", "model": "claude-sonnet-4", "api_key_env": name}]
    refused = await http.post("/api/v1/configs", json=fallback)
    assert refused.status_code == 422 and "$.llm_config.fallback[0].api_key_env" in refused.text


def test_a_variable_not_allowed_is_refused_when_the_model_is_built(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHORUS_SECRET_KEY", "the-vault-key")
    spec = LlmConfig(provider="openai", model="gpt-4o", api_key_env="CHORUS_SECRET_KEY")
    with pytest.raises(ProviderUnavailable, match="not a model key this server lets configs use"):
        build_chat_model(spec, tools=[], offline=False)
    monkeypatch.setenv("CHORUS_MODEL_KEY_ENVS", "TEAM_OPENAI_KEY")
    monkeypatch.setenv("TEAM_OPENAI_KEY", "sk-team")
    allowed = LlmConfig(provider="openai", model="gpt-4o", api_key_env="TEAM_OPENAI_KEY")
    assert build_chat_model(allowed, tools=[], offline=False) is not None


async def test_the_operators_key_goes_only_to_a_trusted_base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", OPERATOR_KEY)
    monkeypatch.delenv("CHORUS_MODEL_BASE_URLS", raising=False)
    stand_in = openai_api(reply="hi")
    async with serve(stand_in) as url:
        for provider in ("openai_compatible", "openai"):
            spec = LlmConfig(provider=provider, model="gpt-4o-mini", base_url=f"{url}/v1")
            await build_chat_model(spec, tools=[], offline=False).ainvoke([HumanMessage("hello")])
        explicit = LlmConfig(provider="openai", model="gpt-4o", base_url=f"{url}/v1", api_key_env="OPENAI_API_KEY")
        with pytest.raises(ProviderUnavailable, match="CHORUS_MODEL_BASE_URLS"):
            build_chat_model(explicit, tools=[], offline=False)
        assert stand_in.state.authorizations == ["Bearer unused", "Bearer unused"]

        monkeypatch.setenv("CHORUS_MODEL_BASE_URLS", f"{url}/v1")
        await build_chat_model(explicit, tools=[], offline=False).ainvoke([HumanMessage("hello")])
        assert stand_in.state.authorizations[-1] == f"Bearer {OPERATOR_KEY}"
