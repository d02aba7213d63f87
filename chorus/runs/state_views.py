"""A thread's state as the Agent Server shows it (`GET /threads/{id}/state`, history), and `select`, which
returns only some of its fields (`values.<key>` for one state key)."""

from __future__ import annotations

from typing import Any

from langgraph.types import StateSnapshot

from chorus.graphs.state import BotState
from chorus.runs.serialization import jsonable

STATE_FIELDS = ("values", "next", "tasks", "checkpoint", "metadata", "created_at", "parent_checkpoint", "interrupts")
STATE_KEYS = tuple(BotState.__annotations__)


def check_state_select(select: list[str] | None) -> list[str] | None:
    """The fields a `select` names; ValueError naming one that is neither a field nor `values.<state key>`."""
    for item in select or []:
        if item in STATE_FIELDS:
            continue
        key = item.removeprefix("values.")
        if item.startswith("values.") and key in STATE_KEYS:
            continue
        raise ValueError(
            f"cannot select '{item[:64]}': select among {list(STATE_FIELDS)} or values.<key> with a state key "
            f"of {list(STATE_KEYS)}"
        )
    return select or None


def checkpoint_ref(config: Any) -> dict[str, Any] | None:
    if not config:
        return None
    c = config.get("configurable", {})
    return {
        "thread_id": c.get("thread_id"),
        "checkpoint_ns": c.get("checkpoint_ns", ""),
        "checkpoint_id": c.get("checkpoint_id"),
    }


def state_view(snap: StateSnapshot, select: list[str] | None = None) -> dict[str, Any]:
    view = {
        "values": jsonable(snap.values),
        "next": list(snap.next),
        "checkpoint": checkpoint_ref(snap.config),
        "metadata": jsonable(snap.metadata or {}),
        "created_at": snap.created_at,
        "parent_checkpoint": checkpoint_ref(snap.parent_config),
        "tasks": [_task(t) for t in snap.tasks],
        "interrupts": [_interrupt(i) for i in snap.interrupts],
    }
    return selected(view, select)


def _interrupt(interrupt: Any) -> dict[str, Any]:
    return {"id": getattr(interrupt, "id", None), "value": jsonable(getattr(interrupt, "value", None))}


def _task(task: Any) -> dict[str, Any]:
    """A pending step of the state (LangGraph's PregelTask), as the Agent Server shows it: what clients such
    as useStream read to find a thread's interrupts after a reload."""
    return {
        "id": task.id,
        "name": task.name,
        "path": jsonable(list(task.path)),
        "error": repr(task.error) if task.error is not None else None,
        "interrupts": [_interrupt(i) for i in task.interrupts],
        "checkpoint": None,
        "state": None,
        "result": jsonable(task.result) if task.result is not None else None,
    }


def empty_state(thread_id: str, select: list[str] | None = None) -> dict[str, Any]:
    view: dict[str, Any] = {
        "values": {},
        "next": [],
        "checkpoint": {"thread_id": thread_id, "checkpoint_ns": "", "checkpoint_id": None},
        "metadata": {},
        "created_at": None,
        "parent_checkpoint": None,
        "tasks": [],
        "interrupts": [],
    }
    return selected(view, select)


def selected(view: dict[str, Any], select: list[str] | None) -> dict[str, Any]:
    if not select:
        return view
    out = {k: view[k] for k in STATE_FIELDS if k in select}
    keys = [item.removeprefix("values.") for item in select if item.startswith("values.")]
    if keys and "values" not in out:
        out["values"] = {k: view["values"][k] for k in keys if k in view["values"]}
    return out
