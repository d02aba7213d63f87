"""The tool registry: tools registered in Python with a name, a description and typed input.

The JSON Schema of a tool's input is derived from its function signature. Configs refer to tools by
`tool_name`; a config's declarative HTTP tools join the registry's built-ins per compiled bot.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, get_type_hints

from pydantic import BaseModel, ConfigDict, create_model

from chorus.agents.errors import InvalidInput, NotFound, ToolError
from chorus.agents.tools.schemas import argument_errors

if TYPE_CHECKING:
    from chorus.agents.storage.database import Database


class SecretResolver(Protocol):
    """Reveals one of the calling tenant's secrets to a tool call (the vault implements it and audits it).

    Raises NotFound for a name the tenant has no secret under, SecretUndecryptable if the key is wrong."""

    async def reveal(self, ctx: ToolContext, name: str, *, tool_name: str) -> str: ...


@dataclass(frozen=True)
class ToolContext:
    """What a tool may know about the call: who is calling and where, and how to reach the tenant's secrets."""

    tenant_id: str
    db: Database
    thread_id: str | None = None
    run_id: str | None = None
    tool_call_id: str | None = None  # the model's id for this call; stable when a turn is retried
    environment: str = "production"  # the run's environment ('staging' or 'production'): picks its secrets
    secrets: SecretResolver | None = field(default=None, repr=False, compare=False)


@dataclass
class ToolResult:
    """A tool's answer. `state_update` lets a tool change conversation state (e.g. escalation)."""

    content: Any
    state_update: dict[str, Any] = field(default_factory=dict)


ToolFn = Callable[..., Awaitable[Any]]


@dataclass(frozen=True)
class RegisteredTool:
    name: str
    description: str
    input_schema: dict[str, Any]
    fn: ToolFn
    kind: str = "builtin"
    # Changes the world (a refund, a booking, a POST): such a call runs at most once per tool call
    # (ledger.py). Read-only tools say False and skip the ledger's two statements.
    side_effects: bool = True

    def openai_schema(self) -> dict[str, Any]:
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": self.input_schema},
        }

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "kind": self.kind,
            "side_effects": self.side_effects,
            "input_schema": self.input_schema,
        }

    def check_arguments(self, arguments: Any) -> None:
        if not isinstance(arguments, dict):
            raise InvalidInput(f"arguments of tool '{self.name}' must be a JSON object")
        errors = argument_errors(self.input_schema, arguments)
        if errors:
            raise InvalidInput(f"arguments do not match the input schema of tool '{self.name}'", errors=errors)

    async def invoke(self, ctx: ToolContext, arguments: dict[str, Any]) -> tuple[ToolResult, float]:
        """Validate, run, and return (result, milliseconds). Tool failures raise ToolError."""
        self.check_arguments(arguments)
        started = time.perf_counter()
        try:
            out = await self.fn(ctx, **arguments)
        except (ToolError, InvalidInput):
            raise
        except Exception as exc:  # a tool's own bug must not crash the turn
            raise ToolError(f"tool '{self.name}' failed: {type(exc).__name__}: {exc}") from exc
        elapsed = (time.perf_counter() - started) * 1000
        return (out if isinstance(out, ToolResult) else ToolResult(content=out)), elapsed


def schema_from_signature(fn: ToolFn) -> dict[str, Any]:
    hints = get_type_hints(fn, include_extras=True)
    params = list(inspect.signature(fn).parameters.values())[1:]  # first parameter is the ToolContext
    fields: dict[str, Any] = {}
    for p in params:
        default = ... if p.default is inspect.Parameter.empty else p.default
        fields[p.name] = (hints[p.name], default)
    model: type[BaseModel] = create_model(f"{fn.__name__}_input", __config__=ConfigDict(extra="forbid"), **fields)
    schema = model.model_json_schema()
    schema.pop("title", None)
    for prop in schema.get("properties", {}).values():
        prop.pop("title", None)
    return schema


class ToolRegistry:
    def __init__(self) -> None:
        self._tools: dict[str, RegisteredTool] = {}

    def register(self, tool: RegisteredTool) -> RegisteredTool:
        if tool.name in self._tools:
            raise ValueError(f"tool '{tool.name}' is already registered")
        self._tools[tool.name] = tool
        return tool

    def tool(self, name: str, description: str, *, side_effects: bool) -> Callable[[ToolFn], ToolFn]:
        """Decorator: register an async function `(ctx, **typed_args)` as a tool. `side_effects`: whether it
        changes anything outside the conversation (then a tool call runs it at most once)."""

        def wrap(fn: ToolFn) -> ToolFn:
            self.register(RegisteredTool(name, description, schema_from_signature(fn), fn, side_effects=side_effects))
            return fn

        return wrap

    def get(self, name: str) -> RegisteredTool:
        try:
            return self._tools[name]
        except KeyError:
            raise NotFound(f"no tool named '{name}'; GET /api/v1/tools lists the registered tools") from None

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def names(self) -> list[str]:
        return sorted(self._tools)

    def all(self) -> list[RegisteredTool]:
        return [self._tools[n] for n in self.names()]
