"""The `chorus` command: serve, chat, config validate/schema/versions/diff/rollback/apply/pull/approve/reject,
keys create/list/revoke, threads prune, kb (knowledge), secrets (the vault), widget-keys (publishable keys for
the widget), webhooks (signing secret), voice (worker, simulate, call), sip sync (trunks and dispatch rules)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from chorus import (
    config_apply_cli,  # noqa: F401  (adds apply, pull, approve, reject to config_app)
    config_deploy_cli,  # noqa: F401  (adds deploy, promote, undeploy, deployments, environments)
    voice_call_cli,  # noqa: F401  (adds call to voice_app)
)
from chorus.agents.settings import Settings, load_settings
from chorus.cli_tenant import DEFAULT_TENANT, TenantOption
from chorus.config_cli import config_app
from chorus.eval_cli import eval_app
from chorus.kb_cli import kb_app
from chorus.secrets_cli import secrets_app
from chorus.sip_cli import sip_app
from chorus.voice_cli import voice_app
from chorus.webhooks_cli import webhooks_app
from chorus.widget_cli import widget_keys_app

if TYPE_CHECKING:
    from chorus.demo import DemoKeys

app = typer.Typer(
    help="Chorus: a self-hosted runtime for customer-facing AI agents.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
keys_app = typer.Typer(help="API keys.", no_args_is_help=True)
threads_app = typer.Typer(help="Threads.", no_args_is_help=True)
app.add_typer(config_app, name="config")
app.add_typer(eval_app, name="eval")
app.add_typer(keys_app, name="keys")
app.add_typer(threads_app, name="threads")
app.add_typer(kb_app, name="kb")
app.add_typer(secrets_app, name="secrets")
app.add_typer(widget_keys_app, name="widget-keys")
app.add_typer(webhooks_app, name="webhooks")
app.add_typer(voice_app, name="voice")
app.add_typer(sip_app, name="sip")


def _fail(message: str, code: int = 1) -> NoReturn:
    typer.secho(message, fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    offline: Annotated[bool, typer.Option(help="Answer with the offline development model, on purpose.")] = False,
    demo: Annotated[bool, typer.Option(help="Create the demo tenant, print its key, load the example bots.")] = False,
    workers: Annotated[
        int,
        typer.Option(
            help="Server processes on this port, each serving the API and running queued work "
            "(about one per core; add hosts behind a load balancer to go further)."
        ),
    ] = 1,
) -> None:
    """Run the API server (embedded Postgres unless DATABASE_URL is set).

    SIGTERM and Ctrl-C shut the app down gracefully (each process drains its runs), then stop the
    embedded Postgres this process started (the last process sharing its data directory stops it); an
    external DATABASE_URL is left alone. With --workers N, this process starts Postgres and applies the
    migrations once, then supervises N worker processes (a worker that dies is replaced).
    """
    from chorus.agents.errors import ServerMisconfigured
    from chorus.agents.observability.logs import configure_logging
    from chorus.agents.providers.factory import describe_provider_mode
    from chorus.agents.secrets.master_key import load_vault_key
    from chorus.agents.storage.database import open_database
    from chorus.agents.storage.embedded import release_embedded_servers
    from chorus.cors import parse_origins
    from chorus.demo import bootstrap_demo
    from chorus.server import create_app

    if workers < 1:
        _fail(
            f"chorus serve: --workers must be at least 1 (got {workers}): each worker is a process serving the API", 2
        )
    if offline:
        os.environ["CHORUS_OFFLINE"] = "1"
    settings = load_settings()
    configure_logging(settings.log_level)
    try:
        load_vault_key(settings)  # a malformed CHORUS_SECRET_KEY stops here, before anything starts
        parse_origins(settings.cors_origins)  # so does a malformed CHORUS_CORS_ORIGINS
    except ServerMisconfigured as exc:
        _fail(f"chorus serve: {exc.detail}")
    typer.echo(f"chorus: {describe_provider_mode(settings.offline)}")
    # uvicorn shuts down gracefully on SIGTERM, then raises SIGTERM again; with the default action the
    # process would die there, skipping the `finally` below and pgserver's atexit hook alike.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        banner: list[str] = []
        if demo:

            async def _demo() -> DemoKeys:
                db = await open_database(settings)
                try:
                    return await bootstrap_demo(db, settings, origins=_own_origins(host, port))
                finally:
                    await db.close()

            banner = _demo_banner(asyncio.run(_demo()), settings=settings, host=host, port=port)
        if workers == 1:
            _serve_one(create_app(settings), settings=settings, host=host, port=port, banner=banner)
        else:
            for line in banner:  # uvicorn's supervisor offers no hook for "listening": said before it starts
                typer.echo(line)
            _serve_workers(settings, host=host, port=port, workers=workers)
    finally:
        release_embedded_servers()


def _own_origins(host: str, port: int) -> list[str]:
    """The origins a browser sends for pages of this server (the widget demo's publishable key allows them)."""
    if host in ("127.0.0.1", "0.0.0.0", "localhost", "::", "::1"):
        return [f"http://localhost:{port}", f"http://127.0.0.1:{port}"]
    return [f"http://{host}:{port}"]


def _demo_banner(keys: DemoKeys, *, settings: Settings, host: str, port: int) -> list[str]:
    """What `--demo` says once the server listens: the key on a line of its own, where it is kept (for
    `KEY=$(cat .chorus/demo_api_key)`), the webchat link and the widget's demo page. Blank lines set it apart
    from the JSON logs."""
    from chorus.demo import DEMO_KEY_FILE

    key_file = settings.home.absolute() / DEMO_KEY_FILE
    shown_file = key_file.relative_to(Path.cwd()) if key_file.is_relative_to(Path.cwd()) else key_file
    url = f"http://{'localhost' if host in ('127.0.0.1', '0.0.0.0') else host}:{port}"
    return [
        "",
        f"chorus: ready on {url}",
        f"chorus: demo tenant API key (also in {shown_file}):",
        keys.api_key,
        f"chorus: open {url}/?key={keys.api_key}",
        *(
            [f"chorus: the chat widget on a demo page: {url}/static/widget-demo.html?key={keys.widget_key}"]
            if keys.widget_key
            else []
        ),
        "",
    ]


def _serve_one(app: Any, *, settings: Settings, host: str, port: int, banner: list[str]) -> None:
    """uvicorn.run for one process, saying `banner` once the server listens: after the start-up logs
    rather than lost among them."""
    import uvicorn

    class AnnouncingServer(uvicorn.Server):
        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets)
            if self.started:
                for line in banner:
                    typer.echo(line)

    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=_open_requests_grace(settings),
    )
    server = AnnouncingServer(config)
    with contextlib.suppress(KeyboardInterrupt):  # as uvicorn.run
        server.run()
    if not server.started:
        raise SystemExit(3)  # uvicorn's STARTUP_FAILURE: the port is taken, or the app did not start


def _serve_workers(settings: Settings, *, host: str, port: int, workers: int) -> None:
    """N processes on one port: uvicorn's supervisor spawns them, each builds its app from the environment.

    The database is resolved here, once: the embedded Postgres is started (and later stopped) by this
    process, and the workers get its URL as DATABASE_URL, so none of them owns it. Migrations run here
    too, before any worker starts.
    """
    import uvicorn

    from chorus.agents.storage.database import open_database, resolve_database_url

    url = resolve_database_url(settings)

    async def _migrate() -> None:
        await (await open_database(settings, url=url)).close()

    asyncio.run(_migrate())
    os.environ["DATABASE_URL"] = url
    typer.echo(f"chorus: {workers} worker processes on {host}:{port}")
    uvicorn.run(
        "chorus.server:create_app",
        factory=True,
        workers=workers,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=_open_requests_grace(settings),
    )


def _open_requests_grace(settings: Settings) -> int:
    """How long a stopping server lets open requests (a stream, a wait) go on before it closes them; its
    runs then get `drain_seconds` more before they are handed back to the queue."""
    return max(1, round(settings.drain_seconds))


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


@config_app.command("schema")
def config_schema(
    write: Annotated[bool, typer.Option(help="Write configs/schema/bot.schema.json instead of printing.")] = False,
) -> None:
    """Print (or write) the bot config JSON Schema generated from the models."""
    from chorus.agents.configs.schema import SCHEMA_PATH, render_schema

    if write:
        SCHEMA_PATH.write_text(render_schema(), encoding="utf-8")
        typer.echo(f"wrote {SCHEMA_PATH}")
    else:
        sys.stdout.write(render_schema())


@keys_app.command("create")
def keys_create(
    tenant: TenantOption = DEFAULT_TENANT,
    role: Annotated[
        str,
        typer.Option(
            help="organization_admin (alias admin), config_manager, developer, viewer or platform_engineer "
            "(docs/api.md#roles)."
        ),
    ] = "organization_admin",
    name: Annotated[str | None, typer.Option(help="A label for the key.")] = None,
    environment: Annotated[
        str, typer.Option(help="staging or production: which deployed versions the key's conversations get.")
    ] = "production",
) -> None:
    """Create an API key for a tenant (created if new) and print it (only its hash is stored)."""
    from chorus.agents.errors import ChorusError
    from chorus.agents.storage.database import open_database
    from chorus.agents.tenancy.environments import parse_environment
    from chorus.agents.tenancy.keys import create_api_key, ensure_tenant
    from chorus.agents.tenancy.permissions import canonical_role

    try:
        canonical = canonical_role(role)
        env = parse_environment(environment, where="--environment")
    except ValueError as exc:
        _fail(str(exc), 2)
    except ChorusError as exc:
        _fail(exc.detail, 2)

    async def run() -> str:
        db = await open_database(load_settings())
        try:
            tenant_id = await ensure_tenant(db, tenant)
            return await create_api_key(db, tenant_id=tenant_id, role=canonical, name=name, environment=env)
        finally:
            await db.close()

    try:
        typer.echo(asyncio.run(run()))
    except ChorusError as exc:
        _fail(exc.detail)


@keys_app.command("list")
def keys_list(tenant: TenantOption = DEFAULT_TENANT) -> None:
    """List a tenant's API keys: id, prefix, role, name, created, last used, revoked (never the key)."""
    from chorus.agents.errors import ChorusError
    from chorus.agents.storage.database import open_database
    from chorus.agents.tenancy.keys import KeyInfo, find_tenant, list_api_keys

    async def run() -> list[KeyInfo]:
        db = await open_database(load_settings())
        try:
            return await list_api_keys(db, await find_tenant(db, tenant))
        finally:
            await db.close()

    try:
        keys = asyncio.run(run())
    except ChorusError as exc:
        _fail(exc.detail)

    def when(value: Any) -> str:
        return value.strftime("%Y-%m-%d %H:%M") if value else "-"

    typer.echo(
        f"{'KEY ID':36}  {'PREFIX':12}  {'ROLE':18}  {'ENV':10}  {'CREATED':16}  {'LAST USED':16}  {'REVOKED':16}  NAME"
    )
    for k in keys:
        typer.echo(
            f"{k.key_id:36}  {k.prefix:12}  {k.role:18}  {k.environment:10}  {when(k.created_at):16}"
            f"  {when(k.last_used_at):16}  {when(k.revoked_at):16}  {k.name or ''}"
        )


@keys_app.command("revoke")
def keys_revoke(
    key: Annotated[str, typer.Argument(help="The key id, its prefix (as `keys list` shows) or the key itself.")],
    tenant: Annotated[str | None, typer.Option(help="Tenant name, when a prefix is not unique.")] = None,
) -> None:
    """Revoke an API key; every server on this database refuses it within 5 s (their key cache)."""
    from chorus.agents.errors import ChorusError, NotFound
    from chorus.agents.storage.database import open_database
    from chorus.agents.tenancy.keys import KeyInfo, find_keys, find_tenant, revoke_api_key

    async def run() -> KeyInfo:
        db = await open_database(load_settings())
        try:
            tenant_id = await find_tenant(db, tenant) if tenant else None
            matches = await find_keys(db, key, tenant_id=tenant_id)
            if len(matches) != 1:
                found = "no key matches" if not matches else f"{len(matches)} keys match"
                raise NotFound(f"{found} '{key}'; pass a key id from `chorus keys list --tenant NAME`")
            key_id, key_tenant = matches[0]
            # The operator may revoke a tenant's last organization_admin key here: `keys create` can always make
            # another.
            return await revoke_api_key(db, tenant_id=key_tenant, key_id=key_id, keep_an_admin=False)
        finally:
            await db.close()

    try:
        info = asyncio.run(run())
    except ChorusError as exc:
        _fail(exc.detail)
    typer.echo(f"revoked {info.key_id} ({info.prefix}, {info.role}{', ' + info.name if info.name else ''})")


@threads_app.command("prune")
def threads_prune() -> None:
    """Delete threads past their expiry (CHORUS_THREAD_TTL_DAYS) with their checkpoints."""
    from chorus.agents.storage.database import open_database
    from chorus.graphs.checkpointer import ChorusCheckpointer
    from chorus.runs.expiry import delete_expired_threads
    from chorus.runs.threads_repository import ThreadRepository

    async def run() -> int:
        settings = load_settings()
        db = await open_database(settings)
        try:
            checkpointer = ChorusCheckpointer(db.pool)
            await checkpointer.setup()
            return await delete_expired_threads(ThreadRepository(db, ttl_days=settings.thread_ttl_days), checkpointer)
        finally:
            await db.close()

    typer.echo(f"pruned {asyncio.run(run())} expired thread(s)")


@app.command()
def chat(
    bot: Annotated[str, typer.Argument(help="A bot config JSON file, or the id of a stored config.")],
    thread: Annotated[str | None, typer.Option(help="Resume this thread id.")] = None,
    offline: Annotated[bool, typer.Option(help="Use the offline development model, on purpose.")] = False,
    tenant: TenantOption = DEFAULT_TENANT,
) -> None:
    """Chat with a bot in the terminal, tokens streaming (runs in-process against the database).

    A config file is stored in the tenant (a new version of the bot of its name when it changed); in the
    default tenant the bot has the demo's knowledge and FAQs, as after `make run`. A stored config's id
    runs in its own tenant.
    """
    if offline:
        os.environ["CHORUS_OFFLINE"] = "1"
    from chorus.chat_terminal import run_terminal_chat

    try:
        asyncio.run(
            run_terminal_chat(bot, tenant=tenant, thread_id=thread or str(uuid.uuid4()), settings=load_settings())
        )
    except KeyboardInterrupt:
        typer.echo("")


def main() -> Any:  # pragma: no cover - console entry point
    return app()


if __name__ == "__main__":
    app()
