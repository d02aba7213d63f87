"""`chorus eval run | validate | schema`: eval suite files from the command line. `run` imports the suite
into a running Chorus server (its API, with an API key), executes it against a config version, prints each
case's result and exits 0 when the suite passed, 1 when it failed, 2 for a suite or config error, 3 when the
execution did not complete (CI gating: docs/evals.md)."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Annotated, Any, NoReturn

import httpx
import typer

eval_app = typer.Typer(help="Eval suites: run a suite file against a config version (CI gating).", no_args_is_help=True)

EXIT_FAILED, EXIT_INVALID, EXIT_INCOMPLETE = 1, 2, 3
SuitePath = Annotated[Path, typer.Argument(help="The suite file (YAML or JSON).")]


def _fail(message: str, code: int) -> NoReturn:
    typer.secho(message, fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def _load(path: Path) -> Any:
    from chorus.agents.errors import InvalidInput
    from chorus.evals.suite_files import load

    try:
        return load(path)
    except InvalidInput as exc:
        for problem in exc.extra.get("errors", []):
            line = f" (line {problem['line']})" if "line" in problem else ""
            typer.secho(f"  {problem['path']}{line}: {problem['message']}", fg=typer.colors.RED, err=True)
        _fail(exc.detail, EXIT_INVALID)


@eval_app.command("validate")
def eval_validate(path: SuitePath) -> None:
    """Check a suite file (its fields, assertion types and templates); exit code 2 if invalid."""
    from chorus.agents.errors import InvalidInput

    loaded = _load(path)
    try:
        _, cases = loaded.suite.definition()
    except InvalidInput as exc:
        _fail(exc.detail, EXIT_INVALID)
    trials = sum(c.repeat for c in cases)
    typer.echo(f"{path}: valid ({len(cases)} case(s), {trials} trial(s))")


@eval_app.command("schema")
def eval_schema(
    write: Annotated[
        bool, typer.Option(help="Write configs/schema/eval-suite.schema.json instead of printing.")
    ] = False,
) -> None:
    """Print (or write) the JSON Schema of suite files."""
    from chorus.evals.suite_files import schema_text

    if write:
        target = Path(__file__).resolve().parents[1] / "configs" / "schema" / "eval-suite.schema.json"
        target.write_text(schema_text(), encoding="utf-8")
        typer.echo(f"wrote {target}")
    else:
        sys.stdout.write(schema_text())


def _default_key() -> str | None:
    from chorus.demo import DEMO_KEY_FILE

    home = Path(os.environ.get("CHORUS_HOME", ".chorus"))
    key_file = home / DEMO_KEY_FILE
    return key_file.read_text().strip() if key_file.exists() else None


def _answer(response: httpx.Response) -> dict[str, Any]:
    if response.status_code < 400:
        body: dict[str, Any] = response.json()
        return body
    try:
        body = response.json()
    except ValueError:
        _fail(f"the server answered {response.status_code}: {response.text[:300]}", EXIT_INVALID)
    for problem in body.get("errors", []):
        typer.secho(f"  {problem.get('path')}: {problem.get('message')}", fg=typer.colors.RED, err=True)
    _fail(f"the server answered {response.status_code}: {body.get('detail')}", EXIT_INVALID)


def _print_results(summary: dict[str, Any]) -> None:
    results: dict[int, list[dict[str, Any]]] = {}
    for row in summary["results"]:
        results.setdefault(row["eval_id"], []).append(row["result"] or {})
    for case in (summary.get("summary") or {}).get("cases", []):
        trials = results.get(case["eval_id"], [])
        if case["passed"] == case["trials"]:
            mark = "PASS"
        elif case["unmeasured"] and not case["failed"]:
            mark = "UNMEASURED"
        else:
            mark = "FAIL"
        rate = f"{case['passed']}/{case['trials']}"
        flaky = " flaky" if case["flaky"] else ""
        typer.echo(f"{mark:<10} {case['name']} ({rate} trials passed{flaky})")
        for trial in trials:
            if trial.get("passed") is not True:
                typer.echo(f"           - {trial.get('reasoning')}")
    s = summary.get("summary") or {}
    if s:
        share = s["pass_rate"] if s["pass_rate"] is not None else 0.0
        typer.echo(
            f"suite {'passed' if s['passed'] else 'failed'}: {s['passed_trials']}/{s['total_trials']} trials "
            f"({share:.0%}, required {s['min_pass_rate']:.0%})"
        )


@eval_app.command("run")
def eval_run(
    path: SuitePath,
    config: Annotated[
        str | None, typer.Option("--config", help="The config's id (config_metadata.config_id) or assistant id.")
    ] = None,
    version: Annotated[
        int | None, typer.Option("--version", min=1, help="The version to evaluate (default: current).")
    ] = None,
    url: Annotated[
        str, typer.Option("--url", envvar="CHORUS_URL", help="The Chorus server.")
    ] = "http://localhost:8000",
    api_key: Annotated[
        str | None,
        typer.Option(
            "--api-key", envvar="CHORUS_API_KEY", help="A developer key (default: the demo key of `make run`)."
        ),
    ] = None,
    max_concurrent: Annotated[int, typer.Option("--max-concurrent", min=1, max=32, help="Trials at a time.")] = 5,
    timeout: Annotated[float, typer.Option("--timeout", min=1, help="Seconds to wait for the execution.")] = 600,
    as_json: Annotated[bool, typer.Option("--json", help="Print the execution's summary as JSON.")] = False,
    config_file: Annotated[
        Path | None, typer.Option("--config-file", help="A bot config file not uploaded, instead of --config.")
    ] = None,
    junit: Annotated[Path | None, typer.Option("--junit", help="Write the results as JUnit XML here.")] = None,
    markdown: Annotated[
        Path | None, typer.Option("--markdown", help="Write a markdown summary here (a pull-request comment).")
    ] = None,
) -> None:
    """Import a suite file into the server, execute it against a config version and print each case's result.
    Exit code 0 passed, 1 failed, 2 suite or config error, 3 not completed."""
    if (config is None) == (config_file is None):
        _fail("give --config ID (a stored config) or --config-file FILE (a bot config not uploaded)", EXIT_INVALID)
    target: dict[str, Any] = {"config_id": config, "version": version}
    if config_file is not None:
        if version is not None:
            _fail("--version goes with --config; a config file has no versions", EXIT_INVALID)
        try:
            target = {"config": json.loads(config_file.read_text(encoding="utf-8"))}
        except (OSError, ValueError) as exc:
            _fail(f"cannot read the bot config {config_file}: {exc}", EXIT_INVALID)
    loaded = _load(path)
    key = api_key or _default_key()
    if not key:
        _fail("no API key: pass --api-key or set CHORUS_API_KEY (a developer key of the config's tenant)", EXIT_INVALID)
    try:
        with httpx.Client(base_url=url, headers={"x-api-key": key}, timeout=30) as client:
            suite = _answer(
                client.post(
                    "/api/v1/evaluation/suites/import",
                    json=loaded.suite.model_dump(mode="json", by_alias=True, exclude_unset=True),
                )
            )
            body = {**target, "max_concurrent": max_concurrent}
            execution = _answer(client.post(f"/api/v1/evaluation/suites/{suite['id']}/execute", json=body))
            typer.echo(f"executing suite '{suite['name']}' ({suite['case_count']} cases) on {execution['target']}")
            deadline = time.monotonic() + timeout
            while True:
                status = _answer(client.get(f"/api/v1/evaluation/executions/{execution['id']}/status"))
                if status["status"] in ("completed", "failed"):
                    break
                if time.monotonic() > deadline:
                    _fail(
                        f"execution {execution['id']} is still {status['status']} after {timeout:g} s", EXIT_INCOMPLETE
                    )
                time.sleep(0.2)
            summary = _answer(client.get(f"/api/v1/evaluation/executions/{execution['id']}/summary"))
    except httpx.HTTPError as exc:
        _fail(f"cannot reach the Chorus server at {url}: {exc}", EXIT_INCOMPLETE)
    from chorus.evals import reports

    if junit is not None:
        junit.write_text(reports.junit_xml(summary), encoding="utf-8")
    if markdown is not None:
        markdown.write_text(reports.markdown(summary), encoding="utf-8")
    if as_json:
        typer.echo(json.dumps(summary, indent=2, default=str))
    else:
        _print_results(summary)
    if summary["status"] != "completed":
        _fail(f"execution {summary['id']} failed: {summary['error']}", EXIT_INCOMPLETE)
    if not summary["passed"]:
        raise typer.Exit(EXIT_FAILED)


@eval_app.command("compare")
def eval_compare(
    base: Annotated[str, typer.Argument(help="The baseline execution's id (e.g. the last run on main).")],
    head: Annotated[str, typer.Argument(help="The execution to judge (e.g. the run of this change).")],
    url: Annotated[
        str, typer.Option("--url", envvar="CHORUS_URL", help="The Chorus server.")
    ] = "http://localhost:8000",
    api_key: Annotated[
        str | None,
        typer.Option("--api-key", envvar="CHORUS_API_KEY", help="A viewer key (default: the demo key of `make run`)."),
    ] = None,
    tolerance: Annotated[
        float, typer.Option("--tolerance", min=0, max=1, help="How far a case's mean score may fall unflagged.")
    ] = 0.05,
    as_json: Annotated[bool, typer.Option("--json", help="Print the comparison as JSON.")] = False,
    markdown: Annotated[
        Path | None, typer.Option("--markdown", help="Write the comparison as markdown here (a PR comment).")
    ] = None,
) -> None:
    """List the cases that regressed and improved between two executions of one suite.
    Exit code 0 no regression, 1 a regression, 2 bad ids or different suites, 3 an execution not completed."""
    from chorus.evals import compare as comparing

    key = api_key or _default_key()
    if not key:
        _fail("no API key: pass --api-key or set CHORUS_API_KEY (a key of the executions' tenant)", EXIT_INVALID)
    try:
        with httpx.Client(base_url=url, headers={"x-api-key": key}, timeout=30) as client:
            response = client.get(
                f"/api/v1/evaluation/executions/{head}/compare", params={"base": base, "tolerance": tolerance}
            )
    except httpx.HTTPError as exc:
        _fail(f"cannot reach the Chorus server at {url}: {exc}", EXIT_INCOMPLETE)
    if response.status_code == 409:
        _fail(f"cannot compare yet: {response.json().get('detail')}", EXIT_INCOMPLETE)
    result = _answer(response)
    if markdown is not None:
        markdown.write_text(comparing.markdown(result), encoding="utf-8")
    if as_json:
        typer.echo(json.dumps(result, indent=2, default=str))
    else:
        _print_comparison(result)
    if result["regressed"]:
        raise typer.Exit(EXIT_FAILED)


def _print_comparison(result: dict[str, Any]) -> None:
    base, head = result["base"], result["head"]
    typer.echo(f"execution {head['id']} ({head['target']}) vs {base['id']} ({base['target']})")
    for case in result["cases"]:
        if case["change"] == "unchanged":
            continue
        mark = {"regressed": "REGRESSED", "improved": "IMPROVED"}.get(case["change"], case["change"].upper())
        significant = " (significant)" if case["significant"] else ""
        typer.echo(f"{mark:<10} {case['name']}: {'; '.join(case['reasons'])}{significant}")
    regressions, improvements = len(result["regressions"]), len(result["improvements"])
    typer.echo(f"{regressions} regression(s), {improvements} improvement(s)")
