"""`chorus voice call CONFIG NUMBER`: an outbound call by a stored voicebot, dispatched to the voice worker
through LiveKit (LIVEKIT_URL / LIVEKIT_API_KEY / LIVEKIT_API_SECRET), as `POST /api/v1/calls` does."""

from __future__ import annotations

import asyncio
from typing import Annotated, NoReturn

import typer

from chorus.cli_tenant import DEFAULT_TENANT, TenantOption
from chorus.voice_cli import voice_app


def _fail(message: str, code: int) -> NoReturn:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


@voice_app.command()
def call(
    config: Annotated[str, typer.Argument(help="The voicebot: its config file (applied) or a stored config's id.")],
    to: Annotated[str, typer.Argument(help="The number to call, E.164 (e.g. +15551234567).")],
    from_number: Annotated[
        str | None, typer.Option("--from", help="Caller ID: one of the config's numbers (default its primary).")
    ] = None,
    tenant: TenantOption = DEFAULT_TENANT,
) -> None:
    """Call a number with a voicebot: the worker (`chorus voice start`) dials it through the config's primary
    outbound trunk, then its failover trunk, and listens for voicemail before speaking."""
    from chorus.agents.errors import ChorusError
    from chorus.voice.livekit_access import LiveKitAccess
    from chorus.voice.outbound import check_number

    try:
        access = LiveKitAccess.from_env()
        check_number(to, field="to")
        if from_number is not None:
            check_number(from_number, field="--from")
    except ChorusError as exc:
        _fail(exc.detail, 2)
    asyncio.run(_call(access, config, to, from_number, tenant=tenant))


async def _call(access: object, ref: str, to: str, from_number: str | None, *, tenant: str) -> None:
    from chorus.agents.errors import ChorusError, Unavailable
    from chorus.agents.settings import load_settings
    from chorus.agents.storage.database import open_database
    from chorus.agents.tenancy.keys import ensure_tenant
    from chorus.voice.livekit_access import LiveKitAccess
    from chorus.voice.outbound import dispatch_call, prepare_call
    from chorus.voice.sip_sync import load_voicebot

    assert isinstance(access, LiveKitAccess)
    db = await open_database(load_settings())
    try:
        tenant_id = await ensure_tenant(db, tenant)
        try:
            _, key, stored = await load_voicebot(db, tenant_id, ref)
            if not stored:
                _fail(f"tenant {tenant!r} has no stored config {key!r}: `chorus config apply {ref}` first", 2)
            call = await prepare_call(db, tenant_id=tenant_id, config=key, to=to, from_number=from_number)
        except ChorusError as exc:
            _fail(exc.detail, 2)
    finally:
        await db.close()
    try:
        async with access.client() as lk:
            placed = await dispatch_call(lk, call)
    except Unavailable as exc:
        _fail(exc.detail, 1)
    typer.echo(
        f"call {placed.job.call_id} to {placed.job.to} from {placed.job.from_number} dispatched "
        f"(room {placed.room}, dispatch {placed.dispatch_id})"
    )
