"""`chorus serve` on the embedded database: SIGTERM and Ctrl-C stop the Postgres it started."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil
import pytest

from tests.conftest import free_port


def _postgres_of(pgdata: Path) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(attrs=["name", "cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if proc.info["name"] == "postgres" and str(pgdata) in " ".join(cmdline):
            found.append(proc)
    return found


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_stops_the_embedded_postgres(sig: signal.Signals) -> None:
    # Not under pytest's tmp dir, which another pytest run may chmod 0700 (Postgres runs as another user).
    home = Path(tempfile.mkdtemp(prefix="chorus-serve-")) / "home"
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update({"CHORUS_HOME": str(home), "CHORUS_OFFLINE": "1", "CHORUS_LOG_LEVEL": "WARNING"})
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "chorus.cli", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, proc.communicate()[1]
            time.sleep(0.2)
        pgdata = (home / "pgdata").resolve()
        assert (pgdata / "postmaster.pid").exists()
        postmaster = _postgres_of(pgdata)
        assert postmaster, "the embedded postgres is not running"

        proc.send_signal(sig)
        proc.wait(timeout=30)
        assert not (pgdata / "postmaster.pid").exists(), proc.stderr.read() if proc.stderr else ""
        _gone, alive = psutil.wait_procs(postmaster, timeout=10)
        assert not alive, f"postgres still running: {alive}"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for leftover in _postgres_of((home / "pgdata").resolve()):
            leftover.kill()
        shutil.rmtree(home.parent, ignore_errors=True)
