"""Model providers: OpenAI, OpenAI-compatible, Anthropic, and the offline development model."""

from chorus.agents.providers.factory import build_chat_model, describe_provider_mode
from chorus.agents.providers.offline import OfflineChatModel

__all__ = ["OfflineChatModel", "build_chat_model", "describe_provider_mode"]
