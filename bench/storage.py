"""Checkpoint storage after 200 turns of one thread, against the bytes of its messages (as JSON).

Target: Chorus <= 3x. The stock saver stores the whole history again at every step (quadratic).

    .venv/bin/python -m bench.storage [--turns 200] [--tiny]
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

from bench.harness import SCRIPT, compile_chorus, compile_stock, open_rig, parse_sizes, turn
from chorus.agents.storage.database import Database

SIZES = {"turns": 200}
TINY = {"turns": 4}


async def stored_bytes(db: Database, thread_id: str) -> int:
    async with db.connection() as conn:
        cur = await conn.execute(
            "SELECT (SELECT coalesce(sum(pg_column_size(c.*)), 0) FROM checkpoints c WHERE thread_id = %(t)s)"
            " + (SELECT coalesce(sum(pg_column_size(b.*)), 0) FROM checkpoint_blobs b WHERE thread_id = %(t)s)"
            " + (SELECT coalesce(sum(pg_column_size(w.*)), 0) FROM checkpoint_writes w WHERE thread_id = %(t)s)"
            " AS n",
            {"t": thread_id},
        )
        row = await cur.fetchone()
    assert row is not None
    return int(row["n"])


async def _run(graph: Any, db: Database, tenant_id: str, durability: str, turns: int) -> tuple[int, int]:
    thread_id = str(uuid.uuid4())
    config = {"configurable": {"thread_id": thread_id, "tenant_id": tenant_id}}
    for i in range(turns):
        await graph.ainvoke(turn(SCRIPT[i % 2]), config, durability=durability)
    state = await graph.aget_state(config)
    message_bytes = sum(len(json.dumps(m.model_dump(mode="json"))) for m in state.values["messages"])
    return await stored_bytes(db, thread_id), message_bytes


async def main(*, turns: int = SIZES["turns"]) -> dict[str, float]:
    rig = await open_rig()
    db, tenant_id = rig.db, rig.tenant_id
    try:
        c_stored, c_msgs = await _run(compile_chorus(db, rig.chorus_saver), db, tenant_id, "exit", turns)
        ca_stored, ca_msgs = await _run(compile_chorus(db, rig.chorus_saver), db, tenant_id, "async", turns)
        cs_stored, cs_msgs = await _run(compile_chorus(db, rig.chorus_saver), db, tenant_id, "sync", turns)
        s_stored, s_msgs = await _run(compile_stock(db, rig.stock_saver), db, tenant_id, "async", turns)
    finally:
        await rig.close()
    result = {
        "ratio": c_stored / c_msgs,
        "ratio_async": ca_stored / ca_msgs,
        "ratio_sync": cs_stored / cs_msgs,
        "stock_ratio": s_stored / s_msgs,
        "chorus_bytes": c_stored,
        "stock_bytes": s_stored,
        "message_bytes": c_msgs,
    }
    print(
        f"storage after {turns} turns: messages {c_msgs / 1024:.0f} KiB; chorus {c_stored / 1024:.0f} KiB -> "
        f"{result['ratio']:.2f}x with durability exit (target <= 3x; {result['ratio_async']:.2f}x with async, "
        f"{result['ratio_sync']:.2f}x with sync); "
        f"stock {s_stored / 1024:.0f} KiB -> {result['stock_ratio']:.1f}x"
    )
    return result


if __name__ == "__main__":
    asyncio.run(main(**parse_sizes(__doc__, SIZES, TINY)))
