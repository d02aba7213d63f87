"""Per-turn runtime overhead with a zero-latency model: Chorus vs stock LangGraph + AsyncPostgresSaver.

Same nodes, same model, same Postgres; sequential turns on one thread each (120 by default), every other
turn with a tool call. Chorus runs once per durability mode LangGraph offers ("exit": one checkpoint at
the end of the turn; "async": a checkpoint per step, written while the next step runs; "sync": a
checkpoint per step, written before the next step starts), stock LangGraph with its default, "async".
Each Chorus figure is a ratio against the stock baseline measured in the same run. Target <= 0.5.

    .venv/bin/python -m bench.turn_overhead [--turns 120] [--tiny]
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any, Literal

from bench.harness import SCRIPT, compile_chorus, compile_stock, median, open_rig, parse_sizes, turn

Durability = Literal["exit", "async", "sync"]
MODES: tuple[Durability, ...] = ("exit", "async", "sync")
SIZES = {"turns": 120}
TINY = {"turns": 4}
TAIL = 20  # the last turns of a thread: the history is longest there


async def _per_turn(graph: Any, tenant_id: str, durability: Durability, turns: int) -> list[float]:
    config = {"configurable": {"thread_id": str(uuid.uuid4()), "tenant_id": tenant_id}}
    times = []
    for i in range(turns):
        started = time.perf_counter()
        await graph.ainvoke(turn(SCRIPT[i % 2]), config, durability=durability)
        times.append(time.perf_counter() - started)
    return times


async def main(*, turns: int = SIZES["turns"]) -> dict[str, float]:
    rig = await open_rig()
    try:
        tenant_id = rig.tenant_id
        chorus = compile_chorus(rig.db, rig.chorus_saver)
        stock = compile_stock(rig.db, rig.stock_saver)
        for mode in MODES:  # warm-up
            await _per_turn(chorus, tenant_id, mode, turns)
        await _per_turn(stock, tenant_id, "async", turns)
        # Interleaved, so that a machine getting busier mid-run weighs on every mode alike.
        s = await _per_turn(stock, tenant_id, "async", turns)
        c = {mode: await _per_turn(chorus, tenant_id, mode, turns) for mode in MODES}
        s += await _per_turn(stock, tenant_id, "async", turns)
    finally:
        await rig.close()
    tail = min(TAIL, turns)
    stock_tail = s[turns - tail : turns] + s[-tail:]
    result = {"stock_ms": median(s) * 1000, "stock_tail_ms": median(stock_tail) * 1000}
    for mode in MODES:
        result[f"{mode}_ms"] = median(c[mode]) * 1000
        result[f"{mode}_tail_ms"] = median(c[mode][-tail:]) * 1000
        result[f"ratio_{mode}"] = result[f"{mode}_ms"] / result["stock_ms"]
        result[f"ratio_{mode}_tail"] = result[f"{mode}_tail_ms"] / result["stock_tail_ms"]
    modes = "; ".join(
        f"durability {mode} {result[f'{mode}_ms']:.2f} ms -> {result[f'ratio_{mode}']:.2f}x "
        f"(last {tail} turns {result[f'{mode}_tail_ms']:.2f} ms -> {result[f'ratio_{mode}_tail']:.2f}x)"
        for mode in MODES
    )
    print(
        f"turn overhead ({turns} turns/thread, median, target <= 0.5x of stock): stock LangGraph + "
        f"AsyncPostgresSaver {result['stock_ms']:.2f} ms (last {tail} turns {result['stock_tail_ms']:.2f} ms); "
        f"chorus {modes}",
        flush=True,
    )
    return result


if __name__ == "__main__":
    asyncio.run(main(**parse_sizes(__doc__, SIZES, TINY)))
