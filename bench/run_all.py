"""Run every benchmark in turn and print one line each (`make bench`)."""

from __future__ import annotations

import asyncio

from bench import (
    concurrency,
    db_outage,
    ingestion_throughput,
    knowledge_search,
    sse_first_token,
    storage,
    turn_overhead,
    vs_langgraph_dev,
)


async def main() -> None:
    for module in (
        turn_overhead,
        concurrency,
        storage,
        sse_first_token,
        vs_langgraph_dev,
        ingestion_throughput,
        knowledge_search,
        db_outage,
    ):
        await module.main()


if __name__ == "__main__":
    asyncio.run(main())
