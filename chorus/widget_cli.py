"""`chorus widget-keys`: create, list and revoke publishable keys for the embeddable widget."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from chorus.agents.settings import load_settings
from chorus.cli_tenant import DEFAULT_TENANT, TenantOption

widget_keys_app = typer.Typer(help="Publishable keys for the embeddable chat widget.", no_args_is_help=True)


def _fail(message: str, code: int = 1) -> None:
    typer.secho(message, fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


@widget_keys_app.command("create")
def create(
    bot: Annotated[list[str], typer.Option(help="An assistant id the widget may talk to (repeat for several).")],
    origin: Annotated[
        list[str] | None, typer.Option(help="A web origin that embeds the widget, e.g. https://shop.example.com.")
    ] = None,
    tenant: TenantOption = DEFAULT_TENANT,
    allow_no_origin: Annotated[bool, typer.Option(help="Also accept requests without an Origin header.")] = False,
    key_rpm: Annotated[int, typer.Option(help="Requests per minute for the whole key.")] = 600,
    visitor_rpm: Annotated[int, typer.Option(help="Requests per minute for each visitor.")] = 30,
    name: Annotated[str | None, typer.Option(help="A label, e.g. the site.")] = None,
) -> None:
    """Create a publishable key and print it (only its hash is stored: this is the one chance to copy it)."""
    from chorus.agents.errors import ChorusError
    from chorus.agents.storage.database import open_database
    from chorus.agents.tenancy.keys import find_tenant
    from chorus.agents.tenancy.publishable_keys import NewPublishableKey, create_publishable_key

    async def run() -> NewPublishableKey:
        db = await open_database(load_settings())
        try:
            return await create_publishable_key(
                db,
                tenant_id=await find_tenant(db, tenant),
                assistant_ids=bot,
                allowed_origins=origin or [],
                allow_no_origin=allow_no_origin,
                key_per_minute=key_rpm,
                visitor_per_minute=visitor_rpm,
                name=name,
            )
        finally:
            await db.close()

    try:
        new = asyncio.run(run())
    except ChorusError as exc:
        _fail(exc.detail)
    typer.echo(new.key)


@widget_keys_app.command("list")
def list_keys(tenant: TenantOption = DEFAULT_TENANT) -> None:
    """List a tenant's publishable keys: id, prefix, bots, origins, limits, revoked (never the key)."""
    from chorus.agents.errors import ChorusError
    from chorus.agents.storage.database import open_database
    from chorus.agents.tenancy.keys import find_tenant
    from chorus.agents.tenancy.publishable_keys import PublishableKey, list_publishable_keys

    async def run() -> list[PublishableKey]:
        db = await open_database(load_settings())
        try:
            return await list_publishable_keys(db, await find_tenant(db, tenant))
        finally:
            await db.close()

    try:
        keys = asyncio.run(run())
    except ChorusError as exc:
        _fail(exc.detail)
    typer.echo(f"{'KEY ID':36}  {'PREFIX':16}  {'LIMITS/MIN':12}  {'REVOKED':16}  BOTS; ORIGINS")
    for k in keys:
        revoked = k.revoked_at.strftime("%Y-%m-%d %H:%M") if k.revoked_at else "-"
        origins = ", ".join(k.allowed_origins) + (" (+ no origin)" if k.allow_no_origin else "")
        limits = f"{k.key_per_minute}/{k.visitor_per_minute}"
        typer.echo(f"{k.key_id:36}  {k.prefix:16}  {limits:12}  {revoked:16}  {', '.join(k.assistant_ids)}; {origins}")


@widget_keys_app.command("revoke")
def revoke(
    key: Annotated[str, typer.Argument(help="The key id, its prefix (as `widget-keys list` shows) or the key.")],
    tenant: Annotated[str | None, typer.Option(help="Tenant name, when a prefix is not unique.")] = None,
) -> None:
    """Revoke a publishable key; every server on this database refuses it (and its visitors) within 5 s."""
    from chorus.agents.errors import ChorusError, NotFound
    from chorus.agents.storage.database import open_database
    from chorus.agents.tenancy.keys import find_tenant
    from chorus.agents.tenancy.publishable_keys import (
        PublishableKey,
        find_publishable_keys,
        revoke_publishable_key,
    )

    async def run() -> PublishableKey:
        db = await open_database(load_settings())
        try:
            tenant_id = await find_tenant(db, tenant) if tenant else None
            matches = await find_publishable_keys(db, key, tenant_id=tenant_id)
            if len(matches) != 1:
                found = "no publishable key matches" if not matches else f"{len(matches)} publishable keys match"
                raise NotFound(f"{found} '{key}'; pass a key id from `chorus widget-keys list --tenant NAME`")
            return await revoke_publishable_key(db, tenant_id=matches[0].tenant_id, key_id=matches[0].key_id)
        finally:
            await db.close()

    try:
        info = asyncio.run(run())
    except ChorusError as exc:
        _fail(exc.detail)
    typer.echo(f"revoked {info.key_id} ({info.prefix}{', ' + info.name if info.name else ''})")
