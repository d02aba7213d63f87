"""The official JS SDK's StoreClient (npm, pinned in tests/js) sends what the Python SDK does, and Chorus
answers it: tests/js/store_flow.mjs."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

from tests.conftest import RunningServer, Tenant


async def test_store_through_the_js_sdk(node_sdk: Path, server: RunningServer, tenant: Tenant) -> None:
    process = await asyncio.create_subprocess_exec(
        "node",
        "store_flow.mjs",
        cwd=node_sdk,
        env={**os.environ, "CHORUS_URL": server.url, "CHORUS_KEY": tenant.key},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, stderr.decode()[-3000:]
    seen = json.loads(stdout.decode().strip().splitlines()[-1])
    assert seen["item"] == {
        "namespace": ["js", "u1"],
        "key": "refund",
        "value": {"text": "Refunds reach your card within 5 days."},
        "createdAt": True,
    }
    assert seen["ranked"][0] == "refund" and seen["scored"] is True
    assert seen["filtered"] == ["plain"]
    assert seen["namespaces"] == [["js", "u1"], ["js", "u2"]]
    assert seen["afterDelete"] == 404
