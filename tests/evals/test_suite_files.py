"""Suite files: the published JSON Schema is the models' and validates the examples; bad files name the
field and line; `chorus eval run` imports a file into a real server, executes it and exits 0/1/2 as CI needs."""

from __future__ import annotations

import asyncio
import json
from asyncio.subprocess import PIPE
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import httpx
import jsonschema
import pytest
import yaml

from chorus.agents.errors import InvalidInput
from chorus.evals.suite_files import parse, schema_text
from tests.conftest import ROOT, RunningServer, Tenant
from tests.doc_snippets import CLI

SCHEMA = ROOT / "configs" / "schema" / "eval-suite.schema.json"
EXAMPLES = sorted((ROOT / "configs" / "evals").glob("*.y*ml")) + sorted((ROOT / "configs" / "evals").glob("*.json"))


def test_the_published_schema_is_the_models() -> None:
    assert SCHEMA.read_text(encoding="utf-8") == schema_text(), "run `chorus eval schema --write`"


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_the_schema_validates_the_examples(path: Path) -> None:
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft202012Validator(schema).validate(yaml.safe_load(path.read_text()))
    suite, cases = parse(path.read_text()).suite.definition()
    assert suite.name and cases


def test_the_schema_refuses_what_the_models_refuse() -> None:
    validator = jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text()))
    bad = {"name": "x", "cases": [{"user_input": "hi", "assertions": [{"type": "contians", "value": "a"}]}]}
    assert not validator.is_valid(bad)
    assert not validator.is_valid({"name": "x", "cases": []})


def test_templates_defaults_turns_and_vars_resolve() -> None:
    text = """
name: resolved
templates:
  polite: {type: icontains, value: thanks, weight: 2}
defaults:
  assertions: [{template: polite}]
  repeat: 3
  vars: {order: ORD-1}
  tool_mocks: {fetch_order_status: {status: lost}}
cases:
  - turns: ["Where is {{order}}?", "and now?"]
    assertions: [{template: polite, weight: 5, metric: thanks}]
  - user_input: hi
    repeat: 1
    vars: {order: ORD-2}
    tool_mocks: {fetch_order_status: {status: found}}
    assertions: [{type: not-escalated}]
"""
    _, (first, second) = parse(text).suite.definition()
    assert (first.user_input, first.turns, first.repeat) == ("Where is {{order}}?", ["and now?"], 3)
    assert first.user_turns() == ["Where is ORD-1?", "and now?"]
    assert [(a.metric, a.weight) for a in first.assertions] == [(None, 2.0), ("thanks", 5.0)]
    assert (second.repeat, second.vars, second.tool_mocks) == (
        1,
        {"order": "ORD-2"},
        {"fetch_order_status": {"status": "found"}},
    )
    assert second.name == "case 2"


@pytest.mark.parametrize(
    ("text", "path", "line"),
    [
        (
            "name: x\ncases:\n  - user_input: hi\n    assertions:\n      - type: contians\n",
            "$.cases[0].assertions[0].type",
            5,
        ),
        ("name: x\ncases:\n  - user_input: hi\n    turns: [a]\n    assertions: [{type: escalated}]\n", "$.cases[0]", 3),
        (
            "name: x\ncases:\n  - user_input: hi\n    assertions:\n      - template: nope\n",
            "$.cases[0].assertions[0].template",
            None,
        ),
        (
            "name: x\ncases:\n  - user_input: hi\n    repeat: 0\n    assertions: [{type: escalated}]\n",
            "$.cases[0].repeat",
            4,
        ),
        (
            "name: x\ncases:\n  - simulated_user:\n      persona: {name: Sam}\n      scenario: s\n"
            "      expected_outcome: [{type: escalated}]\n",
            "$.cases[0].simulated_user.persona.description",
            4,
        ),
        (
            "name: x\ncases:\n  - simulated_user:\n      persona: {description: d}\n      scenario: s\n"
            "      expected_outcome: done\n      max_turns: 99\n",
            "$.cases[0].simulated_user.max_turns",
            7,
        ),
        (
            "name: x\ncases:\n  - user_input: hi\n    simulated_user:\n      persona: {description: d}\n"
            "      scenario: s\n      expected_outcome: done\n",
            "$.cases[0]",
            3,
        ),
        ("name: x\ncases: [\n", "$", 3),
        ("- just a list\n", "$", None),
    ],
)
def test_bad_files_name_the_field_and_line(text: str, path: str, line: int | None) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse(text).suite.definition()
    problems = refused.value.extra["errors"]
    assert any(p["path"] == path and p.get("line") == line for p in problems), problems


async def _cli(*args: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(str(CLI), "eval", *args, stdout=PIPE, stderr=PIPE, cwd=ROOT)
    out, err = await asyncio.wait_for(process.communicate(), timeout=180)
    return process.returncode or 0, out.decode() + err.decode()


@pytest.fixture
async def acme(http: httpx.AsyncClient, acme_config: dict[str, Any]) -> str:
    created = await http.post("/api/v1/configs", json=acme_config)
    assert created.status_code == 201, created.text
    return str(created.json()["config_id"])


async def test_chorus_eval_run_passes_the_example_suite(
    server: RunningServer, tenant: Tenant, acme: str, http: httpx.AsyncClient
) -> None:
    suite = str(ROOT / "configs" / "evals" / "acme_support_bot.yaml")
    code, out = await _cli("run", suite, "--config", acme, "--url", server.url, "--api-key", tenant.key)
    assert code == 0, out
    assert "PASS       order status (2/2 trials passed)" in out
    assert "PASS       refund over two turns (1/1 trials passed)" in out
    assert "PASS       a customer who leaves out the order number (1/1 trials passed)" in out
    assert "suite passed: 5/5 trials" in out
    # Importing the file again replaces its cases (the old ones stay for their results).
    code, out = await _cli("run", suite, "--config", acme, "--url", server.url, "--api-key", tenant.key, "--json")
    assert code == 0, out
    suites = (await http.get("/api/v1/evaluation/suites")).json()["suites"]
    assert [(s["name"], s["case_count"]) for s in suites] == [("acme-support-smoke", 4)]


async def test_chorus_eval_run_exit_codes(server: RunningServer, tenant: Tenant, acme: str, tmp_path: Path) -> None:
    failing = tmp_path / "failing.json"
    failing.write_text(
        json.dumps(
            {
                "name": "failing",
                "cases": [
                    {
                        "name": "impossible",
                        "user_input": "hello",
                        "assertions": [{"type": "contains", "value": "zebra"}],
                    }
                ],
            }
        )
    )
    common = ["--url", server.url, "--api-key", tenant.key]
    junit, summary = tmp_path / "results.xml", tmp_path / "summary.md"
    code, out = await _cli(
        "run", str(failing), "--config", acme, *common, "--junit", str(junit), "--markdown", str(summary)
    )
    assert code == 1 and "FAIL       impossible (0/1 trials passed)" in out and "does not contain 'zebra'" in out, out
    suite = ElementTree.parse(junit).getroot()
    assert (suite.tag, suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("testsuite", "1", "1", "0")
    failure = suite.find("testcase/failure")
    assert failure is not None and failure.get("message") == "0/1 trials passed" and "zebra" in (failure.text or "")
    assert "| impossible | failed | 0/1 | 0% (0% to 79%) |" in summary.read_text()
    assert "**failed**" in summary.read_text()
    code, out = await _cli("run", str(failing), "--config", "no-such-bot", *common)
    assert code == 2 and "404" in out, out
    code, out = await _cli("run", str(failing), "--config", acme, "--version", "9", *common)
    assert code == 2 and "404" in out, out
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: x\ncases:\n  - user_input: hi\n    assertions: [{type: contians}]\n")
    code, out = await _cli("run", str(broken), "--config", acme, *common)
    assert code == 2 and "$.cases[0].assertions[0].type (line 4)" in out, out
    code, out = await _cli("run", str(failing), *common)
    assert code == 2 and "give --config ID" in out, out
    bot = str(ROOT / "configs" / "examples" / "acme_support_bot.json")
    code, out = await _cli("run", str(failing), "--config-file", bot, *common)
    assert code == 1 and "on unsaved config" in out, out
    code, out = await _cli("run", str(failing), "--config", acme, "--url", "http://127.0.0.1:9", "--api-key", "k")
    assert code == 3 and "cannot reach" in out, out
