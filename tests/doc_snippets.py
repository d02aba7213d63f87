"""The Markdown the project ships, as its tests read it: fenced blocks with where they start, and a shell
block run as a reader would run it (against the test database and server, with tenants of its own)."""

from __future__ import annotations

import asyncio
import os
import re
import uuid
from asyncio.subprocess import PIPE
from dataclasses import dataclass
from pathlib import Path

from chorus.demo import DEMO_KEY_FILE
from tests.conftest import Tenant

ROOT = Path(__file__).resolve().parents[1]
CLI = ROOT / ".venv" / "bin" / "chorus"


@dataclass(frozen=True)
class Fence:
    """A fenced block: `source` is the file relative to the repository, `line` where its fence opens."""

    source: str
    line: int
    language: str
    body: str

    @property
    def where(self) -> str:
        return f"{self.source}:{self.line}"


def fences(path: Path) -> list[Fence]:
    source = str(path.relative_to(ROOT))
    found: list[Fence] = []
    opened: tuple[int, str] | None = None
    body: list[str] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.startswith("```"):
            body.append(line)
        elif opened is None:
            opened, body = (number, line[3:].strip()), []
        else:
            found.append(Fence(source, opened[0], opened[1], "\n".join(body) + "\n"))
            opened = None
    assert opened is None, f"{source}:{opened[0]}: a ``` fence is never closed"
    return found


def own_tenants(script: str, suffix: str) -> str:
    """Every `--tenant NAME` becomes `--tenant NAME-<suffix>`: the test's tenants are its own."""
    return re.sub(r"--tenant (\w[\w-]*)", rf"--tenant \1-{suffix}", script)


def as_reader_runs_it(block: str, *, server_url: str, home: Path, suffix: str) -> str:
    """The block as it runs here: `localhost:8000` is the test server, `.chorus/` the test's CHORUS_HOME and
    every `--tenant NAME` a tenant of its own."""
    script = block.replace("localhost:8000", server_url.removeprefix("http://")).replace(".chorus/", f"{home}/")
    return own_tenants(script, suffix)


async def run_shell_block(
    block: str, *, where: str, server_url: str, tenant: Tenant, database_url: str, home: Path
) -> None:
    """Run `block` with bash -e from the repository root, as a reader would after `make run`, with the test's
    tenant in the demo tenant's place: `$KEY` (and the demo key file) hold its key, and it is the tenant of
    commands given no `--tenant`."""
    suffix = uuid.uuid4().hex[:8]
    (home / DEMO_KEY_FILE).write_text(tenant.key)
    script = as_reader_runs_it(block, server_url=server_url, home=home, suffix=suffix)
    env = {
        **os.environ,
        "KEY": tenant.key,
        "DATABASE_URL": database_url,
        "CHORUS_HOME": str(home),
        "CHORUS_TENANT": tenant.name,
        "CHORUS_OFFLINE": "1",
        "CHORUS_LOG_LEVEL": "WARNING",
    }
    # Not subprocess.run: the test server answers the block's curl on this very event loop.
    process = await asyncio.create_subprocess_exec(
        "bash", "-e", "-o", "pipefail", "-c", script, cwd=ROOT, env=env, stdout=PIPE, stderr=PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=240)
    assert process.returncode == 0, (
        f"the shell block at {where} failed:\n{block}\n{out.decode()[-3000:]}\n{err.decode()[-3000:]}"
    )
