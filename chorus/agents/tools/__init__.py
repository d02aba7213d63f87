"""The tool registry shared by chat and voice, the built-in tools and declarative HTTP tools."""

from chorus.agents.tools.registry import (
    RegisteredTool,
    ToolContext,
    ToolRegistry,
    ToolResult,
    default_registry,
)

__all__ = ["RegisteredTool", "ToolContext", "ToolRegistry", "ToolResult", "default_registry"]
