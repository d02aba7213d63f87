"""Checking a state update (`POST /threads/{id}/state`, a thread's `supersteps`) before LangGraph applies
it: the node it is applied as, the state keys and the type of each value. Messages become LangChain
messages and go through the state's messages reducer (appended, or replacing the message with the same
id; `{"type": "remove", "id": …}` removes one)."""

from __future__ import annotations

from typing import Any, get_type_hints

from langchain_core.messages import BaseMessage, convert_to_messages
from pydantic import TypeAdapter, ValidationError

from chorus.agents.errors import InvalidInput
from chorus.graphs.compiler import CompiledBot
from chorus.graphs.state import BotState

MAX_MESSAGES = 200
# The state keys besides messages, each with its type; strict, so "yes" is not a bool.
_TYPES: dict[str, TypeAdapter[Any]] = {
    key: TypeAdapter(hint) for key, hint in get_type_hints(BotState).items() if key != "messages"
}


def update_nodes(graph: CompiledBot) -> list[str]:
    """The nodes an update may be applied as (LangGraph's own `__start__` and the like excluded)."""
    return [name for name in graph.nodes if not name.startswith("__")]


def checked_update(
    graph: CompiledBot, values: dict[str, Any] | None, as_node: str | None, *, path: str = "$"
) -> tuple[dict[str, Any] | None, str | None]:
    """The update as LangGraph takes it; InvalidInput naming the node or key that is wrong."""
    nodes = update_nodes(graph)
    if as_node is not None and as_node not in nodes:
        raise InvalidInput(
            f"as_node '{as_node[:64]}' is not a node of this bot's graph; its nodes are {nodes}",
            errors=[{"path": f"{path}.as_node", "message": f"one of {nodes}"}],
        )
    if values is None:
        return None, as_node
    keys = list(graph.builder.channels)
    unknown = [k for k in values if k not in keys]
    if unknown:
        raise InvalidInput(
            f"values has a key that is not in the bot's state: '{unknown[0][:64]}'; the state keys are {keys}",
            errors=[{"path": f"{path}.values.{k[:64]}", "message": f"not a state key; one of {keys}"} for k in unknown],
        )
    out: dict[str, Any] = {}
    for key, value in values.items():
        where = f"{path}.values.{key}"
        if key == "messages":
            out[key] = _messages(value, where)
            continue
        adapter = _TYPES.get(key)
        if adapter is None:  # a state key of a graph whose schema is not BotState: LangGraph checks it
            out[key] = value
            continue
        try:
            out[key] = adapter.validate_python(value, strict=True)
        except ValidationError as exc:
            problem = exc.errors()[0]["msg"]
            raise InvalidInput(
                f"values.{key} is invalid: {problem}", errors=[{"path": where, "message": problem}]
            ) from None
    return out, as_node


def _messages(value: Any, where: str) -> list[BaseMessage]:
    if not isinstance(value, list):
        raise InvalidInput(
            "values.messages must be a list of messages, e.g. [{'role': 'user', 'content': 'hello'}]",
            errors=[{"path": where, "message": "must be a list"}],
        )
    if len(value) > MAX_MESSAGES:
        raise InvalidInput(
            f"values.messages holds {len(value)} messages; at most {MAX_MESSAGES} per update",
            errors=[{"path": where, "message": f"at most {MAX_MESSAGES}"}],
        )
    out: list[BaseMessage] = []
    for i, message in enumerate(value):
        if not isinstance(message, dict):
            raise InvalidInput(
                f"values.messages[{i}] must be an object with a role (or type) and content",
                errors=[{"path": f"{where}[{i}]", "message": "must be an object"}],
            )
        if (message.get("type") or message.get("role")) == "remove":
            message = {"content": "", **message}  # a removal names only the id
        try:
            out.extend(convert_to_messages([message]))
        except (ValueError, TypeError, KeyError, NotImplementedError) as exc:
            reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
            raise InvalidInput(
                f"values.messages[{i}] is not a message: {reason}",
                errors=[{"path": f"{where}[{i}]", "message": "not a message (role or type, content)"}],
            ) from None
    return out
