"""Database outage: a server process under steady load while its Postgres stops for a few seconds.

Prints the seconds of 503 after Postgres is back (target <= 5), requests that hung past 2 s (target 0),
500s (target 0) and how fast a request answers during the outage; the outage length is the baseline.

Load: a few clients in a loop, each alternating an authenticated read (POST /threads/search) and
GET /health. Postgres is a dedicated embedded server, stopped and started with pg_ctl.
`--tiny` shortens every phase (a smoke run).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.harness import new_tenant
from bench.server_process import free_port
from chorus.agents.settings import Settings
from chorus.agents.storage.database import open_database
from chorus.agents.storage.embedded import EmbeddedServer, start_embedded
from chorus.agents.tenancy.keys import create_api_key

HUNG_S = 2.0  # an answer slower than this counts as hung
CLIENTS = 4


@dataclass(frozen=True)
class Phases:
    warm_s: float
    outage_s: float
    after_s: float


FULL = Phases(warm_s=3.0, outage_s=5.0, after_s=10.0)
SHORT = Phases(warm_s=1.0, outage_s=2.0, after_s=6.0)
TINY = {"tiny": True}


@dataclass(frozen=True)
class Sample:
    started: float
    ended: float
    status: int  # 0: no answer (timeout or connection error)

    @property
    def elapsed(self) -> float:
        return self.ended - self.started


async def _load(url: str, key: str, samples: list[Sample], stop: asyncio.Event) -> None:
    async with httpx.AsyncClient(base_url=url, headers={"x-api-key": key}, timeout=10) as client:
        turn = 0
        while not stop.is_set():
            turn += 1
            started = time.monotonic()
            try:
                if turn % 2:
                    response = await client.post("/threads/search", json={"limit": 5})
                else:
                    response = await client.get("/health")
                status = response.status_code
            except httpx.HTTPError:
                status = 0
            samples.append(Sample(started, time.monotonic(), status))
            await asyncio.sleep(0.02)


async def _wait_healthy(url: str, proc: subprocess.Popen[bytes]) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=2) as client:
        for _ in range(600):
            if proc.poll() is not None:
                raise RuntimeError("the server exited during start-up")
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get("/health")).status_code == 200:
                    return
            await asyncio.sleep(0.1)
    raise RuntimeError("the server did not become healthy")


async def _key_for(pg: EmbeddedServer, home: Path) -> str:
    db = await open_database(Settings(home=home, database_url=pg.url, offline=True), url=pg.url)
    try:
        return await create_api_key(db, tenant_id=await new_tenant(db), role="viewer")
    finally:
        await db.close()


async def main(tiny: bool = False) -> dict[str, float]:
    phases = SHORT if tiny else FULL
    home = Path(tempfile.mkdtemp(prefix="chorus-bench-outage-"))
    pg = start_embedded(home, cleanup_mode=None)
    proc: subprocess.Popen[bytes] | None = None
    try:
        key = await _key_for(pg, home)
        port = free_port()
        env = {**os.environ, "DATABASE_URL": pg.url, "CHORUS_OFFLINE": "1", "CHORUS_LOG_LEVEL": "ERROR"}
        proc = subprocess.Popen(
            [sys.executable, "-m", "chorus.cli", "serve", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=open(os.environ.get("BENCH_SERVER_LOG", os.devnull), "w"),  # noqa: SIM115
        )
        url = f"http://127.0.0.1:{port}"
        await _wait_healthy(url, proc)

        samples: list[Sample] = []
        stop = asyncio.Event()
        clients = [asyncio.create_task(_load(url, key, samples, stop)) for _ in range(CLIENTS)]
        await asyncio.sleep(phases.warm_s)
        await asyncio.to_thread(pg.stop)
        down_at = time.monotonic()
        await asyncio.sleep(phases.outage_s)
        start_at = time.monotonic()
        await asyncio.to_thread(pg.start)  # returns once Postgres accepts connections
        back_at = time.monotonic()
        await asyncio.sleep(phases.after_s)
        stop.set()
        await asyncio.gather(*clients)
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=30)
        if pg.running:
            pg.stop()
        pg.release()
        shutil.rmtree(home, ignore_errors=True)

    failed_after = [s.ended for s in samples if s.status != 200 and s.ended > back_at]
    during = [s for s in samples if down_at <= s.started < back_at]
    recovered_at = max(failed_after, default=back_at)
    figures = {
        # the baseline is Postgres' own start: 1.0x means Chorus served again the moment Postgres did
        "ratio_recovery_vs_pg_start": (recovered_at - start_at) / (back_at - start_at),
        "outage_s": back_at - down_at,
        "unavailable_after_back_s": max(failed_after, default=back_at) - back_at,
        "hung": float(sum(1 for s in samples if s.elapsed > HUNG_S or s.status == 0)),
        "server_errors": float(sum(1 for s in samples if s.status >= 500 and s.status != 503)),
        "start_command_s": back_at - start_at,
        "max_answer_during_outage_s": max((s.elapsed for s in during), default=0.0),
        "requests": float(len(samples)),
        "during_outage_503": float(sum(1 for s in during if s.status == 503)),
    }
    print(
        f"db outage: Postgres down {figures['outage_s']:.1f} s (baseline); 503 for "
        f"{figures['unavailable_after_back_s']:.2f} s after it was back (target <= 5 s; pg_ctl start took "
        f"{figures['start_command_s']:.2f} s, service back {figures['ratio_recovery_vs_pg_start']:.2f}x that); "
        f"hung (> {HUNG_S:g} s) {figures['hung']:.0f} (target 0); 500s {figures['server_errors']:.0f} (target 0); "
        f"slowest answer during the outage {figures['max_answer_during_outage_s'] * 1000:.0f} ms "
        f"({figures['during_outage_503']:.0f} requests answered 503 then); {figures['requests']:.0f} requests "
        f"from {CLIENTS} clients",
        flush=True,
    )
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tiny", action="store_true", help="short phases (a smoke run)")
    asyncio.run(main(tiny=parser.parse_args().tiny))
