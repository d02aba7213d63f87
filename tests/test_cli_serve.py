"""`chorus serve` on the embedded database: SIGTERM and Ctrl-C stop the Postgres it started; --workers N;
--demo's key, said plainly once the server listens and the same after a restart."""

from __future__ import annotations

import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
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


def _start(home: Path, *args: str, stdout: int = subprocess.DEVNULL) -> tuple[subprocess.Popen[str], int]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update({"CHORUS_HOME": str(home), "CHORUS_OFFLINE": "1", "CHORUS_LOG_LEVEL": "WARNING"})
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "chorus.cli", "serve", "--port", str(port), *args],
        env=env,
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
    )
    return proc, port


def _wait_healthy(proc: subprocess.Popen[str], port: int) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert proc.poll() is None, proc.communicate()[1]
        time.sleep(0.2)
    raise AssertionError("the server did not become healthy")


def _workers_of(proc: subprocess.Popen[str]) -> list[psutil.Process]:
    """The worker processes uvicorn's supervisor spawned (not multiprocessing's resource tracker; Postgres is
    not a child of `chorus serve`)."""
    found = []
    for child in psutil.Process(proc.pid).children():
        try:
            if "spawn_main" in " ".join(child.cmdline()) and child.status() != psutil.STATUS_ZOMBIE:
                found.append(child)
        except psutil.Error:  # gone, or a zombie not yet reaped by the supervisor
            continue
    return found


def _cleanup(proc: subprocess.Popen[str], home: Path) -> None:
    if proc.poll() is None:
        for child in psutil.Process(proc.pid).children(recursive=True):
            child.kill()
        proc.kill()
        proc.wait()
    for leftover in _postgres_of((home / "pgdata").resolve()):
        leftover.kill()
    shutil.rmtree(home.parent, ignore_errors=True)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_stops_the_embedded_postgres(sig: signal.Signals) -> None:
    # Not under pytest's tmp dir, which another pytest run may chmod 0700 (Postgres runs as another user).
    home = Path(tempfile.mkdtemp(prefix="chorus-serve-")) / "home"
    proc, port = _start(home)
    try:
        _wait_healthy(proc, port)
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
        _cleanup(proc, home)


def test_workers_serve_one_port_replace_a_dead_worker_and_stop_postgres_on_sigterm() -> None:
    home = Path(tempfile.mkdtemp(prefix="chorus-serve-")) / "home"
    proc, port = _start(home, "--workers", "2")
    try:
        _wait_healthy(proc, port)
        workers = _workers_of(proc)
        assert len(workers) == 2, workers
        pgdata = (home / "pgdata").resolve()
        postmaster = _postgres_of(pgdata)
        assert postmaster, "the embedded postgres is not running"

        workers[0].kill()  # kill -9 one worker: the supervisor starts another, the port keeps answering
        deadline = time.monotonic() + 120  # a new worker imports and starts the app: slow on a loaded machine
        while time.monotonic() < deadline:
            alive = [w for w in _workers_of(proc) if w.pid != workers[0].pid]
            if len(alive) == 2:
                break
            time.sleep(0.5)
        assert len(alive) == 2, f"the dead worker was not replaced: {alive}"
        _wait_healthy(proc, port)

        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=120)
        _gone, still = psutil.wait_procs(alive, timeout=10)
        assert not still, f"workers outlived the supervisor: {still}"
        assert not (pgdata / "postmaster.pid").exists(), proc.stderr.read() if proc.stderr else ""
        _gone, left = psutil.wait_procs(postmaster, timeout=10)
        assert not left, f"postgres still running: {left}"
    finally:
        _cleanup(proc, home)


def test_zero_workers_is_a_clear_error() -> None:
    home = Path(tempfile.mkdtemp(prefix="chorus-serve-")) / "home"
    proc, _port = _start(home, "--workers", "0")
    try:
        _out, err = proc.communicate(timeout=60)
        assert proc.returncode == 2
        assert "--workers must be at least 1 (got 0)" in err
        assert not (home / "pgdata").exists(), "nothing may start for a bad worker count"
    finally:
        _cleanup(proc, home)


def test_a_malformed_cors_origin_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHORUS_CORS_ORIGINS", "localhost:3000")
    home = Path(tempfile.mkdtemp(prefix="chorus-serve-")) / "home"
    proc, _port = _start(home)
    try:
        _out, err = proc.communicate(timeout=60)
        assert proc.returncode != 0
        assert "CHORUS_CORS_ORIGINS: 'localhost:3000' is not an origin" in err and "Traceback" not in err
        assert not (home / "pgdata").exists(), "nothing may start for a bad setting"
    finally:
        _cleanup(proc, home)


def _banner(proc: subprocess.Popen[str]) -> list[str]:
    """The lines `chorus serve --demo` prints, up to its widget demo link (read aside: a pipe's readline blocks)."""
    lines: queue.Queue[str] = queue.Queue()
    assert proc.stdout is not None
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout or ()], daemon=True).start()
    said: list[str] = []
    deadline = time.monotonic() + 240  # the demo's knowledge is embedded before the server listens
    while time.monotonic() < deadline:
        try:
            said.append(lines.get(timeout=1).rstrip("\n"))
        except queue.Empty:
            assert proc.poll() is None, f"the server stopped: {said}\n{proc.communicate()[1]}"
            continue
        if said[-1].startswith("chorus: the chat widget on a demo page: "):
            return said
    raise AssertionError(f"no widget demo link within 4 minutes: {said}")


def _acme_bots(port: int, key: str) -> list[str]:
    found = httpx.post(
        f"http://127.0.0.1:{port}/assistants/search", json={"name": "Acme Support"}, headers={"X-Api-Key": key}
    )
    return [bot["assistant_id"] for bot in found.json()]


def test_the_demo_key_is_said_plainly_once_listening_and_kept_across_restarts() -> None:
    home = Path(tempfile.mkdtemp(prefix="chorus-serve-")) / "home"
    keys, bots = [], []
    proc: subprocess.Popen[str] | None = None
    try:
        for _restart in range(2):
            proc, port = _start(home, "--demo", stdout=subprocess.PIPE)
            said = _banner(proc)
            # Said once it listens: the page it links to answers at once.
            assert httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code == 200
            intro = next(i for i, line in enumerate(said) if line.startswith("chorus: demo tenant API key"))
            assert said[intro - 1] == f"chorus: ready on http://localhost:{port}"
            key = said[intro + 1]
            assert re.fullmatch(r"chorus_[\w-]+", key), f"the key is not alone on its line: {said}"
            assert (home / "demo_api_key").read_text() == key
            assert said[intro + 2] == f"chorus: open http://localhost:{port}/?key={key}"
            # The widget's demo page, with a publishable key for this server's own origins.
            demo_page = said[intro + 3].rsplit(" ", 1)[1]
            assert demo_page.startswith(f"http://localhost:{port}/static/widget-demo.html?key=pk_chorus_"), said
            assert httpx.get(demo_page.replace("localhost", "127.0.0.1"), timeout=5).status_code == 200
            widget_key = demo_page.split("key=", 1)[1]
            for origin in (f"http://localhost:{port}", f"http://127.0.0.1:{port}"):
                look = httpx.get(
                    f"http://127.0.0.1:{port}/widget/v1/config",
                    headers={"X-Publishable-Key": widget_key, "Origin": origin},
                    timeout=5,
                )
                assert look.status_code == 200 and look.json()["name"] == "Acme Support", look.text
            keys.append(key)
            bots.append(_acme_bots(port, key))
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
    finally:
        if proc is not None:
            _cleanup(proc, home)
    assert keys[0] == keys[1], "a restart gave the demo a new key"
    assert len(bots[0]) == 1 and bots[1] == bots[0], f"the demo's bot is not one and the same: {bots}"
