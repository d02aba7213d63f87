"""`chorus sip sync CONFIG`: a voicebot's inbound trunk, dispatch rule and outbound trunks on the LiveKit server
(LIVEKIT_URL / LIVEKIT_API_KEY / LIVEKIT_API_SECRET), made to match its config. Never prints a secret."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from chorus.cli_tenant import DEFAULT_TENANT, TenantOption

if TYPE_CHECKING:
    from chorus.voice.sip_sync import SipSync

sip_app = typer.Typer(help="SIP on LiveKit: trunks and dispatch rules from voicebot configs.", no_args_is_help=True)


def _fail(message: str, code: int = 1) -> NoReturn:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


@sip_app.command()
def sync(
    config: Annotated[str, typer.Argument(help="A voicebot config file, or the id of a stored config.")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would change; change nothing.")] = False,
    tenant: TenantOption = DEFAULT_TENANT,
) -> None:
    """Create or update the config's SIP objects on LiveKit: the inbound trunk (sip_config.primary_endpoint and
    failover_endpoint), the dispatch rule (a room per call named from livekit_config.room_prefix, dispatched to
    agent chorus-voicebot with the config id in its metadata) and the outbound trunks of the primary and
    failover providers (address and credentials from the tenant's vault: SIP_<PROVIDER>_ADDRESS, _USERNAME,
    _PASSWORD). A second run changes nothing."""
    from chorus.agents.errors import ChorusError
    from chorus.voice.livekit_access import LiveKitAccess

    try:
        access = LiveKitAccess.from_env()
    except ChorusError as exc:
        _fail(exc.detail, 2)
    asyncio.run(_sync(config, access, tenant=tenant, dry_run=dry_run))


async def _sync(ref: str, access: object, *, tenant: str, dry_run: bool) -> None:
    import aiohttp
    from livekit import api

    from chorus.agents.errors import ChorusError
    from chorus.agents.secrets.master_key import load_vault_key
    from chorus.agents.secrets.repository import SecretRepository
    from chorus.agents.secrets.service import SecretVault
    from chorus.agents.settings import load_settings
    from chorus.agents.storage.database import open_database
    from chorus.agents.tenancy.keys import ensure_tenant
    from chorus.voice.livekit_access import LiveKitAccess
    from chorus.voice.sip_sync import SipSync, desired_sip, load_voicebot, outbound_providers, provider_credentials

    assert isinstance(access, LiveKitAccess)
    settings = load_settings()
    db = await open_database(settings)
    try:
        tenant_id = await ensure_tenant(db, tenant)
        vault = SecretVault(SecretRepository(db), load_vault_key(settings))
        try:
            cfg, key, stored = await load_voicebot(db, tenant_id, ref)
            credentials = {
                provider: await provider_credentials(db, vault, tenant_id, provider)
                for provider, _ in outbound_providers(cfg).values()
            }
            desired = desired_sip(cfg, tenant_id=tenant_id, config_key=key, credentials=credentials)
        except ChorusError as exc:
            _fail(exc.detail, 2)
    finally:
        await db.close()
    async with access.client() as lk:
        run = SipSync(lk, desired, dry_run=dry_run)
        try:
            await run.run()
        except api.ServerError as exc:
            _report(run, failed=True)
            _fail(f"LiveKit refused to {run.attempting}: {exc.code} {exc.message or ''} (HTTP {exc.status})".strip())
        except (aiohttp.ClientError, TimeoutError) as exc:
            _report(run, failed=True)
            _fail(f"cannot reach LiveKit at {access.url} to {run.attempting}: {exc or type(exc).__name__}")
    _report(run)
    if not stored:
        typer.echo(
            f"note: tenant {tenant!r} has no stored config {key!r}: calls will be refused until you "
            f"`chorus config apply` it"
        )


def _report(run: SipSync, *, failed: bool = False) -> None:
    done = [c for c in run.changes if c.action != "unchanged"]
    if failed:
        typer.echo("done before the failure: " + ("; ".join(c.describe() for c in done) if done else "nothing"))
        return
    prefix = "would " if run.dry_run else ""
    for change in done:
        typer.echo(prefix + change.describe())
    if not done:
        typer.echo("no changes")
