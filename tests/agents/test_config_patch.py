"""Classified config changes over the API: PATCH with a JSON merge patch and the visual editor's voice settings,
each change allowed by its permission, low risk current at once, medium and high waiting for their approvers
(an organization_admin; and a platform_engineer), rejected for good, and never used by a thread before."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest

from chorus.agents.configs.merge_patch import merge_patch
from chorus.agents.storage.database import Database
from chorus.agents.tenancy.keys import create_api_key
from tests.conftest import RunningServer, Tenant

CONFIGS = "/api/v1/configs"
ACME = f"{CONFIGS}/acme_support_bot"
HELLO = {"messages": [{"role": "user", "content": "hello"}]}
MERGE_PATCH = {"content-type": "application/merge-patch+json"}

Client = Callable[[str], Awaitable[httpx.AsyncClient]]


@pytest.fixture
async def as_role(server: RunningServer, db: Database, tenant: Tenant) -> AsyncIterator[Client]:
    """A client with a new key of the role asked for (two calls, two keys)."""
    clients: list[httpx.AsyncClient] = []

    async def make(role: str) -> httpx.AsyncClient:
        key = await create_api_key(db, tenant_id=tenant.tenant_id, role=role, name=f"{role} key")
        clients.append(httpx.AsyncClient(base_url=server.url, headers={"x-api-key": key}, timeout=60))
        return clients[-1]

    yield make
    for client in clients:
        await client.aclose()


@pytest.fixture
async def acme(http: httpx.AsyncClient, acme_config: dict[str, Any]) -> dict[str, Any]:
    resp = await http.post(CONFIGS, json=acme_config)
    assert resp.status_code == 201, resp.text
    body: dict[str, Any] = resp.json()
    return body


def with_tool(config: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return [*copy.deepcopy(config["tools_available"]), {"tool_name": name, "status": "implemented"}]


async def versions(client: httpx.AsyncClient) -> dict[str, Any]:
    body: dict[str, Any] = (await client.get(f"{ACME}/versions")).json()
    return body


# RFC 7396, appendix A.
@pytest.mark.parametrize(
    ("target", "patch", "result"),
    [
        ({"a": "b"}, {"a": "c"}, {"a": "c"}),
        ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
        ({"a": "b"}, {"a": None}, {}),
        ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
        ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
        ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
        ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
        ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
        (["a", "b"], ["c", "d"], ["c", "d"]),
        ({"a": "b"}, ["c"], ["c"]),
        ({"a": "foo"}, None, None),
        ({"a": "foo"}, "bar", "bar"),
        ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
        ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
        ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
    ],
)
def test_merge_patch_follows_rfc_7396(target: Any, patch: Any, result: Any) -> None:
    before = copy.deepcopy(target)
    assert merge_patch(target, patch) == result
    assert target == before


async def test_a_low_risk_merge_patch_is_current_at_once_and_null_removes_a_key(
    http: httpx.AsyncClient, acme: dict[str, Any]
) -> None:
    resp = await http.patch(
        ACME, content=b'{"system_prompt": {"tone": "calm"}}', headers=MERGE_PATCH, params={"commit_message": "calmer"}
    )
    assert resp.status_code == 200, resp.text
    done = resp.json()
    assert (done["changed"], done["version"], done["status"], done["current_version"]) == (True, 2, "current", 2)
    assert done["risk_level"] == "low" and done["requires_approval"] is False
    assert done["changes"][0]["type"] == "system_prompt_change" and done["changes"][0]["field"] == "system_prompt.tone"
    assert done["diff"] == {"system_prompt.tone": {"old": "friendly_professional", "new": "calm"}}
    config = done["parsed_config"]
    assert config["system_prompt"]["instructions"] == acme["parsed_config"]["system_prompt"]["instructions"]

    removed = (await http.patch(ACME, json={"system_prompt": {"tone": None}})).json()  # plain JSON works too
    assert removed["version"] == 3 and "tone" not in removed["parsed_config"]["system_prompt"]
    again = (await http.patch(ACME, json={"system_prompt": {"tone": None}})).json()
    assert (again["changed"], again["status"], again["version"]) == (False, "unchanged", 3)

    history = await versions(http)
    assert history["total_versions"] == 3 and history["current_version"] == 3
    latest = history["versions"][0]
    assert (latest["status"], latest["source"], latest["risk_level"]) == ("current", "patch", "low")
    second = history["versions"][1]
    assert (second["status"], second["commit_message"], second["changes"][0]["new_value"]) == (
        "superseded",
        "calmer",
        "calm",
    )


async def test_a_patch_that_breaks_the_schema_stores_nothing(http: httpx.AsyncClient, acme: dict[str, Any]) -> None:
    resp = await http.patch(
        ACME, json={"system_prompt": {"tone": "calm"}, "llm_config": {"parameters": {"temperature": "hot"}}}
    )
    assert resp.status_code == 422, resp.text
    assert any("temperature" in e["path"] for e in resp.json()["errors"])
    renamed = await http.patch(ACME, json={"config_metadata": {"config_id": "another"}})
    assert renamed.status_code == 422 and "cannot change" in renamed.text
    not_an_object = await http.patch(ACME, json=[{"op": "replace"}])
    assert not_an_object.status_code == 422
    assert (await versions(http))["total_versions"] == 1


async def test_each_change_needs_its_permission(as_role: Client, acme: dict[str, Any]) -> None:
    viewer = await as_role("viewer")
    refused = await viewer.patch(ACME, json={"system_prompt": {"tone": "calm"}})
    assert refused.status_code == 403 and "edit_system_prompt" in refused.json()["detail"]

    manager = await as_role("config_manager")
    assert (await manager.patch(ACME, json={"system_prompt": {"tone": "calm"}})).json()["status"] == "current"
    tools = with_tool(acme["parsed_config"], "faq_search")
    denied = await manager.patch(ACME, json={"tools_available": tools, "system_prompt": {"tone": "warm"}})
    assert denied.status_code == 403, denied.text
    detail = denied.json()["detail"]
    assert "'add_remove_tools'" in detail and "organization_admin, developer, platform_engineer" in detail
    assert denied.json()["missing_permissions"] == ["add_remove_tools"]
    assert (await versions(manager))["total_versions"] == 2  # nothing stored, not even the allowed tone

    developer = await as_role("developer")
    pending = (await developer.patch(ACME, json={"tools_available": tools})).json()
    assert (pending["version"], pending["status"], pending["risk_level"]) == (3, "pending_approval", "medium")
    assert pending["approval_required_from"] == ["organization_admin"] and pending["current_version"] == 2


async def test_medium_risk_waits_for_an_organization_admin_and_new_threads_keep_the_current_version(
    http: httpx.AsyncClient, as_role: Client, acme: dict[str, Any]
) -> None:
    developer = await as_role("developer")
    patch = {"system_prompt": {"instructions": "Answer in one short sentence."}}
    pending = (await developer.patch(ACME, json=patch, params={"commit_message": "shorter"})).json()
    assert (pending["version"], pending["status"], pending["risk_level"]) == (2, "pending_approval", "medium")
    assert (await http.get(ACME)).json()["version"] == 1

    thread = (await http.post("/threads", json={})).json()["thread_id"]
    run = await http.post(f"/threads/{thread}/runs/wait", json={"assistant_id": acme["assistant_id"], "input": HELLO})
    assert run.status_code == 200, run.text
    assert (await http.get(f"/threads/{thread}")).json()["config_version"] == 1

    listed = (await versions(http))["versions"][0]
    assert (listed["version"], listed["status"], listed["current"], listed["rollback_available"]) == (
        2,
        "pending_approval",
        False,
        False,
    )
    refused = await http.post(f"{ACME}/rollback", json={"target_version": 2, "reason": "skip the approval"})
    assert refused.status_code == 422 and "waiting for approval" in refused.json()["detail"]
    latest = await http.post(f"/assistants/{acme['assistant_id']}/latest", json={"version": 2})
    assert latest.status_code == 422

    for role in ("developer", "platform_engineer", "config_manager"):
        wrong = await (await as_role(role)).post(f"{ACME}/versions/2/approve", json={"comment": "lgtm"})
        assert wrong.status_code == 403, (role, wrong.text)

    approved = await http.post(f"{ACME}/versions/v2/approve", json={"comment": "fine by me"})
    assert approved.status_code == 200, approved.text
    body = approved.json()
    assert (body["status"], body["current_version"], body["approval_required_from"]) == ("current", 2, [])
    assert [(a["decision"], a["role"], a["comment"]) for a in body["approvals"]] == [
        ("approve", "organization_admin", "fine by me")
    ]
    again = await http.post(f"{ACME}/versions/2/approve", json={})
    assert again.status_code == 409
    thread = (await http.post("/threads", json={})).json()["thread_id"]
    await http.post(f"/threads/{thread}/runs/wait", json={"assistant_id": acme["assistant_id"], "input": HELLO})
    assert (await http.get(f"/threads/{thread}")).json()["config_version"] == 2


async def test_high_risk_needs_an_admin_and_a_platform_engineer_each_once(
    http: httpx.AsyncClient, as_role: Client, acme: dict[str, Any]
) -> None:
    developer = await as_role("developer")
    pending = (await developer.patch(ACME, json={"llm_config": {"model": "gpt-4o-mini"}})).json()
    assert (pending["status"], pending["risk_level"]) == ("pending_approval", "high")
    assert pending["approval_required_from"] == ["organization_admin", "platform_engineer"]
    approve = f"{ACME}/versions/2/approve"

    engineer = await as_role("platform_engineer")
    first = (await engineer.post(approve, json={"comment": "model is fine"})).json()
    assert (first["status"], first["approval_required_from"]) == ("pending_approval", ["organization_admin"])
    twice = await engineer.post(approve, json={})
    assert twice.status_code == 409 and "already signed" in twice.json()["detail"]
    other_engineer = await (await as_role("platform_engineer")).post(approve, json={})
    assert other_engineer.status_code == 409 and "organization_admin" in other_engineer.json()["detail"]
    assert (await http.get(ACME)).json()["version"] == 1

    assert (await http.post(f"{ACME}/versions/99/approve")).status_code == 404
    done = (await http.post(approve)).json()  # the comment is optional
    assert (done["status"], done["current_version"]) == ("current", 2)
    assert [a["role"] for a in done["approvals"]] == ["platform_engineer", "organization_admin"]
    listed = (await versions(http))["versions"][0]
    assert [a["role"] for a in listed["approvals"]] == ["platform_engineer", "organization_admin"]
    assert listed["changes"][0]["type"] == "llm_change"


async def test_a_rejected_version_never_becomes_current(
    http: httpx.AsyncClient, as_role: Client, acme: dict[str, Any]
) -> None:
    developer = await as_role("developer")
    await developer.patch(ACME, json={"first_message": "Yo."})
    assert (await developer.post(f"{ACME}/versions/2/reject", json={"reason": "no"})).status_code == 403
    no_reason = await http.post(f"{ACME}/versions/2/reject", json={})
    assert no_reason.status_code == 422
    rejected = (await http.post(f"{ACME}/versions/2/reject", json={"reason": "off brand"})).json()
    assert (rejected["status"], rejected["current_version"]) == ("rejected", 1)
    assert rejected["approvals"][0]["decision"] == "reject" and rejected["approvals"][0]["comment"] == "off brand"
    assert (await http.post(f"{ACME}/versions/2/approve", json={})).status_code == 409
    refused = await http.post(f"{ACME}/rollback", json={"target_version": 2, "reason": "try"})
    assert refused.status_code == 422 and "rejected" in refused.json()["detail"]
    assert (await versions(http))["versions"][0]["status"] == "rejected"


async def test_a_pending_version_made_on_an_older_version_must_be_made_again(
    http: httpx.AsyncClient, as_role: Client, acme: dict[str, Any]
) -> None:
    developer = await as_role("developer")
    await developer.patch(ACME, json={"first_message": "Hello there."})  # v2, medium: pending
    await developer.patch(ACME, json={"system_prompt": {"tone": "calm"}})  # v3, low: current
    stale = await http.post(f"{ACME}/versions/2/approve", json={})
    assert stale.status_code == 409 and "made on version 1" in stale.json()["detail"]
    assert (await http.get(ACME)).json()["version"] == 3


async def test_the_visual_update_takes_the_seeds_voice_settings(
    http: httpx.AsyncClient, as_role: Client, voice_config: dict[str, Any]
) -> None:
    created = (await http.post(CONFIGS, json=voice_config)).json()
    url = f"{CONFIGS}/{created['config_id']}/visual-update"
    settings = copy.deepcopy(voice_config["voice_settings"])
    settings["model_settings"]["speed"] = 0.8
    settings["stop_speaking_plan"]["number_of_words"] = 5
    body = {
        "config_id": created["config_id"],
        "product_type": "voicebot",
        "changes": {"voice_settings": settings},
        "commit_message": "Adjusted voice speed and interruption handling",
        "apply_immediately": False,
    }
    manager = await as_role("config_manager")
    resp = await manager.post(url, json=body)
    assert resp.status_code == 200, resp.text
    done = resp.json()
    assert (done["version"], done["status"], done["risk_level"]) == (2, "current", "low")
    assert done["diff"] == {
        "voice_settings.model_settings.speed": {"old": 1.0, "new": 0.8},
        "voice_settings.stop_speaking_plan.number_of_words": {"old": 3, "new": 5},
    }
    assert done["validation"]["valid"] is True and done["validation"]["affected_conversations"] == 0
    assert done["validation"]["estimated_impact"] == "Low - voice parameter changes"
    listed = (await http.get(f"{CONFIGS}/{created['config_id']}/versions")).json()["versions"][0]
    assert (listed["source"], listed["commit_message"]) == ("visual_update", body["commit_message"])

    wrong_kind = await manager.post(url, json={**body, "product_type": "chatbot"})
    assert wrong_kind.status_code == 422
    other_section = await manager.post(url, json={**body, "changes": {"llm_config": {"model": "x"}}})
    assert other_section.status_code == 422
    viewer = await as_role("viewer")
    assert (await viewer.post(url, json=body)).status_code == 403


async def test_an_upload_over_the_api_is_reviewed_like_a_patch(
    http: httpx.AsyncClient, acme: dict[str, Any], acme_config: dict[str, Any]
) -> None:
    """Re-uploading a file (or `apply`) cannot skip approval: a medium-risk change waits for it."""
    riskier = copy.deepcopy(acme_config)
    riskier["tools_available"] = with_tool(acme_config, "book_appointment")
    resp = await http.post(CONFIGS, json=riskier)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["status"] == "pending_approval" and body["changed"] is True, body
    assert body["version"] == 2 and body["latest_version"] == 1
    current = (await http.get(ACME)).json()
    assert current["version"] == 1  # new threads keep getting version 1
    listed = {v["version"]: v for v in (await versions(http))["versions"]}
    assert listed[2]["status"] == "pending_approval" and listed[2]["risk_level"] == "medium"

    gentler = copy.deepcopy(acme_config)
    gentler["system_prompt"]["tone"] = "Warm and brief."
    resp = await http.post(CONFIGS, json=gentler)
    assert resp.status_code == 200 and resp.json()["status"] == "current", resp.text  # low risk: live at once


async def test_an_assistant_update_is_reviewed_too(
    http: httpx.AsyncClient, acme: dict[str, Any], acme_config: dict[str, Any]
) -> None:
    """The Agent Server's PATCH /assistants/{id} (what LangGraph clients send) cannot skip approval either."""
    riskier = copy.deepcopy(acme_config)
    riskier["tools_available"] = with_tool(acme_config, "book_appointment")
    resp = await http.patch(f"/assistants/{acme['assistant_id']}", json={"context": riskier})
    assert resp.status_code == 200, resp.text
    assert (await http.get(ACME)).json()["version"] == 1  # still the current one
    listed = {v["version"]: v for v in (await versions(http))["versions"]}
    assert listed[2]["status"] == "pending_approval", listed[2]
