"""What docs/*.md show works as shown: their shell blocks run, their JSON config snippets validate inside
an example bot, their Python blocks run (a webhook receiver: it takes what Chorus signs and nothing else),
every `chorus …` command they name (in a synopsis block or inline) exists with the options it is shown
with, and the other commands they name inline (make, the benchmarks, key one-liners) exist."""

from __future__ import annotations

import copy
import itertools
import json
import os
import re
import shlex
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from chorus.agents.configs.models import BotConfig, ToolNeeded
from chorus.agents.configs.validation import validate_config
from chorus.agents.errors import ServerMisconfigured
from chorus.agents.secrets.crypto import parse_key
from chorus.agents.tools.builtins import build_registry
from chorus.runs.webhook_signing import WebhookSigner
from tests.conftest import RunningServer, Tenant, example
from tests.doc_snippets import CLI, ROOT, Fence, fences, run_shell_block

DOCS = sorted((ROOT / "docs").glob("*.md"))
FENCES = [fence for doc in DOCS for fence in fences(doc)]
SHELL = [fence for fence in FENCES if fence.language == "bash"]
JSON = [fence for fence in FENCES if fence.language == "json"]
PYTHON = [fence for fence in FENCES if fence.language == "python"]
# A plain fence in the docs is a command synopsis: one `chorus …` command a line.
SYNOPSES = [fence for fence in FENCES if fence.language == ""]
HOST_EXAMPLE = "acme_support_bot"

COMMAND_WORD = re.compile(r"[a-z][a-z0-9-]*(\|[a-z][a-z0-9-]*)*")
OPTION = re.compile(r"--[a-z0-9][a-z0-9-]*")
CHOICES = re.compile(r"[a-z_]+(\|[a-z_]+)+")


@dataclass(frozen=True)
class Command:
    """A `chorus …` command as a doc shows it; `words` are what follows `chorus`."""

    where: str
    text: str
    words: tuple[str, ...]

    @property
    def paths(self) -> list[tuple[str, ...]]:
        """The subcommand paths named: the plain words up to the first placeholder, quote or option, `a|b`
        meaning either. A plain-word argument may come along (`chorus chat mybot`): a command's --help
        ignores it, while a word that is not a subcommand of a group is an error."""
        names = list(itertools.takewhile(COMMAND_WORD.fullmatch, self.words))
        return list(itertools.product(*(name.split("|") for name in names)))

    @property
    def options(self) -> list[str]:
        return [option for word in self.words for option in OPTION.findall(word)]

    @property
    def choices(self) -> list[str]:
        """The values shown as alternatives after an option (`--mode merge|replace`)."""
        shown = [word.strip("[]") for previous, word in itertools.pairwise(self.words) if OPTION.search(previous)]
        return [value for word in shown if CHOICES.fullmatch(word) for value in word.split("|")]


def command(where: str, text: str) -> Command | None:
    text = " ".join(text.split())
    found = re.search(r"(?:^|[\s/])chorus\s+(\S.*)$", text)
    return Command(where, text, tuple(found.group(1).split())) if found else None


def inline_spans(doc: Path) -> list[tuple[str, str]]:
    """Where and what of every backticked span outside fenced blocks, once per wording (a span may wrap onto
    the next line)."""
    source = str(doc.relative_to(ROOT))
    text = re.sub(
        r"^```.*?^```", lambda m: "\n" * m.group(0).count("\n"), doc.read_text(encoding="utf-8"), flags=re.M | re.S
    )
    once: dict[str, str] = {}
    for span in re.finditer(r"`([^`]+)`", text):
        line = text.count("\n", 0, span.start()) + 1
        once.setdefault(" ".join(span.group(1).split()), f"{source}:{line}")
    return [(where, wording) for wording, where in once.items()]


SPANS = [span for doc in DOCS for span in inline_spans(doc)]


def synopsis_commands(fence: Fence) -> list[Command]:
    lines = fence.body.splitlines()
    found = [command(f"{fence.source}:{fence.line + n}", line) for n, line in enumerate(lines, start=1) if line]
    assert all(found), f"{fence.where}: a plain ``` block in the docs is a command synopsis, one chorus command a line"
    return [c for c in found if c is not None]


COMMANDS = [c for where, text in SPANS if (c := command(where, text))] + [
    c for fence in SYNOPSES for c in synopsis_commands(fence)
]


@dataclass(frozen=True)
class Help:
    returncode: int
    text: str


def chorus_help(path: tuple[str, ...]) -> Help:
    # Click's plain help (a third faster than rich's boxes), wide so that no option name is cut.
    env = {**os.environ, "TYPER_USE_RICH": "0", "COLUMNS": "200", "NO_COLOR": "1"}
    done = subprocess.run([CLI, *path, "--help"], capture_output=True, text=True, env=env, timeout=60)
    return Help(done.returncode, done.stdout + done.stderr)


@pytest.fixture(scope="session")
def cli_help() -> dict[tuple[str, ...], Help]:
    """`chorus <path> --help` once per distinct path the docs name, two at a time (the CLI takes a second
    to import)."""
    paths = sorted({path for c in COMMANDS for path in c.paths})
    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(zip(paths, pool.map(chorus_help, paths), strict=True))


def test_the_docs_show_only_snippets_this_file_checks() -> None:
    known = ("bash", "json", "python", "html", "")
    unknown = [f"{f.where} ```{f.language}" for f in FENCES if f.language not in known]
    assert not unknown, f"teach tests/test_docs_snippets.py to check these blocks: {unknown}"
    assert SHELL and JSON and PYTHON and SYNOPSES and COMMANDS and OTHERS, "the docs' snippets are no longer found"
    assert CLI.exists(), "the environment has no chorus command (uv sync creates it)"


HTML = [fence for fence in FENCES if fence.language == "html"]


@pytest.mark.parametrize("fence", HTML, ids=[f.where for f in HTML])
async def test_the_html_blocks_embed_the_widget_as_it_is(fence: Fence, server: RunningServer) -> None:
    """An HTML block is the widget's script tag: a script Chorus serves, with attributes the widget reads."""
    tags = re.findall(r"<script\s([^>]*)>\s*</script>", fence.body)
    assert tags, f"{fence.where}: no script tag"
    widget_js = (ROOT / "chorus" / "webchat" / "static" / "widget" / "widget.js").read_text()
    for attributes in tags:
        src = re.search(r'src="https?://[^/"]+(/[^"]*)"', attributes)
        assert src, f"{fence.where}: the tag has no absolute src"
        async with httpx.AsyncClient(base_url=server.url) as client:
            assert (await client.get(src.group(1))).status_code == 200, (
                f"{fence.where}: Chorus does not serve {src.group(1)}"
            )
        for name in re.findall(r"data-([a-z-]+)=", attributes):
            camel = re.sub(r"-([a-z])", lambda m: m.group(1).upper(), name)
            assert f"dataset.{camel}" in widget_js, f"{fence.where}: the widget does not read data-{name}"


@pytest.mark.parametrize("fence", SHELL, ids=[f.where for f in SHELL])
async def test_the_shell_blocks_run(
    fence: Fence, server: RunningServer, tenant: Tenant, database_url: str, tmp_path: Path
) -> None:
    await run_shell_block(
        fence.body,
        where=fence.where,
        server_url=server.url,
        tenant=tenant,
        database_url=database_url,
        home=tmp_path,
    )


@pytest.mark.parametrize("fence", PYTHON, ids=[f.where for f in PYTHON])
def test_the_python_blocks_run(fence: Fence, monkeypatch: pytest.MonkeyPatch) -> None:
    """A Python block is a webhook receiver: served as shown, it answers a delivery Chorus signed with 2xx,
    and one tampered with, signed with another tenant's secret or replayed late with 401."""
    signer = WebhookSigner(b"k" * 32)
    secret = signer.secret("tenant-a")
    monkeypatch.setenv("CHORUS_WEBHOOK_SECRET", secret)
    namespace: dict[str, Any] = {"__name__": "docs_snippet"}
    exec(compile(fence.body, fence.where, "exec"), namespace)
    handlers = [
        v
        for v in namespace.values()
        if isinstance(v, type) and issubclass(v, BaseHTTPRequestHandler) and v is not BaseHTTPRequestHandler
    ]
    assert len(handlers) == 1, f"{fence.where}: a Python block shows one receiver (a BaseHTTPRequestHandler)"
    receiver = HTTPServer(("127.0.0.1", 0), handlers[0])
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{receiver.server_address[1]}/"
    body = json.dumps({"run_id": "r1", "status": "success", "error": None}).encode()

    def post(content: bytes, signature: str) -> int:
        headers = {"X-Chorus-Signature": signature, "X-Chorus-Delivery": "d1", "Content-Type": "application/json"}
        return httpx.post(url, content=content, headers=headers, timeout=5).status_code

    try:
        assert 200 <= post(body, signer.sign("tenant-a", body)) < 300
        assert 200 <= post(body, signer.sign("tenant-a", body)) < 300  # the same delivery again: still fine
        assert post(body.replace(b"r1", b"r2"), signer.sign("tenant-a", body)) == 401
        assert post(body, signer.sign("tenant-b", body)) == 401
        assert post(body, signer.sign("tenant-a", body, at=int(time.time()) - 3600)) == 401
        assert post(body, "") == 401
    finally:
        receiver.shutdown()
        receiver.server_close()


def snippet(fence: Fence) -> dict[str, Any]:
    """A whole JSON object, or a `"key": value` fragment of one."""
    body = fence.body.strip()
    try:
        parsed = json.loads(body if body.startswith("{") else "{" + body + "}")
    except json.JSONDecodeError as exc:
        pytest.fail(f"{fence.where}: the ```json block is not JSON ({exc}):\n{fence.body}")
    assert isinstance(parsed, dict), f"{fence.where}: a config snippet is an object or a key of one"
    return parsed


def embedded(fence: Fence, host: dict[str, Any]) -> dict[str, Any]:
    """The example config `host` with the snippet where it belongs: a tool definition among the tools (listed
    as implemented), a key of the config at the top, a key of a tool in the example's HTTP tool."""
    fragment = snippet(fence)
    config = copy.deepcopy(host)
    if "tool_name" in fragment:
        name = fragment["tool_name"]
        config["tools_needed"] = [t for t in config["tools_needed"] if t["tool_name"] != name] + [fragment]
        config["tools_available"] = [t for t in config["tools_available"] if t["tool_name"] != name]
        config["tools_available"].append({"tool_name": name, "status": "implemented"})
        return config
    (key, value), *more = fragment.items()
    assert not more, f"{fence.where}: a config fragment has one key"
    if key in BotConfig.model_fields:
        config[key] = value
        return config
    if key in ToolNeeded.model_fields:
        tool = next((t for t in config["tools_needed"] if "http" in t), None)
        assert tool is not None, f"the {HOST_EXAMPLE} example lost its HTTP tool, which {fence.where} goes into"
        tool[key] = value
        return config
    pytest.fail(f"{fence.where}: no place in a bot config for the snippet's key {key!r}:\n{fence.body}")


@pytest.mark.parametrize("fence", JSON, ids=[f.where for f in JSON])
def test_the_config_snippets_validate(fence: Fence) -> None:
    config = embedded(fence, example(HOST_EXAMPLE))
    try:
        BotConfig.model_validate(config)
    except ValidationError as exc:
        pytest.fail(f"the config snippet at {fence.where} no longer validates:\n{fence.body}\n{exc}")
    # And passes the rules beyond the models, as `chorus config validate` would say.
    report = validate_config(config, registry=build_registry())
    problems = [f"{p.path}: {p.message}" for p in report.errors]
    assert report.valid, f"the config snippet at {fence.where} is refused:\n{fence.body}\n" + "\n".join(problems)


@pytest.mark.parametrize("shown", COMMANDS, ids=[f"{c.where} {c.text}" for c in COMMANDS])
def test_the_commands_named_exist(shown: Command, cli_help: dict[tuple[str, ...], Help]) -> None:
    assert shown.paths, f"{shown.where}: `{shown.text}` names no subcommand"
    for path in shown.paths:
        name = " ".join(("chorus", *path))
        page = cli_help[path]
        assert page.returncode == 0, f"{shown.where}: `{shown.text}`: `{name}` is not a command:\n{page.text}"
        accepted = set(OPTION.findall(page.text))
        unknown = [option for option in shown.options if option not in accepted]
        assert not unknown, f"{shown.where}: `{shown.text}`: `{name}` has no option {unknown}:\n{page.text}"
        missing = [value for value in shown.choices if not re.search(rf"\b{value}\b", page.text)]
        assert not missing, f"{shown.where}: `{shown.text}`: `{name} --help` never mentions {missing}"


# The other commands the docs name inline, by program. Each is checked without doing its work (`make test`
# and `make bench` run for many minutes): the make target exists, the module or test file it runs exists,
# and a one-liner that makes a vault key (the only one-liners the docs show) makes one Chorus accepts.
MAKE_TARGETS = set(re.findall(r"^([a-z][\w-]*):", (ROOT / "Makefile").read_text(encoding="utf-8"), flags=re.M))
PROGRAMS = re.compile(r"^([A-Z_]+=\S+ )*(make|pytest|openssl|python3?|\.venv/bin/python) ")
NOT_RUN = {
    "python3 -m uv lock": "it rewrites uv.lock from the network",
    "python3 -m uv": "uv as the Makefile runs it where `uv` is not on PATH (installed by `make env` if missing)",
}
OTHERS = [(where, text) for where, text in SPANS if PROGRAMS.match(text)]


def module_file(module: str) -> Path:
    return ROOT / (module.replace(".", "/") + ".py")


@pytest.mark.parametrize(("where", "text"), OTHERS, ids=[f"{where} {text}" for where, text in OTHERS])
def test_the_other_commands_named_work(where: str, text: str) -> None:
    if text in NOT_RUN:
        pytest.skip(f"not run: {NOT_RUN[text]}")
    words = shlex.split(text)
    words = words[next(i for i, word in enumerate(words) if "=" not in word) :]  # the environment goes
    program = Path(words[0]).name
    if program == "make":
        assert words[1] in MAKE_TARGETS, f"{where}: `{text}`: the Makefile has no target {words[1]!r}"
        for chosen in re.findall(r"--only[= ]([\w,]+)", text):
            unknown = [name for name in chosen.split(",") if not module_file(f"bench.{name}").exists()]
            assert not unknown, f"{where}: `{text}`: there is no benchmark {unknown}"
    elif program == "pytest":
        assert (ROOT / words[1]).exists(), f"{where}: `{text}`: {words[1]} does not exist"
    elif words[1] == "-m":
        placeholder = "<" in words[2]
        assert placeholder or module_file(words[2]).exists(), f"{where}: `{text}`: no module {words[2]}"
    else:
        done = subprocess.run(words, capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, f"{where}: `{text}` failed: {done.stderr}"
        try:
            parse_key(done.stdout, source=f"the output of `{text}`")
        except ServerMisconfigured as exc:
            pytest.fail(f"{where}: `{text}` does not make a vault key: {exc}")
