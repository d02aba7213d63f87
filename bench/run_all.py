"""Run every benchmark in turn, each printing its line (`make bench`); `--tiny` runs them at the smoke
test's sizes, `--only a,b` runs some of them.

    .venv/bin/python -m bench.run_all [--tiny] [--only turn_overhead,storage]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from types import ModuleType
from typing import Any

from bench import (
    concurrency,
    config_apply,
    config_compile,
    crash,
    db_outage,
    eval_concurrency,
    eval_judge_cache,
    hot_reload,
    ingestion_throughput,
    knowledge_search,
    memory,
    rate_limit,
    resume,
    scaling,
    sse_first_token,
    storage,
    turn_overhead,
    voice_concurrency,
    voice_turn_latency,
    vs_langgraph_dev,
    widget,
)

MODULES: list[ModuleType] = [
    turn_overhead,
    concurrency,
    storage,
    sse_first_token,
    vs_langgraph_dev,
    ingestion_throughput,
    knowledge_search,
    db_outage,
    crash,
    scaling,
    memory,
    resume,
    rate_limit,
    widget,
    config_compile,
    hot_reload,
    config_apply,
    eval_concurrency,
    eval_judge_cache,
    voice_turn_latency,
    voice_concurrency,
]


def name(module: ModuleType) -> str:
    return module.__name__.rsplit(".", 1)[-1]


async def run(module: ModuleType, *, tiny: bool) -> dict[str, Any]:
    """One benchmark at its full sizes, or at its tiny ones (its TINY)."""
    sizes: dict[str, Any] = module.TINY if tiny else {}
    result: dict[str, Any] = await module.main(**sizes)
    return result


async def main(*, tiny: bool = False, only: list[str] | None = None) -> None:
    chosen = [m for m in MODULES if only is None or name(m) in only]
    for module in chosen:
        started = time.perf_counter()
        await run(module, tiny=tiny)
        print(f"  ({name(module)}: {time.perf_counter() - started:.0f} s)", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true", help="every benchmark at the smoke test's sizes")
    parser.add_argument("--only", default=None, help="comma-separated: " + ", ".join(name(m) for m in MODULES))
    args = parser.parse_args()
    only = args.only.split(",") if args.only else None
    unknown = set(only or []) - {name(m) for m in MODULES}
    if unknown:
        parser.error(f"no benchmark named {', '.join(sorted(unknown))}")
    asyncio.run(main(tiny=args.tiny, only=only))
