"""`chorus config deploy | promote | undeploy | deployments | environments`: environments and staged deploys
against a running server, over HTTP (CHORUS_URL and CHORUS_API_KEY, or --url and --key), so each
deployment records the key that made it. The key's own environment matters: a staging key cannot deploy to
production."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from chorus.config_apply_cli import ConfigId, KeyOption, UrlOption, with_server
from chorus.config_cli import config_app
from chorus.server_client import ServerClient

EnvOption = Annotated[str, typer.Option("--env", "--environment", help="staging or production.")]
DeploymentId = Annotated[str, typer.Argument(help="The deployment's id (chorus config deployments ID lists them).")]


def _split(body: dict[str, Any]) -> str:
    status = body["rollout_status"]
    split = status["traffic_split"]
    if status["green_version"] is None:
        return f"{body['environment']} serves v{status['blue_version']} to every new conversation"
    return (
        f"{body['environment']}: v{status['green_version']} gets {split['green']} % of new conversations, "
        f"v{status['blue_version']} {split['blue']} %"
    )


def _deployed(body: dict[str, Any]) -> None:
    typer.echo(f"{body['config_id']}: deployment {body['deployment_id']} {body['status']}")
    typer.echo(f"  {_split(body)}")
    if body["status"] == "deploying":
        typer.echo(f"  watch it: chorus config deployments {body['config_id']}  (or GET {body['monitoring_url']})")


@config_app.command("deploy")
def deploy(
    config_id: ConfigId,
    environment: EnvOption = "production",
    version: Annotated[str | None, typer.Option(help="The version (default: the current one).")] = None,
    percent: Annotated[
        int, typer.Option("--percent", min=1, max=100, help="Share of new conversations; under 100 starts a rollout.")
    ] = 100,
    error_rate: Annotated[
        float, typer.Option(min=0, max=1, help="Roll back by itself above this error rate of the new version.")
    ] = 0.05,
    escalation_rate: Annotated[
        float | None, typer.Option(min=0, max=1, help="Roll back above this escalation rate too.")
    ] = None,
    window: Annotated[int, typer.Option(min=10, help="The window of those rates, in seconds.")] = 600,
    min_turns: Annotated[int, typer.Option(min=1, help="Turns needed before a rate is judged.")] = 20,
    auto_rollback: Annotated[bool, typer.Option(help="Roll back by itself past a threshold.")] = True,
    url: UrlOption = None,
    key: KeyOption = None,
) -> None:
    """Deploy a version to staging or production: to every new conversation at once (--percent 100), or to
    a share of them as a blue-green rollout that `promote` finishes. Conversations keep the version they
    started with."""
    body: dict[str, Any] = {
        "environment": environment,
        "rollout_percent": percent,
        "rollback_on_error_rate": error_rate,
        "rollback_on_escalation_rate": escalation_rate,
        "window_seconds": window,
        "min_turns": min_turns,
        "auto_rollback": auto_rollback,
    }
    if version is not None:
        body["version"] = version
    with_server(url, key, lambda c: _deployed(c.post(f"/api/v1/configs/{config_id}/deploy", json=body)))


@config_app.command("promote")
def promote(
    config_id: ConfigId,
    deployment_id: DeploymentId,
    percent: Annotated[int, typer.Option("--percent", min=1, max=100, help="The new share; 100 finishes.")] = 100,
    url: UrlOption = None,
    key: KeyOption = None,
) -> None:
    """Send another share of new conversations to a rollout's version; 100 makes it the stable version."""
    path = f"/api/v1/configs/{config_id}/deployments/{deployment_id}/promote"
    with_server(url, key, lambda c: _deployed(c.post(path, json={"rollout_percent": percent})))


@config_app.command("undeploy")
def undeploy(
    config_id: ConfigId,
    deployment_id: DeploymentId,
    message: Annotated[str, typer.Option("-m", "--message", help="Why; kept in the deployment's history.")],
    url: UrlOption = None,
    key: KeyOption = None,
) -> None:
    """Roll a deployment back: a rollout stops, or the environment's last deploy gives way to the version it
    replaced. Conversations already on it keep it."""
    if not message.strip():
        typer.secho("say why with -m REASON", fg="red", err=True)
        raise typer.Exit(2)
    path = f"/api/v1/configs/{config_id}/deployments/{deployment_id}/rollback"
    with_server(url, key, lambda c: _deployed(c.post(path, json={"reason": message})))


def _print_history(client: ServerClient, config_id: str, environment: str | None) -> None:
    params = {"environment": environment} if environment else None
    page = client.get(f"/api/v1/configs/{config_id}/deployments", params=params)
    if not page["deployments"]:
        typer.echo(f"{page['config_id']}: no deployments yet")
    for d in page["deployments"]:
        share = f" {d['rollout_percent']} %" if d["status"] == "rolling_out" else ""
        typer.echo(
            f"{d['created_at'][:19]}  {d['deployment_id']}  {d['environment']:10}  v{d['previous_version']} -> "
            f"v{d['version']}  {d['status']}{share}" + (f"  ({d['status_reason']})" if d["status_reason"] else "")
        )


@config_app.command("deployments")
def deployments(
    config_id: ConfigId,
    environment: Annotated[
        str | None, typer.Option("--env", "--environment", help="Only staging or only production.")
    ] = None,
    url: UrlOption = None,
    key: KeyOption = None,
) -> None:
    """A config's deployment history, newest first: when, where, which versions, and how each ended."""
    with_server(url, key, lambda c: _print_history(c, config_id, environment))


def _print_environments(client: ServerClient, config_id: str) -> None:
    body = client.get(f"/api/v1/configs/{config_id}/environments")
    typer.echo(f"{body['config_id']}: current version v{body['current_version']}")
    for name, env in body["environments"].items():
        serves = f"v{env['stable_version']}" + (
            " (follows the current version)" if env["follows_current_version"] else ""
        )
        if env["candidate_version"] is not None:
            serves += f", v{env['candidate_version']} to {env['traffic_split']['green']} % (rollout)"
        overrides = f"; overrides rev {env['overrides_revision']}" if env["overrides_revision"] else ""
        typer.echo(f"  {name:10} {serves}{overrides}")


@config_app.command("environments")
def environments(config_id: ConfigId, url: UrlOption = None, key: KeyOption = None) -> None:
    """What staging and production serve: stable version, rollout, overrides."""
    with_server(url, key, lambda c: _print_environments(c, config_id))
