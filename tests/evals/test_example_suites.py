"""Every example bot in configs/examples/ has an eval suite in configs/evals/ (scripted and simulated cases),
and each passes offline when run the way CI runs it: `chorus eval run SUITE --config ID` against a server."""

from __future__ import annotations

import asyncio
import json
from asyncio.subprocess import PIPE
from pathlib import Path
from typing import Any

import httpx
import pytest

from chorus.evals.suite_files import load
from tests.conftest import RunningServer, Tenant

ROOT = Path(__file__).resolve().parents[2]
CLI = ROOT / ".venv" / "bin" / "chorus"
BOTS = sorted(p.stem for p in (ROOT / "configs" / "examples").glob("*.json"))


def test_every_example_bot_has_a_suite_with_scripted_and_simulated_cases() -> None:
    for bot in BOTS:
        suite = ROOT / "configs" / "evals" / f"{bot}.yaml"
        assert suite.exists(), f"configs/examples/{bot}.json has no eval suite at {suite.relative_to(ROOT)}"
        cases = load(suite).suite.cases
        assert any(c.simulated_user is not None for c in cases), f"{suite.name} has no simulated user"
        assert any(c.simulated_user is None for c in cases), f"{suite.name} has no scripted case"


@pytest.mark.parametrize("bot", BOTS)
async def test_the_example_suite_passes_offline_through_the_cli(
    bot: str, server: RunningServer, tenant: Tenant, http: httpx.AsyncClient
) -> None:
    config: dict[str, Any] = json.loads((ROOT / "configs" / "examples" / f"{bot}.json").read_text())
    created = await http.post("/api/v1/configs", json=config)
    assert created.status_code == 201, created.text
    suite = ROOT / "configs" / "evals" / f"{bot}.yaml"
    process = await asyncio.create_subprocess_exec(
        str(CLI), "eval", "run", str(suite), "--config", bot, "--url", server.url, "--api-key", tenant.key,
        stdout=PIPE, stderr=PIPE, cwd=ROOT,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), timeout=300)
    text = out.decode() + err.decode()
    assert process.returncode == 0, text
    cases = load(suite).suite.cases
    assert text.count("PASS ") == len(cases), text
    assert "suite passed" in text
