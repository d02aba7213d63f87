"""Validate + compile a config: what an upload, an apply or a hot reload pays before a bot can answer.

Chorus: `validate_config` (JSON Schema with JSON paths, the pydantic model, cross-field and secret checks)
then `compile_bot` (the StateGraph with its tools and checkpointer) for the example support bot.
Baseline: compiling the same nodes and edges on stock LangGraph state, with no validation, in the same run.
Target (issue 9): p50 <= 5 ms.

    uv run python -m bench.config_compile [--rounds 200] [--tiny]
"""

from __future__ import annotations

import asyncio
import copy
import time

from bench.harness import ACME, compile_stock, median, open_bench_database, parse_sizes, pct
from chorus.agents.configs.validation import validate_config
from chorus.agents.tools.builtins import build_registry
from chorus.graphs.compiler import GraphDeps, compile_bot

SIZES = {"rounds": 200}
TINY = {"rounds": 5}
TARGET_MS = 5.0


async def main(*, rounds: int = SIZES["rounds"]) -> dict[str, float]:
    db, _url = await open_bench_database()
    try:
        registry = build_registry()
        deps = GraphDeps(db=db, registry=registry, checkpointer=None, offline=True)
        ours: list[float] = []
        stock: list[float] = []
        for i in range(rounds + 5):  # the first five warm caches (schema, imports)
            data = copy.deepcopy(ACME)  # as an upload parses it: a fresh object each time
            started = time.perf_counter()
            report = validate_config(data, registry=registry)
            assert report.config is not None, report.errors
            compile_bot(report.config, deps)
            took = time.perf_counter() - started
            started = time.perf_counter()
            compile_stock(db, None)
            baseline = time.perf_counter() - started
            if i >= 5:
                ours.append(took)
                stock.append(baseline)
    finally:
        await db.close()
    result = {
        "p50_ms": median(ours) * 1000,
        "p95_ms": pct(ours, 0.95) * 1000,
        "stock_compile_p50_ms": median(stock) * 1000,
    }
    result["ratio_stock"] = result["p50_ms"] / result["stock_compile_p50_ms"]
    print(
        f"config validate + compile ({rounds} rounds, the example support bot): p50 {result['p50_ms']:.2f} ms, "
        f"p95 {result['p95_ms']:.2f} ms ({result['ratio_stock']:.2f}x a stock LangGraph compile of the same "
        f"graph, {result['stock_compile_p50_ms']:.2f} ms; target {TARGET_MS:g} ms -> "
        f"{result['p50_ms'] / TARGET_MS:.2f}x)",
        flush=True,
    )
    return result


if __name__ == "__main__":
    asyncio.run(main(**parse_sizes(__doc__, SIZES, TINY)))
