"""Model providers: credentials are required unless offline on purpose; fallbacks through the real client."""

from __future__ import annotations

import pytest
from langchain_core.messages import HumanMessage

from chorus.agents.configs.models import LlmConfig
from chorus.agents.errors import ProviderUnavailable
from chorus.agents.providers.factory import build_chat_model
from chorus.agents.providers.offline import OfflineChatModel
from tests.fakes import openai_api, serve


def test_missing_credentials_fail_with_a_clear_message(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ProviderUnavailable, match="OPENAI_API_KEY") as err:
        build_chat_model(LlmConfig(provider="openai", model="gpt-4o"), tools=[], offline=False)
    assert "--offline" in err.value.detail


def test_offline_on_purpose_uses_the_offline_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    model = build_chat_model(LlmConfig(provider="openai", model="gpt-4o"), tools=[], offline=True)
    assert isinstance(model, OfflineChatModel)
    assert "gpt-4o" in model.model_name


async def test_openai_compatible_with_fallback_to_second_model(monkeypatch: pytest.MonkeyPatch) -> None:
    broken = openai_api(fail_first=100)
    healthy = openai_api(reply="Your order ships tomorrow.")
    monkeypatch.setenv("BROKEN_KEY", "k1")
    monkeypatch.setenv("HEALTHY_KEY", "k2")
    monkeypatch.setenv("CHORUS_MODEL_KEY_ENVS", "BROKEN_KEY,HEALTHY_KEY")
    async with serve(broken) as broken_url, serve(healthy) as healthy_url:
        monkeypatch.setenv("CHORUS_MODEL_BASE_URLS", f"{broken_url}/v1,{healthy_url}/v1")
        llm = LlmConfig.model_validate(
            {
                "provider": "openai_compatible",
                "model": "primary-model",
                "base_url": broken_url + "/v1",
                "api_key_env": "BROKEN_KEY",
                "parameters": {"temperature": 0.2, "max_tokens": 50, "top_p": 0.9},
                "fallback": {
                    "provider": "openai_compatible",
                    "model": "backup-model",
                    "base_url": healthy_url + "/v1",
                    "api_key_env": "HEALTHY_KEY",
                },
            }
        )
        model = build_chat_model(llm, tools=[], offline=False)
        answer = await model.with_config(max_concurrency=1).ainvoke([HumanMessage("when?")])
    assert answer.content == "Your order ships tomorrow."
    assert broken.state.calls[0]["model"] == "primary-model"
    assert broken.state.calls[0]["temperature"] == 0.2
    assert healthy.state.calls[-1]["model"] == "backup-model"
