"""What the checkpointer remembers of the threads this process runs, so that a turn starts without
reading its own last checkpoint back from Postgres.

Per thread: the newest checkpoint this process wrote (or read), the writes stored against it since, and
the value of each delta channel (the message history) at a known checkpoint. When a new checkpoint is
written on top of the remembered one, the delta values move forward by applying the writes in between
with the channel's reducer, exactly as LangGraph rebuilds them from the database.

Writes may reach the saver before the checkpoint they are stored against: LangGraph does not wait for a
checkpoint's put before running the step on it (the input checkpoint with durability "sync", every step
with "async"). Checkpoint ids grow with time (uuid6; the newest is the greatest, as the stock saver
assumes), so writes against an id above the remembered one are kept until that checkpoint is written.
Writes against an older checkpoint change the remembered history only if they write a delta channel.

The saver checks that the remembered checkpoint is still the thread's newest before using it, so a
turn written by another process is never missed; code that changes checkpoints behind the saver's back
(deleting a rolled-back run) must call `forget`.
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from langgraph.checkpoint.base import CheckpointTuple, PendingWrite, copy_checkpoint, writes_sort_key

from chorus.graphs.upstream import _DeltaSnapshot, _get_overwrite

Reducer = Callable[[Any, Sequence[Any]], Any]
Key = tuple[str, str]  # (thread_id, checkpoint_ns)
_Write = tuple[tuple[str, str, int], str, str, Any]  # (sort key, task_id, channel, value)
# Checkpoints whose writes arrived before them, per thread; more means puts that never finished.
_MAX_AHEAD = 16


@dataclass
class _Entry:
    latest: CheckpointTuple | None = None
    # writes stored against `latest`
    writes: list[_Write] = field(default_factory=list)
    delta_at: str | None = None
    delta_values: dict[str, Any] = field(default_factory=dict)
    # writes against checkpoints newer than `latest`, whose put has not finished yet, by checkpoint id
    ahead: dict[str, list[_Write]] = field(default_factory=dict)


def _copy_values(values: dict[str, Any]) -> dict[str, Any]:
    return {
        k: v if v is None or isinstance(v, str | int | float | bool) else copy.deepcopy(v) for k, v in values.items()
    }


class ThreadCache:
    def __init__(self, *, capacity: int, reducers: dict[str, Reducer]) -> None:
        self._entries: OrderedDict[Key, _Entry] = OrderedDict()
        self._capacity = capacity
        self.reducers = reducers

    def _entry(self, key: Key) -> _Entry:
        entry = self._entries.get(key)
        if entry is None:
            entry = self._entries[key] = _Entry()
            while len(self._entries) > self._capacity:
                self._entries.popitem(last=False)
        else:
            self._entries.move_to_end(key)
        return entry

    def forget(self, thread_id: str) -> None:
        for key in [k for k in self._entries if k[0] == str(thread_id)]:
            del self._entries[key]

    def _forget_entry(self, key: Key) -> None:
        self._entries.pop(key, None)

    # -- the newest checkpoint -------------------------------------------------------------------

    def latest_id(self, key: Key) -> str | None:
        entry = self._entries.get(key)
        if entry is None or entry.latest is None:
            return None
        return str(entry.latest.config["configurable"]["checkpoint_id"])

    def latest(self, key: Key, checkpoint_id: str | None) -> CheckpointTuple | None:
        """The remembered checkpoint if it is the one asked for (None = the newest), as a fresh copy."""
        entry = self._entries.get(key)
        if entry is None or entry.latest is None:
            return None
        tup = entry.latest
        if checkpoint_id is not None and checkpoint_id != tup.config["configurable"]["checkpoint_id"]:
            return None
        checkpoint = copy_checkpoint(tup.checkpoint)
        checkpoint["channel_values"] = _copy_values(tup.checkpoint["channel_values"])
        pending = [(task, ch, copy.deepcopy(v)) for _, task, ch, v in sorted(entry.writes, key=lambda w: w[0])]
        return CheckpointTuple(tup.config, checkpoint, copy.deepcopy(tup.metadata), tup.parent_config, pending)

    def wrote_checkpoint(self, key: Key, tup: CheckpointTuple) -> None:
        entry = self._entry(key)
        parent = tup.parent_config["configurable"]["checkpoint_id"] if tup.parent_config else None
        new_id = str(tup.config["configurable"]["checkpoint_id"])
        previous = str(entry.latest.config["configurable"]["checkpoint_id"]) if entry.latest else None
        if previous is not None and new_id < previous:
            # Put out of order (not what LangGraph does): writes against it may have been taken for older
            # ones, so nothing is remembered of it; reads go to the database.
            entry.latest, entry.writes, entry.delta_at, entry.delta_values = None, [], None, {}
            return
        whole = self._whole(tup.checkpoint["channel_values"], root=parent is None)
        if entry.delta_at is not None and entry.delta_at == parent == previous:
            advanced = self._advance(entry.delta_values, entry.writes)
            entry.delta_at, entry.delta_values = (new_id, advanced) if advanced is not None else (None, {})
        elif whole is not None:
            entry.delta_at, entry.delta_values = new_id, whole
        elif entry.delta_at != new_id:
            entry.delta_at, entry.delta_values = None, {}
        # A copy: the run that wrote it may go on changing its own checkpoint's version maps.
        entry.latest = CheckpointTuple(tup.config, copy_checkpoint(tup.checkpoint), tup.metadata, tup.parent_config, [])
        if new_id != previous:  # the same checkpoint put again keeps the writes stored against it
            entry.writes = entry.ahead.pop(new_id, [])
            entry.ahead = {cid: w for cid, w in entry.ahead.items() if cid > new_id}

    def wrote_writes(
        self,
        key: Key,
        checkpoint_id: str,
        task_id: str,
        task_path: str,
        writes: Sequence[tuple[int, str, Any]],
        *,
        upsert: bool,
    ) -> None:
        """Writes stored against `checkpoint_id`: a re-sent write replaces the first (upsert) or is ignored,
        as in the database."""
        entry = self._entry(key)
        latest_id = str(entry.latest.config["configurable"]["checkpoint_id"]) if entry.latest else None
        if checkpoint_id == latest_id:
            held = entry.writes
        elif latest_id is None or checkpoint_id > latest_id:
            # The step ran before its checkpoint's put finished: keep them for when it does.
            if checkpoint_id not in entry.ahead and len(entry.ahead) >= _MAX_AHEAD:
                self._forget_entry(key)
                return
            held = entry.ahead.setdefault(checkpoint_id, [])
        else:
            # An older checkpoint: its writes are not the newest one's pending writes, and LangGraph stores
            # a step's delta writes before the checkpoint after it, so a delta write here is unusual (an
            # update of an old checkpoint): the remembered history may no longer cover every write.
            if any(channel in self.reducers for _, channel, _ in writes):
                entry.delta_at, entry.delta_values = None, {}
            return
        for idx, channel, value in writes:
            found = next((i for i, w in enumerate(held) if w[1] == task_id and w[0][2] == idx), None)
            if found is not None:
                if not upsert:
                    continue
                del held[found]
            held.append((writes_sort_key(task_path, task_id, idx), task_id, channel, value))

    def read_checkpoint(self, key: Key, tup: CheckpointTuple) -> None:
        """A newest checkpoint read from the database is remembered, unless writes are pending on it
        (their stored order is not known here)."""
        entry = self._entry(key)
        read_id = str(tup.config["configurable"]["checkpoint_id"])
        entry.ahead = {cid: w for cid, w in entry.ahead.items() if cid > read_id}
        if tup.pending_writes:
            entry.latest, entry.writes, entry.delta_at, entry.delta_values = None, [], None, {}
            return
        # A copy: the caller hands the tuple it read to LangGraph, which changes it in place during the run.
        checkpoint = copy_checkpoint(tup.checkpoint)
        checkpoint["channel_values"] = _copy_values(tup.checkpoint["channel_values"])
        entry.latest = CheckpointTuple(tup.config, checkpoint, copy.deepcopy(tup.metadata), tup.parent_config, [])
        entry.writes = []
        if entry.delta_at != tup.config["configurable"]["checkpoint_id"]:
            entry.delta_at, entry.delta_values = None, {}

    # -- delta channels --------------------------------------------------------------------------

    def delta(self, key: Key, checkpoint_id: str, channels: list[str]) -> dict[str, Any] | None:
        entry = self._entries.get(key)
        if entry is None or entry.delta_at != checkpoint_id or not set(channels) <= entry.delta_values.keys():
            return None
        return {ch: list(entry.delta_values[ch]) for ch in channels}

    def remember_delta(self, key: Key, checkpoint_id: str, values: dict[str, Any]) -> None:
        entry = self._entry(key)
        entry.delta_at, entry.delta_values = checkpoint_id, values

    def _whole(self, channel_values: dict[str, Any], *, root: bool) -> dict[str, Any] | None:
        """The delta channels' values if the checkpoint holds them whole: a snapshot (every 1000 updates), or
        nothing at all on a thread's first checkpoint (empty). Else None: they are rebuilt from writes."""
        out: dict[str, Any] = {}
        for ch in self.reducers:
            value = channel_values.get(ch)
            if isinstance(value, _DeltaSnapshot):
                out[ch] = list(value.value or [])
            elif ch not in channel_values and root:
                out[ch] = []
            else:
                return None
        return out

    def _advance(self, values: dict[str, Any], writes: list[_Write]) -> dict[str, Any] | None:
        ordered = sorted(writes, key=lambda w: w[0])
        out: dict[str, Any] = {}
        for ch, value in values.items():
            news = [w[3] for w in ordered if w[2] == ch]
            if any(_get_overwrite(v)[0] for v in news):
                return None
            out[ch] = self.reducers[ch](list(value), news) if news else value
        return out


def fold(reducer: Reducer, seed: Any, writes: list[PendingWrite]) -> list[Any] | None:
    """The channel value after `writes` on top of `seed`, or None if an Overwrite makes it unsafe."""
    values = [w[2] for w in writes]
    if any(_get_overwrite(v)[0] for v in values):
        return None
    base: list[Any] = list(seed or [])
    return list(reducer(base, values)) if values else base
