"""Build the chat model of a bot from its llm_config: primary model, then the fallback chain.

A provider without credentials is an error with a message saying what to set, unless the process
runs offline on purpose, in which case every bot uses the offline development model.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import BaseMessage
from langchain_core.runnables import Runnable

from chorus.agents.configs.model_keys import BASE_URLS_SETTING, DEFAULT_KEY_ENV, server_key_for
from chorus.agents.configs.models import LlmConfig, LlmFallback, LlmParameters
from chorus.agents.errors import ProviderUnavailable
from chorus.agents.providers.offline import OfflineChatModel

log = logging.getLogger(__name__)

ChatRunnable = Runnable[LanguageModelInput, BaseMessage]


def describe_provider_mode(offline: bool) -> str:
    if offline:
        return (
            "running OFFLINE on purpose: every bot answers with the offline development model "
            "(deterministic, no network). Set OPENAI_API_KEY and drop --offline for real models."
        )
    return "using the providers configured in each bot's llm_config"


def _single(
    spec: LlmConfig | LlmFallback, params: LlmParameters, *, offline: bool, api_key: str | None = None
) -> BaseChatModel:
    if offline or spec.provider == "offline":
        delay = (getattr(spec, "offline_token_delay_ms", None) or 0) / 1000
        name = f"offline:{spec.provider}/{spec.model}" if offline else "chorus-offline"
        return OfflineChatModel(model_name=name, token_delay_s=delay)
    key_env = spec.api_key_env or DEFAULT_KEY_ENV[spec.provider]
    try:
        key = api_key or server_key_for(spec.provider, spec.api_key_env, spec.base_url)
    except ValueError as exc:
        raise ProviderUnavailable(f"model {spec.provider}/{spec.model}: {exc}") from None
    if not key and spec.base_url is not None and spec.api_key_env is not None and api_key is None:
        raise ProviderUnavailable(
            f"model {spec.provider}/{spec.model}: the server's keys ({key_env}) are sent only to the provider's own"
            f" API or to base URLs the operator trusts ({BASE_URLS_SETTING}), and {spec.base_url} is not one"
        )
    if not key and (spec.provider == "openai_compatible" or spec.base_url is not None):
        key = "unused"  # local OpenAI-compatible servers often take no key
    if not key:
        raise ProviderUnavailable(
            f"model {spec.provider}/{spec.model} needs the environment variable {key_env}, which is not set; "
            "set it, or run the server offline on purpose (CHORUS_OFFLINE=1 or `chorus serve --offline`) "
            "to use the offline development model"
        )
    kwargs: dict[str, Any] = {k: v for k, v in params.model_dump().items() if v is not None}
    if spec.provider in ("openai", "openai_compatible"):
        from langchain_openai import ChatOpenAI

        base_url = spec.base_url or (os.environ.get("OPENAI_BASE_URL") if spec.provider == "openai" else None)
        return ChatOpenAI(model=spec.model, api_key=key, base_url=base_url, stream_usage=True, **kwargs)
    if spec.provider == "anthropic":
        from langchain_anthropic import ChatAnthropic

        if "max_tokens" not in kwargs:
            kwargs["max_tokens"] = 1024
        return ChatAnthropic(model=spec.model, api_key=key, base_url=spec.base_url, **kwargs)
    raise ProviderUnavailable(f"unknown provider '{spec.provider}'")


def build_chat_model(
    llm: LlmConfig, *, tools: list[dict[str, Any]], offline: bool, api_key: str | None = None
) -> ChatRunnable:
    """The bot's model with tools bound, wrapped in its fallback chain. `api_key`: the primary model's key
    given by the caller (the eval judge's, from the tenant's vault) instead of the environment's."""
    primary = _single(llm, llm.parameters, offline=offline, api_key=api_key)
    bound: ChatRunnable = primary.bind_tools(tools) if tools else primary
    chain: list[ChatRunnable] = []
    if not offline:
        for fb in llm.fallbacks():
            try:
                model = _single(fb, fb.parameters or llm.parameters, offline=False)
            except ProviderUnavailable as exc:
                log.warning("fallback model skipped: %s", exc.detail)
                continue
            chain.append(model.bind_tools(tools) if tools else model)
    return bound.with_fallbacks(chain) if chain else bound
