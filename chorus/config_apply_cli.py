"""`chorus config apply | pull | approve | reject`: GitOps and approvals against a running server, over HTTP
(CHORUS_URL and CHORUS_API_KEY, or --url and --key), so each version records the key that made it."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer

from chorus.agents.errors import ChorusError, InvalidInput
from chorus.config_apply import has_work, plan_lines, pull_targets, read_config_files, result_lines
from chorus.config_cli import config_app
from chorus.server_client import DEFAULT_URL, ServerClient, ServerRequestFailed

T = TypeVar("T")
UrlOption = Annotated[str | None, typer.Option("--url", help=f"The server (default: $CHORUS_URL, else {DEFAULT_URL}).")]
KeyOption = Annotated[str | None, typer.Option("--key", help="An API key of your tenant (default: $CHORUS_API_KEY).")]
ConfigId = Annotated[str, typer.Argument(help="The config's id (its file's config_metadata.config_id).")]
Version = Annotated[str, typer.Argument(help="The version waiting for approval (3 or v3).")]


def fail(error: ChorusError | ServerRequestFailed) -> NoReturn:
    lines = error.lines if isinstance(error, ServerRequestFailed) else []
    if isinstance(error, InvalidInput):
        lines = [f"{e.get('file') or e.get('path')}: {e.get('message')}" for e in error.errors]
    for line in lines:
        typer.secho(f"  {line}", fg=typer.colors.RED, err=True)
    typer.secho(error.detail, fg=typer.colors.RED, err=True)
    raise typer.Exit(1)


def with_server(url: str | None, key: str | None, work: Callable[[ServerClient], T]) -> T:
    try:
        with ServerClient.from_env(url, key) as client:
            return work(client)
    except (ChorusError, ServerRequestFailed) as exc:
        fail(exc)


@config_app.command("apply")
def apply(
    target: Annotated[Path, typer.Argument(help="A config file, or a directory of them (*.json).")],
    message: Annotated[str | None, typer.Option("-m", "--message", help="Why; kept on each new version.")] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite changes made on the server since the last apply (drift).")
    ] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the plan; change nothing.")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Apply without asking.")] = False,
    url: UrlOption = None,
    key: KeyOption = None,
) -> None:
    """Upsert every config file by its config_metadata.config_id: print the plan (created, changed with a
    short diff, unchanged, waiting for approval), then apply it. Refuses, changing nothing, when a file is
    wrong or a config changed on the server since its last apply (drift; --force overrides)."""
    if not dry_run and not (message and message.strip()):
        typer.secho("say why with -m MESSAGE (kept on each version made, like a commit message)", fg="red", err=True)
        raise typer.Exit(2)
    try:
        files = read_config_files(target)
    except ChorusError as exc:
        fail(exc)
    body: dict[str, Any] = {
        "files": [{"path": f.path, "config": f.config} for f in files],
        "commit_message": message,
        "force": force,
    }

    def work(client: ServerClient) -> None:
        plan = client.post("/api/v1/configs/apply", json={**body, "dry_run": True})
        typer.echo(f"Plan for {len(files)} file(s) on {client.url}:")
        for line in plan_lines(plan):
            typer.echo(line)
        if plan["summary"]["blocked"]:
            typer.secho("Nothing applied: fix the problems above (--force overrides drift).", fg="red", err=True)
            raise typer.Exit(1)
        if dry_run or not has_work(plan):
            typer.echo("Dry run: nothing applied." if dry_run else "Nothing to apply.")
            return
        if not yes:
            if not sys.stdin.isatty():
                typer.secho("pass --yes to apply without a prompt (stdin is not a terminal)", fg="red", err=True)
                raise typer.Exit(1)
            if not typer.confirm("Apply this plan?"):
                typer.echo("Nothing applied.")
                raise typer.Exit(1)
        done = client.post("/api/v1/configs/apply", json={**body, "dry_run": False})
        for line in result_lines(done):
            typer.echo(line)

    with_server(url, key, work)


@config_app.command("pull")
def pull(
    directory: Annotated[Path, typer.Argument(help="Where to write the files (made if missing).")],
    config_id: Annotated[str | None, typer.Option("--config", help="Only this config.")] = None,
    url: UrlOption = None,
    key: KeyOption = None,
) -> None:
    """Write the live configs as files (<config_id>.json, or the file of DIRECTORY that holds that id), so
    that `apply` of a fresh pull changes nothing. Files hold ${secret:NAME} references, never secret values."""

    def work(client: ServerClient) -> list[dict[str, Any]]:
        if config_id is not None:
            return [client.get(f"/api/v1/configs/{config_id}")["parsed_config"]]
        configs: list[dict[str, Any]] = []
        offset: int | None = 0
        while offset is not None:
            page = client.get("/api/v1/configs", params={"limit": 100, "offset": offset})
            configs.extend(c["parsed_config"] for c in page["configs"])
            offset = page["pagination"]["next_offset"]
        return configs

    configs = with_server(url, key, work)
    if directory.exists() and not directory.is_dir():
        typer.secho(f"{directory} is a file: give a directory to pull into", fg="red", err=True)
        raise typer.Exit(1)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        for path, text in pull_targets(directory, configs):
            path.write_text(text, encoding="utf-8")
            typer.echo(f"  {path}")
    except OSError as exc:
        typer.secho(f"cannot write into {directory}: {exc}", fg="red", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"Pulled {len(configs)} config(s) into {directory}.")


def _verdict(client: ServerClient, config_id: str, version: str, decision: str, body: dict[str, Any]) -> None:
    done = client.post(f"/api/v1/configs/{config_id}/versions/{version}/{decision}", json=body)
    v, status = done["version"], done["status"]
    if status == "rejected":
        typer.echo(f"{done['config_id']}: v{v} rejected; v{done['current_version']} stays current")
    elif status == "pending_approval":
        missing = " and ".join(done["approval_required_from"])
        typer.echo(f"{done['config_id']}: v{v} approved by you; it still needs the approval of {missing}")
    else:
        typer.echo(f"{done['config_id']}: v{v} approved; it is now {status} (current v{done['current_version']})")


@config_app.command("approve")
def approve(
    config_id: ConfigId,
    version: Version,
    message: Annotated[str | None, typer.Option("-m", "--message", help="Why; kept with the approval.")] = None,
    url: UrlOption = None,
    key: KeyOption = None,
) -> None:
    """Approve a version waiting for approval (medium risk: an organization_admin; high: also a
    platform_engineer); prints who must still approve."""
    with_server(url, key, lambda c: _verdict(c, config_id, version, "approve", {"comment": message}))


@config_app.command("reject")
def reject(
    config_id: ConfigId,
    version: Version,
    message: Annotated[str, typer.Option("-m", "--message", help="Why; kept with the rejection.")],
    url: UrlOption = None,
    key: KeyOption = None,
) -> None:
    """Reject a version waiting for approval, for good (the change must be made again)."""
    if not message.strip():
        typer.secho("say why with -m REASON", fg="red", err=True)
        raise typer.Exit(2)
    with_server(url, key, lambda c: _verdict(c, config_id, version, "reject", {"reason": message}))
