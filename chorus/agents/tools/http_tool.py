"""Declarative HTTP tools: a `tools_needed` entry with an `http` block becomes a callable tool.

Path placeholders come from the arguments; the rest go as query (GET) or JSON body (POST). Timeouts
and non-2xx answers become ToolErrors, which the model sees as tool messages. Header values may name
environment variables (`"Bearer ${SHOP_API_KEY}"`) so that secrets stay out of configs. Configs are
written by tenants, so destinations on loopback, private or link-local addresses are refused unless
the operator allows private ones (CHORUS_HTTP_TOOLS_ALLOW_PRIVATE=1); link-local (cloud metadata) never.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import re
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from chorus.agents.configs.models import ToolNeeded
from chorus.agents.errors import ToolError
from chorus.agents.tools.registry import RegisteredTool, ToolContext
from chorus.agents.tools.schemas import normalize_input_schema

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_client: httpx.AsyncClient | None = None


def _shared_client() -> httpx.AsyncClient:
    # One pooled client for every HTTP tool; per-call timeouts come from each tool's spec.
    global _client
    if _client is None or _client.is_closed:
        _client = httpx.AsyncClient(follow_redirects=False)
    return _client


def _headers(tool: str, headers: dict[str, str]) -> dict[str, str]:
    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in os.environ:
            raise ToolError(f"tool '{tool}' needs the environment variable {name} for a header; it is not set")
        return os.environ[name]

    return {k: _ENV_REF.sub(value, v) for k, v in headers.items()}


async def _check_destination(tool: str, url: str) -> None:
    host = urlsplit(url).hostname or ""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, None)
    except OSError:
        raise ToolError(f"tool '{tool}' could not resolve host '{host}'") from None
    allow_private = os.environ.get("CHORUS_HTTP_TOOLS_ALLOW_PRIVATE", "").lower() in {"1", "true", "yes"}
    for info in infos:
        ip = ipaddress.ip_address(info[4][0])
        if ip.is_link_local or ip.is_multicast or ip.is_unspecified or ip.is_reserved:
            raise ToolError(f"tool '{tool}' may not call {host} ({ip}): link-local and reserved addresses are refused")
        if (ip.is_loopback or ip.is_private) and not allow_private:
            raise ToolError(
                f"tool '{tool}' may not call {host} ({ip}), a private address; the operator can allow private "
                "destinations with CHORUS_HTTP_TOOLS_ALLOW_PRIVATE=1"
            )


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
        headers = _headers(spec.tool_name, http.headers)
        await _check_destination(spec.tool_name, url)
        timeout = http.timeout_ms / 1000
        try:
            if http.method == "GET":
                resp = await _shared_client().get(url, params=rest or None, headers=headers, timeout=timeout)
            else:
                resp = await _shared_client().post(url, json=rest, headers=headers, timeout=timeout)
        except httpx.TimeoutException:
            raise ToolError(f"tool '{spec.tool_name}' timed out after {http.timeout_ms} ms") from None
        except httpx.HTTPError as exc:
            raise ToolError(f"tool '{spec.tool_name}' could not reach its endpoint: {exc}") from None
        if not resp.is_success:
            raise ToolError(f"tool '{spec.tool_name}' got HTTP {resp.status_code} from its endpoint: {resp.text[:200]}")
        try:
            return resp.json()
        except ValueError:
            return {"text": resp.text[:4000]}

    description = spec.description or f"Call {http.method} {http.url}"
    return RegisteredTool(spec.tool_name, description, schema, call, kind="http")
