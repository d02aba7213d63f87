"""`chorus secrets`: the tenant vault from the command line (straight to the database, like `chorus kb`).

Values come from stdin or `--value-file`, so they need not appear on a command line; nothing here ever
prints a value. `--environment staging|production` names a secret scoped to that environment; without it,
a command acts on the secret serving every environment.
"""

from __future__ import annotations

import asyncio
import getpass
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from chorus.agents.secrets.environments import environment_problem, scope_label
from chorus.agents.settings import load_settings
from chorus.cli_tenant import DEFAULT_TENANT, TenantOption

if TYPE_CHECKING:
    from chorus.agents.secrets.repository import Actor
    from chorus.agents.secrets.service import Described, SecretVault

secrets_app = typer.Typer(
    help="The secret vault: values encrypted per tenant; configs reference them as ${secret:NAME}.",
    no_args_is_help=True,
)

T = TypeVar("T")
Name = Annotated[str, typer.Argument(help="The secret's name, e.g. SHOP_API_KEY.")]
ValueFile = Annotated[
    Path | None, typer.Option("--value-file", help="Read the value from this file (else from stdin).")
]
AsJson = Annotated[bool, typer.Option("--json", help="Print the API's JSON response.")]
Environment = Annotated[
    str | None,
    typer.Option(
        "--environment",
        help="staging or production: the secret scoped to that environment (left out: the one serving every "
        "environment).",
    ),
]


def _fail(message: str, code: int = 1) -> None:
    typer.secho(message, fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def _checked(environment: str | None) -> str | None:
    """The environment, or exit 2 saying which ones exist (before a value is read from stdin)."""
    problem = environment_problem(environment)
    if problem:
        _fail(f"--environment: {problem}", 2)
    return environment


def _actor() -> Actor:
    from chorus.agents.secrets.repository import Actor

    try:
        return Actor(f"cli:{getpass.getuser()}")
    except (KeyError, OSError):
        return Actor("cli")


def _read_value(value_file: Path | None) -> str:
    """The value from the file or stdin, without the one line ending an editor or `echo` adds."""
    if value_file is not None:
        try:
            text = value_file.read_text(encoding="utf-8")
        except FileNotFoundError:
            _fail(f"{value_file}: no such file", 2)
        except (OSError, UnicodeDecodeError) as exc:
            _fail(f"{value_file}: cannot be read as UTF-8 text ({type(exc).__name__})", 2)
    elif sys.stdin.isatty():
        text = typer.prompt("value", hide_input=True)
    else:
        text = sys.stdin.read()
    return text.removesuffix("\n").removesuffix("\r")


def _run(work: Callable[[SecretVault, str], Awaitable[T]], tenant: str) -> T:
    """Open the database and the vault, resolve the tenant, run `work(vault, tenant_id)`."""
    from chorus.agents.errors import ChorusError
    from chorus.agents.secrets.master_key import load_vault_key
    from chorus.agents.secrets.repository import SecretRepository
    from chorus.agents.secrets.service import SecretVault
    from chorus.agents.storage.database import open_database
    from chorus.agents.tenancy.keys import ensure_tenant

    async def main() -> T:
        settings = load_settings()
        key = load_vault_key(settings)
        db = await open_database(settings)
        try:
            return await work(SecretVault(SecretRepository(db), key), await ensure_tenant(db, tenant))
        finally:
            await db.close()

    try:
        return asyncio.run(main())
    except ChorusError as exc:
        for problem in exc.extra.get("errors", []):
            typer.secho(f"  {problem['path']}: {problem['message']}", fg=typer.colors.RED, err=True)
        for dep in exc.extra.get("dependent_configs", []):
            typer.secho(f"  used by {dep['config_name']} ({dep['config_id']})", fg=typer.colors.RED, err=True)
        typer.secho(exc.detail, fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from None


def _show(described: Described, as_json: bool) -> None:
    from chorus.agents.secrets.schemas import SecretDetail

    detail = SecretDetail.of(described)
    if as_json:
        typer.echo(detail.model_dump_json(indent=2))
        return
    typer.echo(
        f"{detail.name}  version {detail.version}  value {detail.masked_value}  ({scope_label(detail.environment)})"
    )
    if detail.description:
        typer.echo(f"  {detail.description}")
    created, updated = f"{detail.created_at:%Y-%m-%d %H:%M}", f"{detail.updated_at:%Y-%m-%d %H:%M}"
    typer.echo(f"  created {created} by {detail.created_by}, updated {updated}")
    last = f"{detail.last_used:%Y-%m-%d %H:%M}" if detail.last_used else "never"
    typer.echo(f"  used {detail.usage_count} time(s), last {last}")
    if not detail.decryptable:
        typer.secho("  sealed with another vault key: this server cannot decrypt it", fg=typer.colors.YELLOW)
    for v in detail.rotation_history:
        typer.echo(f"  v{v.version}  {v.rotated_at:%Y-%m-%d %H:%M}  {v.reason or '-'}  by {v.created_by}")


@secrets_app.command("set")
def set_secret(
    name: Name,
    tenant: TenantOption = DEFAULT_TENANT,
    value_file: ValueFile = None,
    description: Annotated[str | None, typer.Option(help="What the secret is for.")] = None,
    environment: Environment = None,
) -> None:
    """Store a new secret (its value from stdin or --value-file). An existing name: use `rotate`."""
    environment = _checked(environment)
    value = _read_value(value_file)

    async def work(vault: SecretVault, tenant_id: str) -> Described:
        return await vault.create(
            tenant_id, name=name, value=value, description=description, environment=environment, actor=_actor()
        )

    described = _run(work, tenant)
    typer.echo(
        f"stored {described.record.name} (version {described.record.latest_version}) for "
        f"{scope_label(environment)} of tenant '{tenant}'"
    )


@secrets_app.command("rotate")
def rotate_secret(
    name: Name,
    tenant: TenantOption = DEFAULT_TENANT,
    value_file: ValueFile = None,
    reason: Annotated[str | None, typer.Option(help="Why (kept in the rotation history).")] = None,
    environment: Environment = None,
) -> None:
    """Store a new value as the next version; tool calls use it from now on, old versions are kept."""
    environment = _checked(environment)
    value = _read_value(value_file)

    async def work(vault: SecretVault, tenant_id: str) -> Described:
        return await vault.rotate(tenant_id, name, value=value, reason=reason, environment=environment, actor=_actor())

    described = _run(work, tenant)
    typer.echo(
        f"rotated {described.record.name} for {scope_label(environment)}: now version {described.record.latest_version}"
    )


@secrets_app.command("list")
def list_secrets(tenant: TenantOption = DEFAULT_TENANT, as_json: AsJson = False) -> None:
    """The tenant's secrets: names, versions, use (never values)."""
    from chorus.agents.secrets.repository import SecretRecord

    async def work(vault: SecretVault, tenant_id: str) -> list[SecretRecord]:
        return await vault.list_secrets(tenant_id, _actor())

    records = _run(work, tenant)
    if as_json:
        rows: list[dict[str, Any]] = [
            {
                "name": r.name,
                "environment": r.environment,
                "version": r.latest_version,
                "description": r.description,
                "usage_count": r.usage_count,
            }
            for r in records
        ]
        typer.echo(json.dumps(rows, indent=2))
        return
    for r in records:
        scope = r.environment or "all"
        typer.echo(f"{r.name:<32} {scope:<11} v{r.latest_version:<4} used {r.usage_count:<6} {r.description or ''}")
    typer.echo(f"{len(records)} secret(s) for tenant '{tenant}'")


@secrets_app.command("get")
def get_secret(
    name: Name, tenant: TenantOption = DEFAULT_TENANT, as_json: AsJson = False, environment: Environment = None
) -> None:
    """A secret's metadata and versions, masked (audited as a read)."""
    environment = _checked(environment)

    async def work(vault: SecretVault, tenant_id: str) -> Described:
        return await vault.describe(tenant_id, name, _actor(), environment=environment)

    _show(_run(work, tenant), as_json)


@secrets_app.command("delete")
def delete_secret(
    name: Name,
    tenant: TenantOption = DEFAULT_TENANT,
    force: Annotated[bool, typer.Option(help="Delete even if bot configs reference it.")] = False,
    environment: Environment = None,
) -> None:
    """Delete a secret (of one scope) and every version; the name's other scopes stay. Refused (exit 1, naming
    them) while configs reference it and an environment would be left without it."""
    from chorus.agents.secrets.service import Deleted

    environment = _checked(environment)

    async def work(vault: SecretVault, tenant_id: str) -> Deleted:
        return await vault.delete(tenant_id, name, force=force, environment=environment, actor=_actor())

    deleted = _run(work, tenant)
    typer.echo(f"deleted {deleted.name} ({deleted.versions_deleted} version(s)) for {scope_label(environment)}")
    for dep in deleted.dependents:
        typer.secho(
            f"  {dep.config_name} ({dep.config_id}) still references it: update its headers",
            fg=typer.colors.YELLOW,
        )


@secrets_app.command("audit")
def audit_secret(
    name: Name,
    tenant: TenantOption = DEFAULT_TENANT,
    limit: Annotated[int, typer.Option(help="How many events.")] = 50,
    environment: Environment = None,
) -> None:
    """Who created, read, rotated, deleted and used a secret, newest first."""
    from chorus.agents.secrets.repository import AuditEvent

    environment = _checked(environment)

    async def work(vault: SecretVault, tenant_id: str) -> list[AuditEvent]:
        return await vault.audit(tenant_id, name, limit=limit, environment=environment)

    for e in _run(work, tenant):
        called = e.call_environment and f"in {e.call_environment}"
        where = " ".join(x for x in (e.tool_name, called, e.thread_id and f"thread {e.thread_id}") if x)
        version = f"v{e.version}" if e.version else "-"
        typer.echo(f"{e.at:%Y-%m-%d %H:%M:%S}  {e.action:<10} {version:<5} {e.actor}  {where}  {e.detail or ''}")
