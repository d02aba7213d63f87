"""The same turn through `langgraph dev` (langgraph-cli[inmem], --no-reload) and through Chorus: same graph,
zero-latency offline model, both driven by the official langgraph-sdk client.

Measures runs.wait per turn and the time to the first `messages` event of runs.stream. Target: <= 0.1x.
The graph is the example bot without its knowledge block (bench/langgraph_dev/graph.py), on both sides.

    python3 -m uv run --group bench python -m bench.vs_langgraph_dev [--turns 30] [--tiny]
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from langgraph_sdk import get_client
from langgraph_sdk.schema import Config

from bench.harness import ACME_NO_KNOWLEDGE, median, parse_sizes
from bench.server_process import chorus_server, free_port

SIZES = {"turns": 30}
TINY = {"turns": 1}
LGDEV_DIR = Path(__file__).resolve().parent / "langgraph_dev"


def _message() -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": "hello", "id": str(uuid.uuid4())}]}


async def _measure(
    url: str, key: str | None, assistant_id: str, turns: int, config: Config | None
) -> tuple[float, float]:
    """Median runs.wait and time to the first messages event. `config` only for `langgraph dev`: Chorus sets the
    tenant from the API key itself."""
    client = get_client(url=url, api_key=key)
    thread = await client.threads.create()
    for _ in range(min(3, turns)):  # warm-up
        await client.runs.wait(thread["thread_id"], assistant_id, input=_message(), config=config)
    waits, firsts = [], []
    for _ in range(turns):
        started = time.perf_counter()
        await client.runs.wait(thread["thread_id"], assistant_id, input=_message(), config=config)
        waits.append(time.perf_counter() - started)
        started = time.perf_counter()
        first = None
        async for part in client.runs.stream(
            thread["thread_id"], assistant_id, input=_message(), stream_mode="messages-tuple", config=config
        ):
            if first is None and part.event == "messages":
                first = time.perf_counter() - started
            elif part.event == "error":
                raise RuntimeError(f"the run failed on {url}: {part.data}")
        if first is None:
            raise RuntimeError(f"no messages event streamed from {url}")
        firsts.append(first)
    return median(waits), median(firsts)


async def _langgraph_dev() -> tuple[subprocess.Popen[bytes], str]:
    # langgraph dev keeps its in-memory runs and checkpoints here between starts: start from none each run.
    shutil.rmtree(LGDEV_DIR / ".langgraph_api", ignore_errors=True)
    port = free_port()
    env = {**os.environ, "LANGGRAPH_CLI_NO_ANALYTICS": "1", "LANGSMITH_TRACING": "false"}
    cli = Path(sys.executable).parent / "langgraph"
    proc = subprocess.Popen(
        [str(cli), "dev", "--no-reload", "--no-browser", "--port", str(port), "--config", "langgraph.json"],
        cwd=LGDEV_DIR,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient() as client:
        for _ in range(300):
            try:
                if (await client.get(url + "/ok")).status_code == 200:
                    return proc, url
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.2)
    proc.kill()
    raise RuntimeError("langgraph dev did not start (is the bench group installed? `uv sync --group bench`)")


async def main(*, turns: int = SIZES["turns"]) -> dict[str, float]:
    proc, url = await _langgraph_dev()
    try:
        lg_wait, lg_first = await _measure(url, None, "chatbot", turns, {"configurable": {"tenant_id": "bench"}})
    finally:
        proc.terminate()
        await asyncio.to_thread(proc.wait, 20)
    async with chorus_server(ACME_NO_KNOWLEDGE) as server:
        ch_wait, ch_first = await _measure(server.url, server.key, server.assistant_id, turns, None)
    result = {
        "langgraph_dev_wait_ms": lg_wait * 1000,
        "chorus_wait_ms": ch_wait * 1000,
        "langgraph_dev_first_ms": lg_first * 1000,
        "chorus_first_ms": ch_first * 1000,
        "ratio_wait": ch_wait / lg_wait,
        "ratio_first": ch_first / lg_first,
    }
    print(
        f"vs langgraph dev ({turns} turns, median): runs.wait chorus {result['chorus_wait_ms']:.1f} ms vs "
        f"{result['langgraph_dev_wait_ms']:.1f} ms -> {result['ratio_wait']:.3f}x; first messages event "
        f"{result['chorus_first_ms']:.1f} ms vs {result['langgraph_dev_first_ms']:.1f} ms -> "
        f"{result['ratio_first']:.3f}x (target <= 0.1x)"
    )
    return result


if __name__ == "__main__":
    asyncio.run(main(**parse_sizes(__doc__, SIZES, TINY)))
