"""Throughput of 64 concurrent threads, with checkpointing vs the same graph without a checkpointer.

Target: Chorus >= 0.8x of its own no-checkpoint throughput (the stock saver manages about 0.15x).

    .venv/bin/python -m bench.concurrency [--threads 64] [--turns 6] [--tiny]
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from bench.harness import SCRIPT, compile_chorus, compile_stock, open_rig, parse_sizes, turn

SIZES = {"threads": 64, "turns": 6}
TINY = {"threads": 2, "turns": 2}


async def _throughput(graph: Any, tenant_id: str, durability: str | None, *, threads: int, turns: int) -> float:
    async def conversation() -> None:
        config = {"configurable": {"thread_id": str(uuid.uuid4()), "tenant_id": tenant_id}}
        for i in range(turns):
            await graph.ainvoke(turn(SCRIPT[i % 2]), config, durability=durability)

    started = time.perf_counter()
    await asyncio.gather(*(conversation() for _ in range(threads)))
    return threads * turns / (time.perf_counter() - started)


async def main(*, threads: int = SIZES["threads"], turns: int = SIZES["turns"]) -> dict[str, float]:
    rig = await open_rig()
    db, tenant_id = rig.db, rig.tenant_id
    graphs = {
        "chorus": (compile_chorus(db, rig.chorus_saver), "exit"),
        "chorus_none": (compile_chorus(db, None), None),
        "stock": (compile_stock(db, rig.stock_saver), "async"),
        "stock_none": (compile_stock(db, None), None),
    }
    try:
        for graph, durability in graphs.values():  # warm-up
            await _throughput(graph, tenant_id, durability, threads=threads, turns=turns)
        rates = {
            name: await _throughput(graph, tenant_id, durability, threads=threads, turns=turns)
            for name, (graph, durability) in graphs.items()
        }
    finally:
        await rig.close()
    result = {
        **rates,
        "ratio": rates["chorus"] / rates["chorus_none"],
        "stock_ratio": rates["stock"] / rates["stock_none"],
    }
    print(
        f"{threads} concurrent threads x {turns} turns: chorus {rates['chorus']:.0f} turns/s with checkpoints vs "
        f"{rates['chorus_none']:.0f} without -> {result['ratio']:.2f}x (target >= 0.8x); stock "
        f"{rates['stock']:.0f} vs {rates['stock_none']:.0f} -> {result['stock_ratio']:.2f}x"
    )
    return result


if __name__ == "__main__":
    asyncio.run(main(**parse_sizes(__doc__, SIZES, TINY)))
