"""Attacks on the calls and eval surfaces (compare, turn-conversation, the calls API, outbound calls, the eval
metrics, the voice config fields) on a real server: other tenants, roles, hostile input (catastrophic regexes,
non-finite numbers, deep nesting, worker file paths, SSRF addresses, self-referencing schemas)."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from chorus.agents.storage.database import Database
from tests.conftest import Client, RunningServer, Tenant, example, make_tenant
from tests.evals.conftest import make_suite, wait_done
from tests.voice.conftest import LiveKit, livekit
from tests.voice.test_calls_api import a_call, voicebot
from tests.voice.test_routing import number, scheduler, store

__all__ = ["livekit"]  # the stand-in LiveKit fixture

TURN = "/api/v1/evaluation/turn-conversation"
GIVEN = {"user_input": "Where is my order?", "system_response": "It has shipped."}
HELLO = {"name": "hello", "user_input": "hello", "assertions": [{"type": "not-escalated"}]}


def raw_json(body: str) -> dict[str, Any]:
    """A request whose body is sent as written (JSON with NaN or Infinity, which json.dumps would also write)."""
    return {"content": body.encode(), "headers": {"content-type": "application/json"}}


def no_500(resp: httpx.Response) -> None:
    assert resp.status_code < 500, f"{resp.request.method} {resp.request.url} -> {resp.status_code}: {resp.text[:300]}"


# -- turn-conversation: hostile numbers and bodies -----------------------------------------------------------


@pytest.mark.parametrize(
    "assertion",
    [
        '{"type": "contains", "value": "shipped", "threshold": Infinity}',
        '{"type": "cost_budget", "value": NaN}',
        '{"type": "cost_budget", "value": Infinity}',
        '{"type": "latency", "value": NaN}',
        '{"type": "latency", "value": -Infinity}',
    ],
)
async def test_turn_conversation_refuses_non_finite_numbers(http: httpx.AsyncClient, assertion: str) -> None:
    body = '{"user_input": "hi", "system_response": "It has shipped.", "assertions": [' + assertion + "]}"
    resp = await http.post(TURN, **raw_json(body))
    no_500(resp)
    assert resp.status_code == 422, resp.text


async def test_turn_conversation_nan_in_expected_values_is_not_a_500(http: httpx.AsyncClient) -> None:
    body = (
        '{"user_input": "hi", "system_response": "It has shipped.", "evaluator_types": ["semantic_similarity"],'
        ' "expected_values": {"expected_output": "It has shipped.", "semantic_similarity": {"threshold": NaN}}}'
    )
    resp = await http.post(TURN, **raw_json(body))
    no_500(resp)
    assert resp.status_code == 422, resp.text


async def test_turn_conversation_deeply_nested_body_is_a_4xx(http: httpx.AsyncClient) -> None:
    depth = 50_000
    body = '{"user_input": "hi", "system_response": "x", "conversation_context": {"a": ' + "[" * depth + "]" * depth
    body += '}, "assertions": [{"type": "contains", "value": "x"}]}'
    resp = await http.post(TURN, **raw_json(body))
    no_500(resp)
    assert 400 <= resp.status_code < 500


@pytest.mark.parametrize(
    "thread_id", ["not-a-uuid", "../../../etc/passwd", "00000000-0000-0000-0000-000000000000\u0000", "' OR 1=1 --"]
)
async def test_turn_conversation_hostile_thread_ids_are_404(http: httpx.AsyncClient, thread_id: str) -> None:
    resp = await http.post(TURN, json={"thread_id": thread_id, "assertions": [{"type": "contains", "value": "x"}]})
    no_500(resp)
    assert resp.status_code in (404, 422), resp.text


async def test_turn_conversation_new_metrics_on_a_given_turn(http: httpx.AsyncClient) -> None:
    """semantic_similarity is measured (offline embedder); retrieval_precision, cost_budget and transferred on a
    given turn have nothing to measure: unmeasured, never passed."""
    checks = [
        {"type": "semantic_similarity", "value": "It has shipped.", "threshold": 0.5},
        {"type": "retrieval_precision", "value": ["doc-1"]},
        {"type": "cost_budget", "value": 0.01},
        {"type": "transferred"},
    ]
    resp = await http.post(TURN, json={**GIVEN, "assertions": checks})
    assert resp.status_code == 200, resp.text
    statuses = [e["status"] for e in resp.json()["evaluations"]]
    assert statuses[0] == "passed", resp.json()
    assert "passed" not in statuses[1:3], resp.json()  # nothing retrieved, no tokens: not a pass
    assert statuses[3] == "failed", resp.json()  # a given turn made no transfer_call


@pytest.mark.parametrize(
    "assertion",
    [
        {"type": "retrieval_precision", "value": []},
        {"type": "retrieval_precision", "value": {"documents": ["a"], "x": 1}},
        {"type": "cost_budget", "value": -1},
        {"type": "cost_budget", "value": "1"},
        {"type": "semantic_similarity", "value": "   "},
        {"type": "transferred", "value": {"nested": ["x"]}},
    ],
)
async def test_turn_conversation_bad_metric_values_are_422(http: httpx.AsyncClient, assertion: dict[str, Any]) -> None:
    resp = await http.post(TURN, json={**GIVEN, "assertions": [assertion]})
    no_500(resp)
    assert resp.status_code == 422, resp.text


async def test_turn_conversation_staging_and_viewer_keys(client_of: Client) -> None:
    viewer = await client_of("viewer")
    assert (
        await viewer.post(TURN, json={**GIVEN, "assertions": [{"type": "contains", "value": "x"}]})
    ).status_code == 403
    staging = await client_of("developer", "staging")
    ok = await staging.post(TURN, json={**GIVEN, "assertions": [{"type": "contains", "value": "shipped"}]})
    assert ok.status_code == 200 and ok.json()["passed"] is True, ok.text


# -- suites with the new fields: hostile values ----------------------------------------------------------------


async def test_a_nul_character_in_a_suite_or_case_is_a_422_not_a_500(http: httpx.AsyncClient) -> None:
    named = await http.post("/api/v1/evaluation/suites", json={"name": "a\u0000b"})
    no_500(named)
    assert named.status_code == 422, named.text
    suite_id = await make_suite(http, [])
    case = {"name": "nul", "user_input": "hello\u0000", "assertions": [{"type": "not-escalated"}]}
    added = await http.post(f"/api/v1/evaluation/suites/{suite_id}/evals", json=case)
    no_500(added)
    assert added.status_code in (201, 422), added.text


async def test_a_simulated_user_fact_that_is_nan_is_a_422(http: httpx.AsyncClient) -> None:
    suite_id = await make_suite(http, [])
    case = (
        '{"name": "sim", "simulated_user": {"persona": {"description": "a customer", "script": {"order id": NaN}},'
        ' "scenario": "wants the order status", "expected_outcome": [{"type": "not-escalated"}]}}'
    )
    resp = await http.post(f"/api/v1/evaluation/suites/{suite_id}/evals", **raw_json(case))
    no_500(resp)
    assert resp.status_code == 422, resp.text


async def test_an_evaluator_config_extra_that_is_nan_is_a_422(http: httpx.AsyncClient) -> None:
    body = '{"name": "nan-config-' + uuid.uuid4().hex[:6] + '", "evaluator_config": {"anything": NaN}}'
    resp = await http.post("/api/v1/evaluation/suites", **raw_json(body))
    no_500(resp)
    assert resp.status_code == 422, resp.text


@pytest.mark.parametrize(
    "base_url",
    [
        "http://169.254.169.254/latest/meta-data/",  # cloud metadata: link-local, refused always for HTTP tools
        "http://[fd00:ec2::254]/v1",
        "http://0.0.0.0:5432/",
    ],
)
async def test_a_judge_base_url_on_a_forbidden_address_is_refused(http: httpx.AsyncClient, base_url: str) -> None:
    """Run webhooks and HTTP tools refuse link-local, unspecified and reserved addresses (agents/destinations.py);
    a suite's judge is a request the server makes to a URL the tenant chose, so it should be refused the same."""
    judge = {"provider": "openai_compatible", "model": "m", "base_url": base_url}
    resp = await http.post(
        "/api/v1/evaluation/suites",
        json={"name": f"ssrf-{uuid.uuid4().hex[:6]}", "evaluator_config": {"judge": judge}},
    )
    no_500(resp)
    assert resp.status_code == 422, resp.text


async def test_a_judge_cannot_use_another_tenants_secret(
    http: httpx.AsyncClient, server: RunningServer, db: Database, assistant_id: str
) -> None:
    """Tenant B holds a secret 'JUDGE_KEY'; a suite of tenant A naming it must not get B's value (the judged metric
    reports the missing secret, never a score made with B's key)."""
    other = await make_tenant(db)
    async with httpx.AsyncClient(base_url=server.url, headers={"x-api-key": other.key}) as theirs:
        made = await theirs.post("/api/v1/secrets", json={"name": "JUDGE_KEY", "value": "sk-other-tenant-secret"})
        assert made.status_code in (200, 201, 204), made.text
    judge = {"provider": "openai", "model": "gpt-4o-mini", "api_key_secret": "JUDGE_KEY", "max_retries": 0}
    case = {"name": "judged", "user_input": "hello", "evaluator_types": ["answer_relevancy"]}
    suite_id = await make_suite(http, [case], judge=judge)
    started = await http.post(f"/api/v1/evaluation/suites/{suite_id}/execute", json={"config_id": assistant_id})
    no_500(started)
    if started.status_code == 202:
        done = await wait_done(http, started.json()["id"])
        text = (await http.get(f"/api/v1/evaluation/executions/{done['id']}/summary")).text
        assert "sk-other-tenant-secret" not in text
        assert "JUDGE_KEY" in text, text[:2000]  # says which secret is missing
    else:
        assert started.status_code in (404, 422) and "JUDGE_KEY" in started.text, started.text


# -- compare across tenants and with hostile ids -----------------------------------------------------------------


async def test_compare_with_another_tenants_execution_is_a_404_without_its_data(
    http: httpx.AsyncClient, server: RunningServer, db: Database, assistant_id: str, acme_config: dict[str, Any]
) -> None:
    suite_id = await make_suite(http, [HELLO])
    ours = []
    for _ in range(2):
        started = await http.post(f"/api/v1/evaluation/suites/{suite_id}/execute", json={"config_id": assistant_id})
        ours.append((await wait_done(http, started.json()["id"]))["id"])
    other = await make_tenant(db)
    async with httpx.AsyncClient(base_url=server.url, headers={"x-api-key": other.key}) as theirs:
        their_bot = (await theirs.post("/assistants", json={"graph_id": "chatbot", "context": acme_config})).json()
        their_suite = await make_suite(theirs, [HELLO])
        run = await theirs.post(
            f"/api/v1/evaluation/suites/{their_suite}/execute", json={"config_id": their_bot["assistant_id"]}
        )
        theirs_id = (await wait_done(theirs, run.json()["id"]))["id"]
        # Their key on our executions, with their own as the base, and the other way round.
        for head, base in ((ours[1], theirs_id), (theirs_id, ours[0])):
            seen = await theirs.get(f"/api/v1/evaluation/executions/{head}/compare", params={"base": base})
            if head == theirs_id:
                assert seen.status_code == 404, seen.text
            else:
                assert seen.status_code == 404 and "hello" not in seen.text and assistant_id not in seen.text
    mixed = await http.get(f"/api/v1/evaluation/executions/{ours[1]}/compare", params={"base": theirs_id})
    assert mixed.status_code == 404 and their_bot["assistant_id"] not in mixed.text, mixed.text


@pytest.mark.parametrize("base", ["-1", "0", "1e3", "9" * 32, "1; DROP TABLE eval_suite_executions", "\u0000", " "])
async def test_compare_hostile_base_ids_are_404_or_422(http: httpx.AsyncClient, base: str) -> None:
    resp = await http.get("/api/v1/evaluation/executions/1/compare", params={"base": base})
    no_500(resp)
    assert resp.status_code in (404, 422), resp.text


# -- the calls API --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "params",
    [
        {"config_id": "a\u0000b"},
        {"since": "9999-12-31T23:59:59-14:00"},
        {"until": "0001-01-01T00:00:00+14:00"},
        {"config_id": "' OR '1'='1"},
        {"config_id": "x" * 129},
    ],
)
async def test_hostile_call_list_parameters_are_not_a_500(http: httpx.AsyncClient, params: dict[str, str]) -> None:
    resp = await http.get("/api/v1/calls", params=params)
    no_500(resp)
    assert resp.status_code in (200, 422), resp.text
    if resp.status_code == 200:
        assert resp.json() == []


async def test_another_tenants_config_id_lists_none_of_its_calls(
    db: Database, tenant: Tenant, tmp_path: Path, server: RunningServer
) -> None:
    raw = await voicebot(db, tenant, tmp_path)
    call_id = await a_call(db, tenant, raw)
    other = await make_tenant(db)
    async with httpx.AsyncClient(base_url=server.url, headers={"x-api-key": other.key}) as theirs:
        listed = await theirs.get("/api/v1/calls", params={"config_id": raw["config_metadata"]["config_id"]})
        assert listed.status_code == 200 and listed.json() == []
        one = await theirs.get(f"/api/v1/calls/{call_id.upper()}")
        assert one.status_code == 404
        for word in ("appointment", "+14155550100", raw["sip_config"]["primary_endpoint"]):
            assert word not in one.text


@pytest.mark.parametrize(
    "to",
    [
        "+15551234567\n",  # `$` in E164 matches before a final newline
        "+1\u0665\u0665\u0665\u0661\u0662\u0663\u0664\u0665\u0666\u0667",  # Arabic-Indic digits match \d
        "+\uff11\uff15\uff15\uff15\uff11\uff12\uff13\uff14\uff15\uff16\uff17",  # full-width digits
    ],
)
async def test_outbound_refuses_numbers_that_are_not_ascii_e164(
    livekit: LiveKit,
    db: Database,
    tenant: Tenant,
    client_of: Client,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    to: str,
) -> None:
    for name, value in livekit.env().items():
        monkeypatch.setenv(name, value)
    raw = scheduler(number(), number())
    await store(db, tenant, tmp_path, raw)
    developer = await client_of("developer")
    resp = await developer.post("/api/v1/calls", json={"config_id": raw["config_metadata"]["config_id"], "to": to})
    assert resp.status_code == 422 and "E.164" in resp.text, resp.text
    assert [m for m, _ in livekit.state.requests] == []  # nothing dialed


@pytest.mark.parametrize(
    "body",
    [
        {"config_id": "a\u0000b", "to": "+15551234567"},
        {"config_id": "../../etc/passwd", "to": "+15551234567"},
        {"config_id": ["x"], "to": "+15551234567"},
        {"config_id": "x", "to": 15551234567},
        {"config_id": "x", "to": "+15551234567", "from": None, "extra": 1},
    ],
)
async def test_outbound_hostile_bodies_are_4xx(
    livekit: LiveKit, client_of: Client, monkeypatch: pytest.MonkeyPatch, body: dict[str, Any]
) -> None:
    for name, value in livekit.env().items():
        monkeypatch.setenv(name, value)
    developer = await client_of("developer")
    resp = await developer.post("/api/v1/calls", json=body)
    no_500(resp)
    assert resp.status_code in (404, 422), resp.text
    assert [m for m, _ in livekit.state.requests] == []


async def test_outbound_call_roles(
    livekit: LiveKit, db: Database, tenant: Tenant, client_of: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in livekit.env().items():
        monkeypatch.setenv(name, value)
    raw = scheduler(number(), number())
    await store(db, tenant, tmp_path, raw)
    body = {"config_id": raw["config_metadata"]["config_id"], "to": "+15551234567"}
    for role in ("viewer",):
        client = await client_of(role)
        assert (await client.post("/api/v1/calls", json=body)).status_code == 403, role
    async with httpx.AsyncClient(base_url=str((await client_of()).base_url)) as anonymous:
        assert (await anonymous.post("/api/v1/calls", json=body)).status_code == 401


# -- config fields of issue 10/11 ------------------------------------------------------------------------------


def voice_config(**changes: Any) -> dict[str, Any]:
    raw = example("healthcare_scheduler")
    raw["config_metadata"]["config_id"] = f"audit-{uuid.uuid4().hex[:8]}"
    raw["sip_config"]["primary_endpoint"], raw["sip_config"]["failover_endpoint"] = number(), number()
    for path, value in changes.items():
        node = raw
        *parents, leaf = path.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return raw


@pytest.mark.parametrize(
    "custom_url",
    ["/etc/passwd", "../../../../etc/shadow", "/proc/self/environ", "~/.ssh/id_rsa"],
)
async def test_background_sound_cannot_name_any_file_of_the_worker(http: httpx.AsyncClient, custom_url: str) -> None:
    """The worker opens custom_url and plays it into the tenant's call: a tenant must not name the worker's own
    files (or another tenant's) by an absolute path or '..'."""
    raw = voice_config(**{"voice_settings.background_sound": {"type": "custom", "custom_url": custom_url}})
    resp = await http.post("/assistants", json={"graph_id": "voicebot", "context": raw})
    no_500(resp)
    assert resp.status_code == 422, resp.text


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("call_webhook", {"url": "http://169.254.169.254/latest/meta-data/"}),
        ("call_webhook", {"url": "http://user:pass@example.com/hook"}),
        ("call_webhook", {"url": "https://"}),
        ("call_webhook", {"url": "http://exa mple.com/\u0000"}),
    ],
)
async def test_call_webhook_urls_the_sender_would_refuse_are_refused_when_the_config_is_saved(
    http: httpx.AsyncClient, path: str, value: Any
) -> None:
    """The webhook sender refuses these at delivery (after the call); the config should say so when saved."""
    resp = await http.post("/assistants", json={"graph_id": "voicebot", "context": voice_config(**{path: value})})
    no_500(resp)
    assert resp.status_code == 422, resp.text


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("workflow_features.voicemail.message", "x" * 100_000),
        ("workflow_features.voicemail.message", ""),
        ("call_transfer.transfer_destinations", [{"name": "desk", "phone": "+15551234567", "mode": "teleport"}]),
        ("call_transfer.transfer_destinations", [{"name": "desk", "phone": "+15551234567\n", "mode": "warm"}]),
        (
            "call_transfer.transfer_destinations",
            [{"name": "desk", "phone": "+\u0661\u0665\u0665\u0665", "mode": "cold"}],
        ),
        ("analysis_plan.structured_data", {"json_schema": {"type": "object", "$ref": "http://169.254.169.254/"}}),
        ("analysis_plan.structured_data", {"json_schema": {"type": "array"}}),
        ("llm_config", {"provider": "openai_compatible", "model": "m", "base_url": "http://169.254.169.254/v1"}),
        ("llm_config.api_key_env", "DATABASE_URL"),
        ("llm_config.api_key_env", "CHORUS_MASTER_KEY"),
    ],
)
async def test_hostile_issue_fields_are_a_422(http: httpx.AsyncClient, path: str, value: Any) -> None:
    raw = voice_config(**{path: value})
    resp = await http.post("/assistants", json={"graph_id": "voicebot", "context": raw})
    no_500(resp)
    assert resp.status_code == 422, resp.text
    assert "DATABASE_URL=" not in resp.text and "postgres" not in resp.text.lower()


async def test_a_case_with_a_non_finite_budget_is_refused_when_added(http: httpx.AsyncClient) -> None:
    """cost_budget's and latency's check (`value < 0`) lets NaN and Infinity through; turn-conversation then
    answers 500 (the dumped case holds null) — a case must be refused where it is added."""
    suite_id = await make_suite(http, [])
    for value in ("NaN", "Infinity"):
        case = '{"name": "budget", "user_input": "hi", "assertions": [{"type": "cost_budget", "value": ' + value + "}]}"
        resp = await http.post(f"/api/v1/evaluation/suites/{suite_id}/evals", **raw_json(case))
        no_500(resp)
        assert resp.status_code == 422, (value, resp.text)


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "object", "properties": {"d": {"$ref": "https://example.com/schema.json"}}},
        {"type": "object", "properties": {"d": {"$ref": "#"}}, "$ref": "#"},
    ],
)
async def test_an_analysis_schema_with_refs_is_refused_when_saved(
    http: httpx.AsyncClient, schema: dict[str, Any]
) -> None:
    """A remote $ref is never fetched and a self-referencing one never ends (the post-call analysis would fail
    on every attempt): refused when the config is saved, saying to write the definitions inline."""
    raw = voice_config(**{"analysis_plan": {"structured_data": {"json_schema": schema}}})
    resp = await http.post("/assistants", json={"graph_id": "voicebot", "context": raw})
    no_500(resp)
    assert resp.status_code == 422 and "references are not supported" in resp.text, resp.text


async def test_a_staging_key_does_not_dial_with_productions_bot(
    livekit: LiveKit, db: Database, tenant: Tenant, client_of: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A staging key's conversations get what staging serves; an outbound call placed with one is dispatched with
    no environment in its metadata, so the worker routes it to production's version (routing.py serves
    DEFAULT_ENVIRONMENT). Expected: refused (403), or dispatched for staging."""
    for name, value in livekit.env().items():
        monkeypatch.setenv(name, value)
    raw = scheduler(number(), number())
    await store(db, tenant, tmp_path, raw)
    staging = await client_of("developer", "staging")
    resp = await staging.post(
        "/api/v1/calls", json={"config_id": raw["config_metadata"]["config_id"], "to": "+15551234567"}
    )
    if resp.status_code == 202:
        (request,) = [req for method, req in livekit.state.requests if method == "CreateDispatch"]
        assert json.loads(request.metadata).get("environment") == "staging", request.metadata
    else:
        assert resp.status_code == 403, resp.text


async def test_a_deleted_voicebot_places_no_call(
    livekit: LiveKit, http: httpx.AsyncClient, client_of: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in livekit.env().items():
        monkeypatch.setenv(name, value)
    made = await http.post("/assistants", json={"graph_id": "voicebot", "context": voice_config()})
    assert made.status_code == 200, made.text
    assistant = made.json()["assistant_id"]
    assert (await http.delete(f"/assistants/{assistant}")).status_code in (200, 204)
    developer = await client_of("developer")
    resp = await developer.post("/api/v1/calls", json={"config_id": assistant, "to": "+15551234567"})
    assert resp.status_code == 404, resp.text
    assert [m for m, _ in livekit.state.requests] == []


async def test_importing_a_suite_of_the_same_name_never_touches_another_tenants(
    http: httpx.AsyncClient, server: RunningServer, db: Database, client_of: Client
) -> None:
    name = f"shared-name-{uuid.uuid4().hex[:6]}"
    ours = await http.post("/api/v1/evaluation/suites/import", json={"name": name, "cases": [HELLO]})
    assert ours.status_code == 201, ours.text
    other = await make_tenant(db)
    async with httpx.AsyncClient(base_url=server.url, headers={"x-api-key": other.key}) as theirs:
        replaced = await theirs.post(
            "/api/v1/evaluation/suites/import",
            json={
                "name": name,
                "cases": [{"name": "theirs", "user_input": "x", "assertions": [{"type": "not-escalated"}]}],
            },
        )
        assert replaced.status_code == 201 and replaced.json()["id"] != ours.json()["id"], replaced.text
    kept = await http.get(f"/api/v1/evaluation/suites/{ours.json()['id']}")
    assert kept.status_code == 200 and "theirs" not in kept.text, kept.text
    viewer = await client_of("viewer")
    assert (
        await viewer.post("/api/v1/evaluation/suites/import", json={"name": name, "cases": [HELLO]})
    ).status_code == 403


async def test_a_catastrophic_regex_does_not_stall_the_server_for_every_tenant(
    http: httpx.AsyncClient, server: RunningServer
) -> None:
    """A `regex` assertion runs Python's re on the response in the server's event loop: `(a+)+$` on 'a'*24 + '!'
    backtracks for about a second per assertion, and a case may hold 100 of them. While it runs no other
    request of any tenant is answered. Here 3 of them: /health must still answer within a second."""
    evil = [{"type": "regex", "value": "(a+)+$"}] * 3
    body = {"user_input": "hi", "system_response": "a" * 24 + "!", "assertions": evil}

    def health_latency() -> tuple[int, float]:
        # In a thread with a clock of its own: the server shares this test's event loop.
        time.sleep(0.3)
        start = time.monotonic()
        answer = httpx.get(f"{server.url}/health", timeout=60)
        return answer.status_code, time.monotonic() - start

    probe = asyncio.create_task(asyncio.to_thread(health_latency))
    judged = await http.post(TURN, json=body)
    code, waited = await probe
    assert judged.status_code == 200 and judged.json()["passed"] is False, judged.text
    assert code == 200
    assert waited < 1.0, f"/health waited {waited:.1f}s behind one tenant's regex assertions"


@pytest.mark.parametrize("depth", [400, 800, 950])
async def test_a_deeply_nested_case_is_stored_or_refused_never_a_500(http: httpx.AsyncClient, depth: int) -> None:
    suite_id = await make_suite(http, [])
    nested = '{"a": ' * depth + "1" + "}" * depth
    case = '{"name": "deep", "user_input": "hi", "assertions": [{"type": "not-escalated"}], '
    case += '"conversation_context": ' + nested + "}"
    resp = await http.post(f"/api/v1/evaluation/suites/{suite_id}/evals", **raw_json(case))
    no_500(resp)
    assert resp.status_code in (201, 413, 422), resp.text
    listed = await http.get(f"/api/v1/evaluation/suites/{suite_id}")
    no_500(listed)


@pytest.mark.parametrize("depth", [400, 800, 950])
async def test_a_deeply_nested_turn_is_judged_or_refused_never_a_500(http: httpx.AsyncClient, depth: int) -> None:
    nested = '{"a": ' * depth + "1" + "}" * depth
    body = '{"user_input": "hi", "system_response": "x", "assertions": [{"type": "contains", "value": "x"}], '
    body += '"expected_values": ' + nested + "}"
    resp = await http.post(TURN, **raw_json(body))
    no_500(resp)


async def test_a_deeply_nested_evaluator_config_is_refused_not_a_500(http: httpx.AsyncClient) -> None:
    nested = '{"a": ' * 400 + "1" + "}" * 400
    body = '{"name": "deep-' + uuid.uuid4().hex[:6] + '", "evaluator_config": {"extra": ' + nested + "}}"
    resp = await http.post("/api/v1/evaluation/suites", **raw_json(body))
    no_500(resp)
    imported = '{"name": "deep-import", "evaluator_config": {"extra": ' + nested + '}, "cases": [{"user_input": "hi"}]}'
    resp = await http.post("/api/v1/evaluation/suites/import", **raw_json(imported))
    no_500(resp)


@pytest.mark.parametrize("path", ["/threads", "/assistants/search"])
async def test_deep_nesting_elsewhere_in_the_api_is_not_a_500(http: httpx.AsyncClient, path: str) -> None:
    """Whether the nesting 500 above is the eval routes' alone or the whole API's (no depth limit on bodies)."""
    nested = '{"a": ' * 400 + "1" + "}" * 400
    resp = await http.post(path, **raw_json('{"metadata": ' + nested + "}"))
    no_500(resp)
