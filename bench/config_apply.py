"""Apply of N unchanged config files (`chorus config apply DIR`): what a CI job re-applying a git repository of
bots pays when nothing changed.

Chorus: read the N files and send one planning request (POST /api/v1/configs/apply as a dry run: validate
every file, compare it with the current version, check for an id changed); nothing to apply, so no second
request. Timed in process (the command's own work) and as the whole `chorus` process (with Python's start).
Baseline: N plain `GET /api/v1/configs/{id}` round trips on the same server and connection, in the same run:
what a client that asked for each config on its own would pay before comparing anything.
Target (issue 9): <= 2 s for 100 files.

    uv run python -m bench.config_apply [--files 100] [--rounds 5] [--tiny]
"""

from __future__ import annotations

import asyncio
import copy
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.harness import ACME, median, parse_sizes
from bench.server_process import chorus_servers
from chorus.config_apply import has_work, read_config_files
from chorus.server_client import ServerClient

SIZES = {"files": 100, "rounds": 5}
TINY = {"files": 3, "rounds": 1}
TARGET_S = 2.0


def write_files(folder: Path, count: int) -> None:
    for i in range(count):
        config: dict[str, Any] = copy.deepcopy(ACME)
        config["config_metadata"]["config_id"] = f"bench_bot_{i:04d}"
        config["config_metadata"]["name"] = f"Bench bot {i}"
        (folder / f"bench_bot_{i:04d}.json").write_text(json.dumps(config, indent=2))


def apply_unchanged(client: ServerClient, folder: Path) -> None:
    """What `chorus config apply DIR` does when nothing changed: read, plan, find nothing to do."""
    files = read_config_files(folder)
    body = {"files": [{"path": f.path, "config": f.config} for f in files], "commit_message": "bench", "dry_run": True}
    plan = client.post("/api/v1/configs/apply", json=body)
    assert not has_work(plan) and plan["summary"]["unchanged"] == len(files), plan["summary"]


def get_each(client: ServerClient, count: int) -> None:
    for i in range(count):
        client.get(f"/api/v1/configs/bench_bot_{i:04d}")


def command(args: list[str], env: dict[str, str]) -> tuple[float, subprocess.CompletedProcess[str]]:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "chorus.cli", "config", *args], env=env, capture_output=True, text=True, timeout=120
    )
    return time.perf_counter() - started, done


def timed(work: Any, *args: Any) -> float:
    started = time.perf_counter()
    work(*args)
    return time.perf_counter() - started


async def main(*, files: int = SIZES["files"], rounds: int = SIZES["rounds"]) -> dict[str, float]:
    # No rate limit: the baseline alone sends `files` requests a round.
    async with chorus_servers(1, env={"CHORUS_RATE_LIMIT_PER_MINUTE": "0"}) as cluster:
        url = cluster.urls[0]
        with tempfile.TemporaryDirectory() as tmp, ServerClient(url, cluster.key) as client:
            folder = Path(tmp)
            write_files(folder, files)
            first = [{"path": f.path, "config": f.config} for f in read_config_files(folder)]
            done = await asyncio.to_thread(
                client.post, "/api/v1/configs/apply", json={"files": first, "commit_message": "bench"}
            )
            assert done["summary"]["create"] == files, done["summary"]
            await asyncio.to_thread(apply_unchanged, client, folder)  # warm: schema, pool, caches
            ours, baseline = [], []
            for _ in range(rounds):
                ours.append(await asyncio.to_thread(timed, apply_unchanged, client, folder))
                baseline.append(await asyncio.to_thread(timed, get_each, client, files))
            env = {**os.environ, "CHORUS_URL": url, "CHORUS_API_KEY": cluster.key}
            # The whole command, and the same process doing nothing (`--help`): Python's start and imports.
            process_s, proc = await asyncio.to_thread(command, ["apply", str(folder), "-m", "bench", "--yes"], env)
            assert proc.returncode == 0 and "Nothing to apply." in proc.stdout, proc.stderr
            startup_s, _ = await asyncio.to_thread(command, ["apply", "--help"], env)
    result = {
        "apply_s": median(ours),
        "process_s": process_s,
        "startup_s": startup_s,
        "baseline_gets_s": median(baseline),
    }
    result["ratio_gets"] = result["apply_s"] / result["baseline_gets_s"]
    print(
        f"config apply of {files} unchanged files: {result['apply_s']:.3f} s in process "
        f"({result['ratio_gets']:.2f}x {files} plain GET /api/v1/configs/{{id}} round trips, "
        f"{result['baseline_gets_s']:.3f} s; target {TARGET_S:g} s -> {result['apply_s'] / TARGET_S:.2f}x); "
        f"the whole `chorus` process {process_s:.2f} s, of which its start alone (`--help`) {startup_s:.2f} s",
        flush=True,
    )
    return result


if __name__ == "__main__":
    asyncio.run(main(**parse_sizes(__doc__, SIZES, TINY)))
