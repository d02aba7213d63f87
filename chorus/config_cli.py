"""`chorus config versions | diff | rollback`: a config's history from the command line (straight to the
database in one tenant, like `chorus kb` and `chorus secrets`); the author of a rollback made here is "cli"."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from chorus.agents.settings import load_settings
from chorus.cli_tenant import DEFAULT_TENANT, TenantOption

if TYPE_CHECKING:
    from chorus.agents.configs.versions import ConfigVersions, Rollback, VersionDiff, VersionPage

config_app = typer.Typer(help="Bot configs.", no_args_is_help=True)

T = TypeVar("T")
ConfigId = Annotated[
    str, typer.Argument(help="The config's id (its file's config_metadata.config_id) or assistant id.")
]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON rather than lines.")]


def _run(work: Callable[[ConfigVersions, str], Awaitable[T]], tenant: str) -> T:
    """Open the database, find the tenant, run `work(versions, tenant_id)`; a Chorus error is exit code 1."""
    from chorus.agents.configs.repository import ConfigRepository
    from chorus.agents.configs.service import ConfigService
    from chorus.agents.configs.versions import ConfigVersions
    from chorus.agents.errors import ChorusError
    from chorus.agents.storage.database import open_database
    from chorus.agents.tenancy.keys import find_tenant
    from chorus.agents.tools.builtins import build_registry

    async def main() -> T:
        db = await open_database(load_settings())
        try:
            versions = ConfigVersions(ConfigService(ConfigRepository(db), build_registry()))
            return await work(versions, await find_tenant(db, tenant))
        finally:
            await db.close()

    try:
        return asyncio.run(main())
    except ChorusError as exc:
        for problem in exc.extra.get("errors", []):
            typer.secho(f"  {problem['path']}: {problem['message']}", fg=typer.colors.RED, err=True)
        typer.secho(exc.detail, fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from None


def _value(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 80 else text[:77] + "..."


@config_app.command("versions")
def versions(
    config_id: ConfigId,
    tenant: TenantOption = DEFAULT_TENANT,
    limit: Annotated[int, typer.Option(min=1, max=100, help="How many, newest first.")] = 20,
    offset: Annotated[int, typer.Option(min=0, help="Skip this many.")] = 0,
    as_json: AsJson = False,
) -> None:
    """List a config's versions: number, time, how it was made, by whom, and its commit message."""

    async def work(history: ConfigVersions, tenant_id: str) -> VersionPage:
        return await history.page(tenant_id, config_id, limit=limit, offset=offset)

    page = _run(work, tenant)
    current = page.config.version
    if as_json:
        rows = [
            {
                "version": v.version,
                "commit_message": v.commit_message,
                "source": v.source,
                "author": v.author.to_dict() if v.author else None,
                "applied_at": v.created_at.isoformat(),
                "current": v.version == current,
            }
            for v in page.versions
        ]
        typer.echo(json.dumps({"config_id": page.config.key, "total_versions": page.total, "versions": rows}, indent=2))
        return
    typer.echo(
        f"{page.config.key} ({page.config.name}, {page.config.product_type}): current version {current}"
        f" of {page.total}; assistant id {page.config.config_id}"
    )
    for v in page.versions:
        who = f"{v.author.name or '-'} ({v.author.role or v.author.kind})" if v.author else "-"
        mark = "*" if v.version == current else " "
        typer.echo(
            f"{mark} v{v.version:<4} {v.created_at:%Y-%m-%d %H:%M}  {v.source:<13} {who:<24} {v.commit_message or ''}"
        )


@config_app.command("diff")
def diff(
    config_id: ConfigId,
    start: Annotated[
        str | None, typer.Option("--from", help="The older version (default: the one before --to).")
    ] = None,
    end: Annotated[str | None, typer.Option("--to", help="The newer version (default: the current one).")] = None,
    tenant: TenantOption = DEFAULT_TENANT,
    as_json: Annotated[bool, typer.Option("--json", help="Print the JSON Patch (RFC 6902) and the map.")] = False,
) -> None:
    """What changed between two versions, field by field (named lists such as tools compare by name)."""
    from chorus.agents.configs.history import parse_version

    async def work(history: ConfigVersions, tenant_id: str) -> VersionDiff:
        return await history.diff(
            tenant_id,
            config_id,
            start=parse_version(start, where="--from") if start is not None else None,
            end=parse_version(end, where="--to") if end is not None else None,
        )

    done = _run(work, tenant)
    if as_json:
        typer.echo(json.dumps({"patch": done.diff.patch, "diff": done.diff.changes}, indent=2, default=str))
        return
    typer.echo(f"{done.config.key}: v{done.from_version} -> v{done.to_version}")
    if not done.diff.changes:
        typer.echo("  no changes")
    for path, change in done.diff.changes.items():
        typer.echo(f"  {path}: {_value(change['old'])} -> {_value(change['new'])}")


@config_app.command("rollback")
def rollback(
    config_id: ConfigId,
    to: Annotated[str, typer.Option("--to", help="The version to restore (3 or v3).")],
    reason: Annotated[str, typer.Option("--reason", help="Why; kept in the new version's commit message.")],
    tenant: TenantOption = DEFAULT_TENANT,
) -> None:
    """Restore an earlier version as a new version (history is kept); threads keep the version they started on."""
    from chorus.agents.configs.history import Author, parse_version

    if not reason.strip():
        typer.secho("--reason must say why", fg=typer.colors.RED, err=True)
        raise typer.Exit(2)

    async def work(history: ConfigVersions, tenant_id: str) -> Rollback:
        target = parse_version(to, where="--to")
        return await history.rollback(tenant_id, config_id, target=target, reason=reason, author=Author.cli())

    done = _run(work, tenant)
    typer.echo(
        f"{done.config.key}: rolled back from v{done.rolled_back_from} to v{done.rolled_back_to}"
        f" as v{done.config.version} ({done.commit_message})"
    )


# `chorus config validate`: a file or a stored config, checked as the API's validate routes check it.
if TYPE_CHECKING:
    from chorus.agents.configs.checks import CheckReport

FileOrId = Annotated[
    str,
    typer.Argument(
        metavar="FILE_OR_ID",
        help="A bot config JSON file (an existing file, or a name ending in .json), else a stored config's id.",
    ),
]


def _print_checks(title: str, done: CheckReport) -> None:
    report = done.report
    ready = "deployment ready" if done.deployment_ready else "NOT deployment ready"
    typer.echo(f"{title}: {'valid' if report.valid else 'invalid'}, {ready}")
    for check in done.checks:
        typer.echo(f"  {check.status:<8} {check.check}" + (f" — {check.details}" if check.details else ""))
    for problem in report.errors:
        typer.echo(f"error   {problem.path}: {problem.message}")
    for problem in report.warnings:
        typer.echo(f"warning {problem.path}: {problem.message}")
    for item in done.blocked_by:
        typer.echo(f"blocked by: {item}")


@config_app.command("validate")
def validate(
    target: FileOrId,
    version: Annotated[
        str | None, typer.Option("--version", help="A stored config's version (3 or v3); default: the current one.")
    ] = None,
    tenant: TenantOption = DEFAULT_TENANT,
    as_json: AsJson = False,
) -> None:
    """Validate a config file against the tenant's vault and knowledge, or a stored config: each named check and
    every problem with its JSON path. Exit code 1 unless it is deployment ready (valid, nothing missing)."""
    from pathlib import Path

    from chorus.agents.configs.checks import check_config
    from chorus.agents.configs.history import parse_version

    path = Path(target)
    is_file = path.is_file() or path.suffix.lower() == ".json"
    raw: Any = None
    if is_file:
        if version is not None:
            typer.secho("--version picks a version of a stored config; a file is validated as it is", err=True)
            raise typer.Exit(2)
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            typer.secho(f"{path}: no such file", fg=typer.colors.RED, err=True)
            raise typer.Exit(2) from None
        except (OSError, UnicodeDecodeError) as exc:
            typer.secho(f"{path}: cannot be read: {exc}", fg=typer.colors.RED, err=True)
            raise typer.Exit(2) from None
        except json.JSONDecodeError as exc:
            typer.secho(
                f"{path}: malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}",
                fg=typer.colors.RED,
                err=True,
            )
            raise typer.Exit(1) from None

    async def work(history: ConfigVersions, tenant_id: str) -> CheckReport:
        service = history.service
        if is_file:
            return await check_config(service.repo.db, service.registry, tenant_id, raw)
        if version is None:
            stored = await service.repo.find(tenant_id, target)
            config, number = stored.config, stored.version
        else:
            stored, record = await history.get(tenant_id, target, parse_version(version, where="--version"))
            config, number = record.config, record.version
        return await check_config(
            service.repo.db, service.registry, tenant_id, config, config_id=stored.key, version=number, stored=True
        )

    done = _run(work, tenant)
    if as_json:
        typer.echo(json.dumps(done.to_dict(), indent=2, default=str))
    else:
        _print_checks(target if is_file else f"{done.config_id} v{done.version}", done)
    if not done.deployment_ready:
        raise typer.Exit(1)
