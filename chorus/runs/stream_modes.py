"""Stream modes: what a run asked to stream, as LangGraph stream modes, and LangGraph's chunks as the Agent
Server's SSE events.

- values, updates, custom, debug, tasks, checkpoints: the LangGraph mode of the same name; the SSE event of
  that name carries the chunk.
- messages-tuple: LangGraph's `messages`; the `messages` event carries [message chunk, metadata].
- messages: LangGraph's `messages`; `messages/metadata` once per message id, then `messages/partial` with
  the message accumulated so far (a streamed one) or `messages/complete` (a whole one).
- events: every LangChain event of the run (`astream_events`, version v2) as an `events` event; the graph's
  own chunks among them feed the other modes asked for.

With `stream_subgraphs`, a chunk from inside a subgraph is named `<mode>|<node>:<task id>|…` (its namespace);
`events` and `metadata` never are.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from langchain_core.messages import BaseMessage, BaseMessageChunk
from langgraph.types import StreamMode as LangGraphMode

from chorus.runs.serialization import stream_metadata

StreamMode = Literal[
    "values", "updates", "messages", "messages-tuple", "events", "debug", "custom", "tasks", "checkpoints"
]
STREAM_MODES: tuple[str, ...] = get_args(StreamMode)
_SAME = ("values", "updates", "custom", "debug", "tasks", "checkpoints")
Emit = Callable[[str, Any], None]


def langgraph_modes(wanted: list[str]) -> list[LangGraphMode]:
    """The LangGraph stream modes a run needs for `wanted` (values always: the run's final state)."""
    modes: list[LangGraphMode] = ["values"]
    for mode in _SAME:
        if mode in wanted and mode not in modes:
            modes.append(mode)  # type: ignore[arg-type]  # checked against _SAME, all LangGraph modes
    if "messages" in wanted or "messages-tuple" in wanted:
        modes.append("messages")
    return modes


@dataclass
class ChunkTranslator:
    """Turns LangGraph's (namespace, mode, chunk) into the SSE events a run asked for, through `emit`."""

    wanted: list[str]
    emit: Emit
    on_first_token: Callable[[], None] | None = None
    _partial: dict[str, BaseMessageChunk] = field(default_factory=dict)
    _last_meta: Any = None
    _last_meta_json: dict[str, Any] = field(default_factory=dict)

    def __call__(self, namespace: tuple[str, ...], mode: str, chunk: Any) -> None:
        suffix = "".join(f"|{part}" for part in namespace)
        if mode != "messages":
            if mode in self.wanted:
                self.emit(mode + suffix, chunk)
            return
        msg, meta = chunk
        if self.on_first_token is not None:
            self.on_first_token()
            self.on_first_token = None
        if meta is not self._last_meta:  # one metadata dict per model call, reused for every token
            self._last_meta, self._last_meta_json = meta, stream_metadata(meta)
        if "messages-tuple" in self.wanted:
            self.emit("messages" + suffix, [msg, self._last_meta_json])
        if "messages" in self.wanted:
            self._message(suffix, msg)

    def _message(self, suffix: str, msg: BaseMessage) -> None:
        msg_id = msg.id or ""
        if msg_id not in self._partial and not isinstance(msg, BaseMessageChunk):
            self.emit("messages/metadata" + suffix, {msg_id: {"metadata": self._last_meta_json}})
            self.emit("messages/complete" + suffix, [msg])
            return
        if isinstance(msg, BaseMessageChunk):
            known = self._partial.get(msg_id)
            if known is None:
                self.emit("messages/metadata" + suffix, {msg_id: {"metadata": self._last_meta_json}})
                self._partial[msg_id] = msg
            else:
                self._partial[msg_id] = known + msg
            self.emit("messages/partial" + suffix, [self._partial[msg_id]])
        else:  # the whole message after its chunks
            self._partial.pop(msg_id, None)
            self.emit("messages/complete" + suffix, [msg])
