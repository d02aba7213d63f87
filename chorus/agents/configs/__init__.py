"""Bot configs: the Pydantic models, the JSON Schema generated from them, and validation."""

from chorus.agents.configs.models import BotConfig
from chorus.agents.configs.validation import ValidationReport, validate_config

__all__ = ["BotConfig", "ValidationReport", "validate_config"]
