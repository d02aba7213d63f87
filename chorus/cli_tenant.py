"""The `--tenant` option of every `chorus` command that works within one tenant: one default for all of
them (the demo tenant `make run` fills), which CHORUS_TENANT changes for a shell session."""

from __future__ import annotations

from typing import Annotated

import typer

from chorus.agents.tenancy.keys import DEFAULT_TENANT

TenantOption = Annotated[
    str,
    typer.Option(
        "--tenant",
        envvar="CHORUS_TENANT",
        help="Tenant name (the default is the tenant `make run` fills, which its demo key belongs to).",
    ),
]

__all__ = ["DEFAULT_TENANT", "TenantOption"]
