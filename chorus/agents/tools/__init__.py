"""The tool registry shared by chat and voice, the built-in tools and declarative HTTP tools.

`chorus.agents.tools.builtins.build_registry()` composes the built-ins into a registry.
"""

from chorus.agents.tools.registry import RegisteredTool, ToolContext, ToolRegistry, ToolResult

__all__ = ["RegisteredTool", "ToolContext", "ToolRegistry", "ToolResult"]
