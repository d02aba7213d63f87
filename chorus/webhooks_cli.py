"""`chorus webhooks signing-secret`: the secret a tenant's webhook receivers verify signatures with.

It is derived from the vault key and the tenant (chorus/runs/webhook_signing.py), never stored, and never
returned by the API: the operator, who holds the vault key, prints it here and hands it to the tenant."""

from __future__ import annotations

import asyncio

import typer

from chorus.agents.settings import load_settings
from chorus.cli_tenant import DEFAULT_TENANT, TenantOption

webhooks_app = typer.Typer(help="Run webhooks (their signing secret).", no_args_is_help=True)


@webhooks_app.command("signing-secret")
def signing_secret(tenant: TenantOption = DEFAULT_TENANT) -> None:
    """Print the tenant's webhook signing secret (`whsec_…`): its receivers check `X-Chorus-Signature` with
    it. It changes only if the vault key (CHORUS_SECRET_KEY) changes."""
    from chorus.agents.errors import ChorusError
    from chorus.agents.secrets.master_key import load_vault_key
    from chorus.agents.storage.database import open_database
    from chorus.agents.tenancy.keys import find_tenant
    from chorus.runs.webhook_signing import WebhookSigner

    async def run() -> str:
        settings = load_settings()
        signer = WebhookSigner.from_vault_key(load_vault_key(settings))
        db = await open_database(settings)
        try:
            return signer.secret(await find_tenant(db, tenant))
        finally:
            await db.close()

    try:
        secret = asyncio.run(run())
    except ChorusError as exc:
        typer.secho(exc.detail, fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from None
    typer.echo(secret)
