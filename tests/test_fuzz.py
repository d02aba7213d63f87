"""A bounded fuzz run in the suite: schemathesis generates requests for every operation of the OpenAPI
document (few examples, fixed seed) against the test server; none may answer 5xx. `make fuzz` runs more."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from chorus.agents.storage.database import Database
from tests.conftest import RunningServer, make_tenant

EXAMPLES = 4
SEED = 7
TIME_LIMIT_S = 300  # about 60-100 s on a quiet 2-core machine; the bound only stops a runaway run


@pytest.mark.timeout(TIME_LIMIT_S + 30)
async def test_no_operation_answers_5xx(server: RunningServer, db: Database, tmp_path: Path) -> None:
    tenant = await make_tenant(db)  # its own tenant: the fuzzer deletes what it finds
    schemathesis = Path(sys.executable).with_name("schemathesis")
    process = await asyncio.create_subprocess_exec(
        str(schemathesis),
        "run",
        f"{server.url}/openapi.json",
        "-H",
        f"X-Api-Key: {tenant.key}",
        "--checks",
        "not_a_server_error",
        "--max-examples",
        str(EXAMPLES),
        "--seed",
        str(SEED),
        "--phases",
        "examples,coverage,fuzzing",
        "--workers",
        "1",  # hypothesis parses lambdas with ast; CPython 3.11 fails on that from two threads at once
        "--suppress-health-check",
        "all",
        "--generation-database",
        "none",
        "--request-timeout",
        "30",
        "--no-color",
        # An event stream answers for as long as it is asked to (`max_seconds`): the roles walk and the
        # two-process test cover it; generated requests would only wait out the timeout.
        "--exclude-path",
        "/api/v1/configs/events",
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        output, _ = await asyncio.wait_for(process.communicate(), TIME_LIMIT_S)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise AssertionError(f"the fuzz run took more than {TIME_LIMIT_S} s") from None
    text = output.decode(errors="replace")
    assert process.returncode == 0, text[-6000:]
