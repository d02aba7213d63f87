"""Thread expiry (CHORUS_THREAD_TTL_DAYS): expired threads go with their runs and checkpoints."""

from __future__ import annotations

from collections.abc import Callable

from langgraph.checkpoint.base import BaseCheckpointSaver

from chorus.runs.threads_repository import ThreadRepository


async def delete_expired_threads(
    threads: ThreadRepository,
    checkpointer: BaseCheckpointSaver[str],
    *,
    on_deleted: Callable[[str], None] | None = None,
) -> int:
    """Delete every expired thread, batch by batch; returns how many went."""
    total = 0
    while batch := await threads.expired():
        for thread_id in batch:
            if on_deleted is not None:
                on_deleted(thread_id)
            await checkpointer.adelete_thread(thread_id)
        total += len(batch)
    return total
