"""The built-in tools, composed into a registry: the one place that knows which tools ship with Chorus.

The process builds the registry once (the server's lifespan, the CLI) and passes it to whatever needs it.
"""

from __future__ import annotations

from chorus.agents.knowledge import bot_tools as knowledge_tools
from chorus.agents.tools import builtin_appointments, builtin_config_editor, builtin_escalation, builtin_orders
from chorus.agents.tools.registry import ToolRegistry


def build_registry() -> ToolRegistry:
    """A new registry holding every built-in tool."""
    registry = ToolRegistry()
    builtin_orders.register(registry)
    builtin_escalation.register(registry)
    builtin_appointments.register(registry)
    knowledge_tools.register(registry)
    builtin_config_editor.register(registry)
    return registry
