"""Roles on every route: each operation of the OpenAPI document, called with each role (a test per role)
and with another tenant's organization_admin key, answers as the matrix in docs/api.md says (allowed: not
401/403; denied: exactly 403; another tenant: 404 for its ids, and never one of our ids in a body). Public
routes answer without a key. Each role reads its own config_permissions, as docs/api.md's table says."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from chorus.agents.configs.approvals import APPROVER_ROLES
from chorus.agents.errors import Forbidden
from chorus.agents.storage.database import Database
from chorus.agents.tenancy.keys import Principal, create_api_key
from chorus.agents.tenancy.permissions import CONFIG_PERMISSIONS, GRANTS, ROLES
from chorus.voice.call_facts import CallFacts
from chorus.voice.call_records import CallRecords
from tests.conftest import ROOT, RunningServer, Tenant, example, make_tenant

RANK = {"viewer": 0, "developer": 1, "organization_admin": 2}
# Routes open by a config permission rather than an API level (a classified change: the walk sends one that
# needs that permission), or to the roles that approve changes.
BY_PERMISSION = (*CONFIG_PERMISSIONS, "approver")
# The widget API's credentials (docs/api.md, "Widget API"): a publishable key, or the visitor token it buys.
WIDGET_KINDS = ("publishable key", "visitor token")
# Callers holding widget credentials: on their routes together (the widget's key and its visitor's token),
# and the key sent as an API key, the mistake a developer would make.
WIDGET_CALLERS = ("widget", "publishable key as API key")
# Routes the OpenAPI document does not list (docs, the webchat page, static files), with a real path each.
HIDDEN_PUBLIC = {
    ("GET", "/"): "/",
    ("GET", "/openapi.json"): "/openapi.json",
    ("GET", "/docs"): "/docs",
    ("GET", "/docs/oauth2-redirect"): "/docs/oauth2-redirect",
    ("GET", "/redoc"): "/redoc",
    ("GET", "/static/{path}"): "/static/webchat.js",
}
# Resources every tenant shares: another tenant's key may read them.
SHARED_PREFIXES = ("/api/v1/tools",)
MESSAGE = {"messages": [{"role": "user", "content": "Where is my order ORD-1001?"}]}
EVAL_CASE = {"user_input": "Where is my order ORD-1001?", "assertions": [{"type": "icontains", "value": "order"}]}


@dataclass(frozen=True)
class DocumentedRole:
    api_level: str
    config_permissions: dict[str, bool]


def role_table() -> dict[str, DocumentedRole]:
    """role -> its API level and config_permissions, from the table at the top of docs/api.md."""
    text = (ROOT / "docs" / "api.md").read_text(encoding="utf-8").split("### Roles", 1)[0]
    header = next(line for line in text.splitlines() if line.startswith("| role | API level |"))
    columns = [c.strip() for c in header.strip("|").split("|")][2:]
    table = {}
    for role, level, cells in re.findall(r"^\| `(\w+)` \| (\w+) \|((?: (?:yes|no) \|)+)$", text, re.M):
        values = [c.strip() for c in cells.strip(" |").split("|")]
        assert len(values) == len(columns), f"docs/api.md: the row of '{role}' has {len(values)} permissions"
        table[role] = DocumentedRole(level, {c: v == "yes" for c, v in zip(columns, values, strict=True)})
    return table


def role_matrix() -> dict[tuple[str, str], str]:
    """(method, path) -> least API level ('public', 'viewer', 'developer', 'organization_admin') or widget
    credential ('publishable key', 'visitor token'), from docs/api.md."""
    text = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    section = text.split("### Roles", 1)[1].split("\n## ", 1)[0]
    matrix: dict[tuple[str, str], str] = {}
    for method, path, role in re.findall(
        r"^\| (GET|POST|PATCH|PUT|DELETE) \| `([^`]+)` \| (\w+(?: \w+)?) \|$", section, re.M
    ):
        assert (method, path) not in matrix, f"docs/api.md lists {method} {path} twice"
        assert role in ("public", *RANK, *WIDGET_KINDS, *BY_PERMISSION), (
            f"docs/api.md: unknown role '{role}' for {method} {path}"
        )
        matrix[(method, path)] = role
    return matrix


@dataclass
class World:
    """Resources of tenant A that path parameters point at, made on first use and remade after deletion."""

    admin: httpx.AsyncClient
    widget: httpx.AsyncClient
    ids: dict[str, str] = field(default_factory=dict)
    widget_ids: dict[str, str] = field(default_factory=dict)
    namespace: str = field(default_factory=lambda: f"roles{uuid.uuid4().hex[:8]}")
    db: Database | None = None  # for what only a worker writes (call records)
    tenant_id: str = ""

    async def value(self, param: str) -> str:
        kind = {"config_id": "assistant_id"}.get(param, param)  # a config is an assistant
        if kind not in self.ids:
            await self._make({"job_id": "document_id"}.get(kind, kind))  # ingesting a document makes a job
        return self.ids[kind]

    async def widget_value(self, param: str) -> str:
        """The widget visitor's own thread and run (another's would be a 404 for it, telling nothing)."""
        if param not in self.widget_ids:
            thread_id = (await self.widget.post("/widget/v1/threads", json={})).json()["thread_id"]
            path = f"/widget/v1/threads/{thread_id}/runs/stream"
            async with self.widget.stream("POST", path, json={"input": MESSAGE}) as resp:
                await resp.aread()
                run_id = resp.headers["content-location"].rsplit("/", 1)[1]
            self.widget_ids.update(thread_id=thread_id, run_id=run_id)
        return self.widget_ids[param]

    async def _make(self, kind: str) -> None:
        a = self.admin
        if kind == "assistant_id":
            resp = await a.post("/assistants", json={"graph_id": "chatbot", "context": example("acme_support_bot")})
            self.ids[kind] = resp.json()["assistant_id"]
        elif kind == "thread_id":
            self.ids[kind] = (await a.post("/threads", json={})).json()["thread_id"]
        elif kind == "run_id":
            thread_id, assistant_id = await self.value("thread_id"), await self.value("assistant_id")
            run = (
                await a.post(f"/threads/{thread_id}/runs", json={"assistant_id": assistant_id, "input": MESSAGE})
            ).json()
            await a.get(f"/threads/{thread_id}/runs/{run['run_id']}/join")
            self.ids[kind] = run["run_id"]
        elif kind == "checkpoint_id":
            thread_id = await self.value("thread_id")
            await self.value("run_id")  # a run on the thread: it has checkpoints
            state = (await a.get(f"/threads/{thread_id}/state")).json()
            self.ids[kind] = state["checkpoint"]["checkpoint_id"]
        elif kind == "namespace":
            await self.value("document_id")
        elif kind == "document_id":
            document_id = f"guide-{uuid.uuid4().hex[:6]}"
            body = {"namespace": self.namespace, "document_id": document_id, "content": "Returns take 30 days."}
            job = (await a.post("/api/v1/rag/ingest", json=body)).json()
            for _ in range(400):
                status = (await a.get(f"/api/v1/rag/ingest/{job['job_id']}")).json()["status"]
                if status in ("completed", "failed"):
                    break
                await asyncio.sleep(0.05)
            self.ids.update(document_id=document_id, namespace=self.namespace)
            self.ids["job_id"] = job["job_id"]
        elif kind == "faq_id":
            await self.value("namespace")
            faq = {"namespace": self.namespace, "question": f"Q {uuid.uuid4().hex}?", "answer": "A."}
            self.ids[kind] = (await a.post("/api/v1/rag/faq", json=faq)).json()["faq_id"]
        elif kind == "key_id":
            self.ids[kind] = (await a.post("/api/v1/keys", json={"role": "viewer", "name": "to revoke"})).json()[
                "key_id"
            ]
        elif kind == "publishable_key_id":
            body = {"assistant_ids": [await self.value("assistant_id")], "allow_no_origin": True}
            self.ids[kind] = (await a.post("/api/v1/publishable-keys", json=body)).json()["key_id"]
        elif kind == "secret_name":
            name = f"ROLES_{uuid.uuid4().hex[:8].upper()}"
            await a.post("/api/v1/secrets", json={"name": name, "value": "s3cret-value"})
            self.ids[kind] = name
        elif kind == "cron_id":
            assistant_id = await self.value("assistant_id")
            cron = {"assistant_id": assistant_id, "schedule": "0 9 * * *", "input": MESSAGE}
            self.ids[kind] = (await a.post("/runs/crons", json=cron)).json()["cron_id"]
        elif kind == "key":  # a store item, in a namespace named like the knowledge one
            item = {"namespace": [self.namespace], "key": "roles-item", "value": {"text": "Returns take 30 days."}}
            await a.put("/store/items", json=item)
            self.ids[kind] = "roles-item"
        elif kind == "revision":  # of an environment's overrides (none waits for approval: approvers hear 404/409)
            self.ids[kind] = "1"
        elif kind == "environment":  # the walk's deploys and overrides go to production
            self.ids[kind] = "production"
        elif kind == "deployment_id":  # production's latest deployment (this one, or one the walk made before)
            config_id = await self.value("assistant_id")
            body = {"environment": "production", "deployment_strategy": "immediate"}
            await a.post(f"/api/v1/configs/{config_id}/deploy", json=body)
            history = (await a.get(f"/api/v1/configs/{config_id}/deployments")).json()
            self.ids[kind] = history["deployments"][0]["deployment_id"]
        elif kind == "suite_id":  # an eval suite with one case
            suite = {"name": f"roles-{uuid.uuid4().hex[:8]}"}
            self.ids[kind] = str((await a.post("/api/v1/evaluation/suites", json=suite)).json()["id"])
            await a.post(f"/api/v1/evaluation/suites/{self.ids[kind]}/evals", json=EVAL_CASE)
        elif kind == "execution_id":
            suite_id, config_id = await self.value("suite_id"), await self.value("assistant_id")
            body = {"config_id": config_id, "version": 1}
            execution = await a.post(f"/api/v1/evaluation/suites/{suite_id}/execute", json=body)
            self.ids[kind] = str(execution.json()["id"])
        elif kind == "base":  # an execution to compare with (itself: refused as a 422, past the role check)
            self.ids[kind] = await self.value("execution_id")
        elif kind == "version":  # of a config: every config has its version 1
            self.ids[kind] = "1"
        elif kind == "name":
            self.ids[kind] = "fetch_order_status"
        elif kind == "path":
            self.ids[kind] = "webchat.js"
        elif kind == "call_id":  # a call record, as a voice worker writes it when a call ends
            assert self.db is not None
            facts = CallFacts(call_id=str(uuid.uuid4()), tenant_id=self.tenant_id, ended_at=datetime.now(UTC))
            await CallRecords(self.db).save(facts, [])
            self.ids[kind] = facts.call_id
        else:
            raise AssertionError(f"no resource for the path parameter '{{{kind}}}': teach World._make to make one")

    def deleted(self, path: str) -> None:
        """A successful DELETE removed the resource named by the path's last parameter, and what hangs on it."""
        if path == "/store/items":  # the item its body named
            self.ids.pop("key", None)
            return
        last = re.findall(r"\{(\w+)\}", path)[-1]
        gone = {
            "assistant_id": {"assistant_id", "thread_id", "run_id", "checkpoint_id", "deployment_id"},
            "config_id": {"assistant_id", "thread_id", "run_id", "checkpoint_id", "deployment_id"},
            "thread_id": {"thread_id", "run_id", "checkpoint_id"},
            "namespace": {"namespace", "document_id", "job_id", "faq_id"},
        }.get(last, {last})
        if last == "namespace":
            self.namespace = f"roles{uuid.uuid4().hex[:8]}"
        for kind in gone:
            self.ids.pop(kind, None)


async def body_for(world: World, method: str, path: str, ns: str) -> dict[str, Any]:
    """A valid request body, so that the handler (and its tenant check) runs rather than validation."""
    if (method, path) == ("POST", "/threads/{thread_id}/state/checkpoint"):
        return {"checkpoint": {"checkpoint_id": await world.value("checkpoint_id")}}
    run = {"assistant_id": await world.value("assistant_id"), "input": MESSAGE}
    bodies: dict[tuple[str, str], dict[str, Any]] = {
        ("POST", "/assistants"): {"graph_id": "chatbot", "context": example("acme_support_bot")},
        ("PATCH", "/assistants/{assistant_id}"): {"metadata": {"touched": True}},
        ("POST", "/assistants/{assistant_id}/latest"): {"version": 1},
        ("POST", "/threads/prune"): {"thread_ids": [str(uuid.uuid4())]},
        ("PATCH", "/threads/{thread_id}"): {"metadata": {"touched": True}},
        ("POST", "/threads/{thread_id}/state"): {"values": {"suggest_handoff": False}, "as_node": "agent"},
        ("POST", "/threads/{thread_id}/runs/stream"): run,
        ("POST", "/threads/{thread_id}/runs/wait"): run,
        ("POST", "/threads/{thread_id}/runs"): run,
        ("POST", "/runs/stream"): run,
        ("POST", "/runs/wait"): run,
        ("POST", "/threads/{thread_id}/runs/crons"): {**run, "schedule": "0 9 * * *"},
        ("POST", "/runs/crons"): {**run, "schedule": "0 9 * * *"},
        ("PATCH", "/runs/crons/{cron_id}"): {"enabled": False},
        ("POST", "/api/v1/configs"): example("acme_support_bot"),
        ("POST", "/api/v1/configs/validate"): example("acme_support_bot"),
        ("POST", "/api/v1/configs/apply"): {
            "files": [{"path": "acme.json", "config": example("acme_support_bot")}],
            "commit_message": "roles walk",
        },
        ("POST", "/api/v1/configs/chat"): {"config_id": await world.value("assistant_id"), "message": "speak slower"},
        ("POST", "/api/v1/configs/{config_id}/rollback"): {"target_version": 1, "reason": "roles walk"},
        ("PATCH", "/api/v1/configs/{config_id}"): {"system_prompt": {"tone": "roles walk"}},
        ("POST", "/api/v1/configs/{config_id}/visual-update"): {"changes": {"voice_settings": {"max_tokens": 99}}},
        # Version 1 is approved already: an approver hears 409, any other role 403.
        ("POST", "/api/v1/configs/{config_id}/versions/{version}/approve"): {"comment": "roles walk"},
        ("POST", "/api/v1/configs/{config_id}/versions/{version}/reject"): {"reason": "roles walk"},
        ("POST", "/api/v1/configs/{config_id}/deploy"): {"environment": "production"},
        ("PATCH", "/api/v1/configs/{config_id}/environments/{environment}"): {"overrides": {}},
        ("POST", "/api/v1/configs/{config_id}/environments/{environment}/overrides/{revision}/approve"): {},
        ("POST", "/api/v1/configs/{config_id}/environments/{environment}/overrides/{revision}/reject"): {
            "reason": "roles walk"
        },
        ("POST", "/api/v1/configs/{config_id}/deployments/{deployment_id}/promote"): {},
        ("POST", "/api/v1/configs/{config_id}/deployments/{deployment_id}/rollback"): {"reason": "roles walk"},
        ("POST", "/api/v1/tools/{name}/invoke"): {"arguments": {"order_id": "ORD-1001"}},
        ("POST", "/api/v1/rag/ingest"): {"namespace": ns, "document_id": "more", "content": "Shipping is free."},
        ("POST", "/api/v1/rag/query"): {"namespace": ns, "query": "returns"},
        ("POST", "/api/v1/rag/namespaces/{namespace}/reembed"): {"embedding_model": "all-MiniLM-L6-v2"},
        ("POST", "/api/v1/rag/faq"): {"namespace": ns, "question": f"Q {uuid.uuid4().hex}?", "answer": "A."},
        ("POST", "/api/v1/rag/faq/search"): {"namespace": ns, "query": "returns"},
        ("PATCH", "/api/v1/rag/faq/{faq_id}"): {"answer": "Another answer."},
        ("POST", "/api/v1/keys"): {"role": "viewer"},
        ("POST", "/api/v1/secrets"): {"name": f"ROLES_{uuid.uuid4().hex[:8].upper()}", "value": "s3cret-value"},
        ("POST", "/api/v1/secrets/{secret_name}/rotate"): {"value": "another-value"},
        ("PUT", "/store/items"): {"namespace": [ns], "key": "roles-item", "value": {"text": "Returns take 30 days."}},
        ("DELETE", "/store/items"): {"namespace": [ns], "key": "roles-item"},
        ("POST", "/store/items/search"): {"namespace_prefix": [ns], "query": "returns"},
        ("POST", "/store/namespaces"): {"prefix": [ns]},
        ("POST", "/api/v1/evaluation/suites"): {"name": f"roles-{uuid.uuid4().hex[:8]}"},
        ("POST", "/api/v1/evaluation/suites/{suite_id}/evals"): EVAL_CASE,
        ("POST", "/api/v1/evaluation/suites/import"): {"name": f"roles-{uuid.uuid4().hex[:8]}", "cases": [EVAL_CASE]},
        ("POST", "/api/v1/evaluation/suites/{suite_id}/execute"): {
            "config_id": await world.value("assistant_id"),
            "version": 1,
        },
        ("POST", "/api/v1/evaluation/turn-conversation"): {
            "user_input": "Where is my order?",
            "system_response": "It has shipped.",
            "assertions": [{"type": "icontains", "value": "shipped"}],
        },
        ("POST", "/api/v1/publishable-keys"): {
            "assistant_ids": [await world.value("assistant_id")],
            "allowed_origins": ["https://shop.example.com"],
        },
        # A chatbot: the developer hears 400 (only a voicebot calls), another tenant 404; LiveKit is never asked.
        ("POST", "/api/v1/calls"): {"config_id": await world.value("assistant_id"), "to": "+15551234567"},
        ("POST", "/widget/v1/threads"): {},
        ("POST", "/widget/v1/threads/{thread_id}/runs/stream"): {"input": MESSAGE},
    }
    return bodies.get((method, path), {})


@dataclass
class Call:
    method: str
    url: str
    params: dict[str, str]
    json: dict[str, Any] | None = None
    files: dict[str, tuple[str, bytes]] | None = None
    data: dict[str, str] | None = None


async def call_for(
    world: World, method: str, path: str, operation: dict[str, Any] | None, *, stranger: bool = False
) -> Call:
    """The request for an operation: our ids in the path and query; in a body, another tenant names a
    namespace of its own (namespaces are names each tenant picks, so it may well have one called like ours)."""
    ns = f"x{world.namespace}" if stranger else world.namespace
    url = path
    for param in re.findall(r"\{(\w+)\}", path):
        value = await (world.widget_value(param) if path.startswith("/widget/") else world.value(param))
        url = url.replace(f"{{{param}}}", value)
    if operation is None:
        return Call(method, HIDDEN_PUBLIC[(method, path)], {})
    params = {"max_seconds": "0.2"} if path == "/api/v1/configs/events" else {}  # a stream that would go on
    for p in operation.get("parameters", []):
        if p["in"] == "query" and p.get("required"):
            params[p["name"]] = await world.value(p["name"])
    content = operation.get("requestBody", {}).get("content", {})
    if "multipart/form-data" in content:
        upload = ("faq.csv", b"question,answer\nHow?,Like this.\n") if "faq" in path else ("a.txt", b"Hello.")
        return Call(method, url, params, files={"file": upload}, data={"namespace": ns})
    body = await body_for(world, method, path, ns) if content else None
    return Call(method, url, params, json=body)


def allowed(role: str, least: str, levels: dict[str, str]) -> bool:
    """Whether the matrix lets `role` call a route whose minimum is `least`."""
    if least == "approver":
        return role in APPROVER_ROLES
    if least in CONFIG_PERMISSIONS:
        return documented_permissions(role)[least]
    return RANK[levels[role]] >= RANK[least]


def documented_permissions(role: str) -> dict[str, bool]:
    return role_table()[role].config_permissions


async def send(client: httpx.AsyncClient, call: Call) -> httpx.Response:
    request = client.build_request(
        call.method, call.url, params=call.params, json=call.json, files=call.files, data=call.data
    )
    response = await client.send(request, stream=True)
    await response.aread()  # a stream is read to its end, so its run is over before the next call
    return response


@pytest.fixture
async def callers(server: RunningServer, db: Database, tenant: Tenant) -> AsyncIterator[dict[str, httpx.AsyncClient]]:
    other = await make_tenant(db)
    async with httpx.AsyncClient(base_url=server.url, headers={"x-api-key": tenant.key}, timeout=60) as admin:
        created = await admin.post("/assistants", json={"graph_id": "chatbot", "context": example("acme_support_bot")})
        # No Origin in these calls (a server-to-server key); the limits are out of the way of a full walk.
        widget_key = (
            await admin.post(
                "/api/v1/publishable-keys",
                json={
                    "assistant_ids": [created.json()["assistant_id"]],
                    "allow_no_origin": True,
                    "visitor_requests_per_minute": 10_000,
                    "key_requests_per_minute": 10_000,
                },
            )
        ).json()["key"]
        session = await admin.post("/widget/v1/session", headers={"x-api-key": "", "x-publishable-key": widget_key})
    keys: dict[str, str] = {role: await create_api_key(db, tenant_id=tenant.tenant_id, role=role) for role in ROLES}
    keys |= {"organization_admin": tenant.key, "other tenant": other.key, "no key": ""}
    clients = {
        who: httpx.AsyncClient(base_url=server.url, headers={"x-api-key": key} if key else {}, timeout=60)
        for who, key in keys.items()
    }
    widget_headers = {"x-publishable-key": widget_key, "authorization": f"Bearer {session.json()['visitor_token']}"}
    clients["widget"] = httpx.AsyncClient(base_url=server.url, headers=widget_headers, timeout=60)
    clients["publishable key as API key"] = httpx.AsyncClient(
        base_url=server.url, headers={"x-api-key": widget_key}, timeout=60
    )
    yield clients
    for client in clients.values():
        await client.aclose()


async def test_every_operation_has_a_row_in_the_matrix(callers: dict[str, httpx.AsyncClient]) -> None:
    matrix = role_matrix()
    spec = (await callers["no key"].get("/openapi.json")).json()
    operations = {(method.upper(), path) for path, ops in spec["paths"].items() for method in ops}
    missing = sorted(operations - set(matrix))
    assert not missing, "operations without a row in the roles matrix of docs/api.md; add:\n" + "\n".join(
        f"| {m} | `{p}` | <viewer|developer|organization_admin|public> |" for m, p in missing
    )
    stale = sorted(set(matrix) - operations - set(HIDDEN_PUBLIC))
    assert not stale, f"rows of the roles matrix in docs/api.md with no such operation: {stale}"


# Every role is a test of its own, and so is each caller that is not one of the tenant's keys.
CALLERS = (*ROLES, "other tenant", "no key", *WIDGET_CALLERS)


@pytest.mark.parametrize("caller", CALLERS)
async def test_every_operation_answers_as_the_matrix_says(
    caller: str, server: RunningServer, callers: dict[str, httpx.AsyncClient], db: Database, tenant: Tenant
) -> None:
    matrix, levels = role_matrix(), {role: documented.api_level for role, documented in role_table().items()}
    spec = (await callers["no key"].get("/openapi.json")).json()
    operations = {(method.upper(), path): op for path, ops in spec["paths"].items() for method, op in ops.items()}
    world = World(callers["organization_admin"], callers["widget"], db=db, tenant_id=tenant.tenant_id)
    problems: list[str] = []
    for (method, path), least in matrix.items():
        operation = operations.get((method, path))
        who, client = caller, callers[caller]
        if least == "public" and who != "no key":
            continue
        call = await call_for(world, method, path, operation, stranger=who == "other tenant")
        ours = {i for i in world.ids.values() if re.fullmatch(r"[0-9a-f-]{36}", i)}
        sent = f"{call.url} {call.params} {call.json} {call.data}"
        response = await send(client, call)
        status, label = response.status_code, f"{method} {path} as {who}: {response.status_code}"
        if status >= 500:
            problems.append(f"{label} {response.text[:200]}")
        elif least in WIDGET_KINDS:
            if who == "widget" and status >= 400:
                problems.append(f"{label} {response.text[:200]}, expected the widget's credentials to work")
            elif who != "widget" and status != 401:
                problems.append(f"{label}, expected 401: the widget API takes no API key")
        elif who in WIDGET_CALLERS:
            if status != 401 or "widget API (/widget/v1)" not in response.text:
                problems.append(f"{label}, expected 401 saying the credential is for the widget API")
        elif least == "public":
            if status in (401, 403) or status >= 400:
                problems.append(f"{label} (public)")
        elif who == "no key":
            if status != 401:
                problems.append(f"{label}, expected 401")
        elif who == "other tenant":
            scoped = "{" in path and not path.startswith(SHARED_PREFIXES)
            if scoped and status != 404:
                problems.append(f"{label}, expected 404 for another tenant's id")
            elif not scoped and status in (401, 403):
                problems.append(f"{label}, expected its own tenant's answer")
            leaked = {i for i in ours if i in response.text and i not in sent}
            if leaked:
                problems.append(f"{label} reveals {sorted(leaked)}")
        elif allowed(who, least, levels):
            if status in (401, 403):
                problems.append(f"{label}, expected allowed ({least})")
        elif status != 403:
            problems.append(f"{label}, expected 403 ({least})")
        if method == "DELETE" and response.is_success:
            world.deleted(path)
    assert not problems, "\n".join(problems)


async def test_viewer_cannot_delete_or_change_a_thread(
    http: httpx.AsyncClient, callers: dict[str, httpx.AsyncClient]
) -> None:
    thread = (await http.post("/threads", json={"metadata": {"owner": "ops"}})).json()
    viewer = callers["viewer"]
    assert (await viewer.delete(f"/threads/{thread['thread_id']}")).status_code == 403
    assert (await viewer.patch(f"/threads/{thread['thread_id']}", json={"metadata": {"x": 1}})).status_code == 403
    refused = await viewer.post("/threads", json={})
    assert refused.status_code == 403 and "needs the 'developer' role" in refused.json()["detail"]
    kept = await viewer.get(f"/threads/{thread['thread_id']}")
    assert kept.status_code == 200 and kept.json()["metadata"] == {"owner": "ops"}


def test_the_docs_role_table_is_the_modules() -> None:
    documented = role_table()
    assert list(documented) == list(ROLES)
    for role, grant in GRANTS.items():
        assert documented[role] == DocumentedRole(grant.api_level, grant.permissions_map()), role
        assert list(documented[role].config_permissions) == list(CONFIG_PERMISSIONS)


@pytest.mark.parametrize("role", ROLES)
async def test_each_role_reads_its_own_config_permissions(role: str, callers: dict[str, httpx.AsyncClient]) -> None:
    documented = role_table()
    answer = await callers[role].get("/api/v1/configs/permissions")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["role"], body["api_level"]) == (role, documented[role].api_level)
    assert body["config_permissions"] == documented[role].config_permissions
    assert {r["role"]: r["config_permissions"] for r in body["roles"]} == {
        name: d.config_permissions for name, d in documented.items()
    }
    assert body["role_aliases"] == {"admin": "organization_admin"}
    assert body["approval_required_from"] == {
        "low": [],
        "medium": ["organization_admin"],
        "high": ["organization_admin", "platform_engineer"],
    }
    other = (await callers["other tenant"].get("/api/v1/configs/permissions")).json()
    assert other["organization_id"] != body["organization_id"]


async def test_admin_is_an_alias_of_organization_admin(http: httpx.AsyncClient) -> None:
    created = await http.post("/api/v1/keys", json={"role": "admin", "name": "old script"})
    assert created.status_code == 201 and created.json()["role"] == "organization_admin"
    async with httpx.AsyncClient(base_url=str(http.base_url), headers={"x-api-key": created.json()["key"]}) as old:
        assert (await old.get("/api/v1/keys")).status_code == 200  # organization_admin's level
        assert (await old.get("/api/v1/configs/permissions")).json()["role"] == "organization_admin"
    refused = await http.post("/api/v1/keys", json={"role": "root"})
    assert refused.status_code == 422 and "organization_admin" in refused.text


@pytest.mark.parametrize(
    ("role", "permission", "allowed"),
    [
        ("config_manager", "edit_system_prompt", True),
        ("config_manager", "rollback_versions", True),
        ("config_manager", "add_remove_tools", False),
        ("config_manager", "deploy_to_production", False),
        ("developer", "deploy_to_production", True),
        ("developer", "manage_permissions", False),
        ("platform_engineer", "modify_integrations", True),
        ("viewer", "view_config", True),
        ("viewer", "change_voice_params", False),
    ],
)
def test_a_missing_config_permission_is_refused_with_who_has_it(role: str, permission: str, allowed: bool) -> None:
    principal = Principal("tenant", "acme", role, "key")  # type: ignore[arg-type]
    if allowed:
        principal.require_permission(permission)  # type: ignore[arg-type]
        return
    with pytest.raises(Forbidden) as refused:
        principal.require_permission(permission)  # type: ignore[arg-type]
    assert f"needs the '{permission}' permission" in refused.value.detail
    assert "organization_admin" in refused.value.detail and f"your key has '{role}'" in refused.value.detail
