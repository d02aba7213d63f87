"""Declarative HTTP tools: a `tools_needed` entry with an `http` block becomes a callable tool.

Path placeholders come from the arguments; the rest go as query (GET) or JSON body (POST). Timeouts
and non-2xx answers become ToolErrors, which the model sees as tool messages. Header values reference
the tenant's vault (`"Bearer ${secret:SHOP_API_KEY}"`), never the server's environment; the revealed
values exist only inside the call and are redacted from whatever it returns. A POST carries an
`Idempotency-Key` derived from the tool call, so the endpoint can recognise a retried call, and is
recorded in the tool-call ledger (ledger.py), so a tool call does not send it twice. Configs are
written by tenants, so destinations pass the SSRF guard (chorus/agents/destinations.py): loopback and
private addresses only if the operator allows them (CHORUS_HTTP_TOOLS_ALLOW_PRIVATE=1), link-local never.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from typing import Any
from urllib.parse import quote

import httpx

from chorus.agents.configs.models import ToolNeeded
from chorus.agents.destinations import check_destination
from chorus.agents.errors import DestinationRefused, NotFound, SecretUndecryptable, ToolError
from chorus.agents.secrets.redaction import Redactor
from chorus.agents.secrets.references import expand, scan
from chorus.agents.tools.registry import RegisteredTool, ToolContext
from chorus.agents.tools.schemas import normalize_input_schema

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_client: httpx.AsyncClient | None = None
_ERROR_CHARS = 300
_TEXT_CHARS = 4000


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def _shared_client() -> httpx.AsyncClient:
    # One pooled client for every HTTP tool; per-call timeouts come from each tool's spec.
    global _client
    if _client is None or _client.is_closed:
        _client = httpx.AsyncClient(follow_redirects=False)
    return _client


async def _headers(tool: str, ctx: ToolContext, headers: dict[str, str], redactor: Redactor) -> dict[bytes, bytes]:
    """The headers with each `${secret:NAME}` revealed from the tenant's vault; anything else in `${…}` form
    (a config stored before the vault, naming an environment variable) stops the call."""
    wanted: dict[str, list[str]] = {}
    for header, value in headers.items():
        found = scan(value)
        if found.problems:
            raise ToolError(f"tool '{tool}' cannot send header '{header}': {found.problems[0]}")
        wanted[header] = found.names
    values: dict[str, str] = {}
    for name in sorted({n for names in wanted.values() for n in names}):
        if ctx.secrets is None:
            raise ToolError(f"tool '{tool}' needs the secret '{name}', but no vault is available here")
        try:
            values[name] = await ctx.secrets.reveal(ctx, name, tool_name=tool)
        except (NotFound, SecretUndecryptable) as exc:
            raise ToolError(f"tool '{tool}' needs the secret '{name}': {exc.detail}") from None
        redactor.add(name, values[name])
    return {k.encode("utf-8"): expand(v, values).encode("utf-8") for k, v in headers.items()}


def idempotency_key(ctx: ToolContext, tool: str) -> str:
    """Stable for one tool call of one thread (a retried call sends the same key); random without one."""
    if ctx.tool_call_id is None:
        return str(uuid.uuid4())
    seed = f"{ctx.tenant_id}\x00{ctx.thread_id}\x00{tool}\x00{ctx.tool_call_id}"
    return str(uuid.UUID(hashlib.sha256(seed.encode()).hexdigest()[:32]))


async def _check_destination(tool: str, url: str) -> None:
    try:
        await check_destination(url, who=f"tool '{tool}'")
    except DestinationRefused as exc:
        raise ToolError(exc.detail) from None


def build_http_tool(spec: ToolNeeded) -> RegisteredTool:
    if spec.http is None:
        raise ValueError(f"tool '{spec.tool_name}' has no http block")
    http = spec.http
    schema = normalize_input_schema(spec.input_schema)
    placeholders = _PLACEHOLDER.findall(http.url)

    async def call(ctx: ToolContext, **arguments: Any) -> Any:
        missing = [p for p in placeholders if p not in arguments]
        if missing:
            raise ToolError(f"tool '{spec.tool_name}' needs {', '.join(missing)} to build its URL")
        url = _PLACEHOLDER.sub(lambda m: quote(str(arguments[m.group(1)]), safe=""), http.url)
        rest = {k: v for k, v in arguments.items() if k not in placeholders}
        redactor = Redactor()
        headers = await _headers(spec.tool_name, ctx, http.headers, redactor)
        try:
            body, is_json = await _send(ctx, url, rest, headers)
        except ToolError as exc:
            raise ToolError(_clip(redactor.scrub(exc.detail), _ERROR_CHARS)) from None
        # Scrub before clipping: a clipped value would no longer match, and its prefix would leak.
        return redactor.scrub(body) if is_json else {"text": _clip(redactor.scrub(body), _TEXT_CHARS)}

    async def _send(ctx: ToolContext, url: str, rest: dict[str, Any], headers: dict[bytes, bytes]) -> tuple[Any, bool]:
        """(the JSON answer, True) or (the text answer, False)."""
        await _check_destination(spec.tool_name, url)
        timeout = http.timeout_ms / 1000
        try:
            if http.method == "GET":
                resp = await _shared_client().get(url, params=rest or None, headers=headers, timeout=timeout)
            else:
                if not any(k.lower() == b"idempotency-key" for k in headers):
                    headers = {**headers, b"Idempotency-Key": idempotency_key(ctx, spec.tool_name).encode()}
                resp = await _shared_client().post(url, json=rest, headers=headers, timeout=timeout)
        except httpx.TimeoutException:
            raise ToolError(f"tool '{spec.tool_name}' timed out after {http.timeout_ms} ms") from None
        except httpx.LocalProtocolError:
            # Its message quotes the offending header, which may hold a secret: say what, not the bytes.
            raise ToolError(
                f"tool '{spec.tool_name}' could not build its request: a header name or value is not allowed in HTTP"
            ) from None
        except httpx.HTTPError as exc:
            raise ToolError(f"tool '{spec.tool_name}' could not reach its endpoint: {exc}") from None
        if not resp.is_success:
            raise ToolError(f"tool '{spec.tool_name}' got HTTP {resp.status_code} from its endpoint: {resp.text}")
        try:
            return resp.json(), True
        except ValueError:
            return resp.text, False

    description = spec.description or f"Call {http.method} {http.url}"
    return RegisteredTool(spec.tool_name, description, schema, call, kind="http", side_effects=http.method != "GET")
