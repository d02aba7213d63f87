"""Per-turn runtime overhead with a zero-latency model: Chorus vs stock LangGraph + AsyncPostgresSaver.

Same nodes, same model, same Postgres; 120 sequential turns on one thread each, every other turn with a
tool call. Each side as it runs by default: Chorus with durability "exit", stock with "async". Target <= 0.5.
"""

from __future__ import annotations

import asyncio
import time
import uuid

from bench.harness import (
    SCRIPT,
    compile_chorus,
    compile_stock,
    median,
    open_rig,
    turn,
)

TURNS = 120


async def _per_turn(graph: object, tenant_id: str, durability: str = "async") -> list[float]:
    config = {"configurable": {"thread_id": str(uuid.uuid4()), "tenant_id": tenant_id}}
    times = []
    for i in range(TURNS):
        started = time.perf_counter()
        await graph.ainvoke(turn(SCRIPT[i % 2]), config, durability=durability)  # type: ignore[attr-defined]
        times.append(time.perf_counter() - started)
    return times


async def main() -> dict[str, float]:
    rig = await open_rig()
    tenant_id = rig.tenant_id
    chorus = compile_chorus(rig.db, rig.chorus_saver)
    stock = compile_stock(rig.db, rig.stock_saver)
    # Chorus runs turns with durability "exit" (one checkpoint per turn); stock LangGraph defaults to "async".
    await _per_turn(chorus, tenant_id, "exit")  # warm-up both
    await _per_turn(stock, tenant_id)
    c = await _per_turn(chorus, tenant_id, "exit")
    s = await _per_turn(stock, tenant_id)
    await rig.close()
    result = {
        "chorus_ms": median(c) * 1000,
        "stock_ms": median(s) * 1000,
        "chorus_last20_ms": median(c[-20:]) * 1000,
        "stock_last20_ms": median(s[-20:]) * 1000,
    }
    result["ratio"] = result["chorus_ms"] / result["stock_ms"]
    result["ratio_last20"] = result["chorus_last20_ms"] / result["stock_last20_ms"]
    print(
        f"turn overhead ({TURNS} turns/thread, median): chorus {result['chorus_ms']:.2f} ms, "
        f"stock {result['stock_ms']:.2f} ms -> ratio {result['ratio']:.2f}x (target <= 0.5x); "
        f"turns 101-120: {result['chorus_last20_ms']:.2f} vs {result['stock_last20_ms']:.2f} ms "
        f"-> {result['ratio_last20']:.2f}x"
    )
    return result


if __name__ == "__main__":
    asyncio.run(main())
