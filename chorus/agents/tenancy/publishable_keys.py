"""Publishable keys: what a public web page may hold. `pk_chorus_<random>`, stored as SHA-256, bound to one
tenant, one or more of its chatbots, the web origins allowed to use it, and rate limits per key and per
visitor. It opens only the widget API (/widget/v1), where it mints visitor tokens; anywhere else it is
refused with a message saying so (`refuse_widget_credential`)."""

from __future__ import annotations

import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from chorus.agents.errors import Forbidden, InvalidInput, NotFound, Unauthorized
from chorus.agents.storage.database import Database
from chorus.agents.tenancy.keys import key_hash

PUBLISHABLE_PREFIX = "pk_chorus_"
# Visitor tokens are minted by the widget API (chorus/webchat/visitor_tokens.py); their prefix is here so
# that the management API can recognise and refuse them without importing the widget.
VISITOR_TOKEN_PREFIX = "vt_chorus_"
PREFIX_LENGTH = 16
DEFAULT_KEY_PER_MINUTE = 600
DEFAULT_VISITOR_PER_MINUTE = 30
MAX_BOTS = 20
MAX_ORIGINS = 50
CACHE_SECONDS = 5.0  # as for API keys: a revocation reaches other processes within this
_CACHE_LIMIT = 10_000
_DEFAULT_PORTS = {"http": 80, "https": 443}
_COLUMNS = (
    "key_id, tenant_id, prefix, name, assistant_ids, allowed_origins, allow_no_origin, key_requests_per_minute,"
    " visitor_requests_per_minute, created_at, created_by, revoked_at"
)


@dataclass(frozen=True)
class PublishableKey:
    """What may be shown about a publishable key: never its hash."""

    key_id: str
    tenant_id: str
    prefix: str
    name: str | None
    assistant_ids: tuple[str, ...]
    allowed_origins: tuple[str, ...]
    allow_no_origin: bool
    key_per_minute: int
    visitor_per_minute: int
    created_at: datetime
    created_by: str | None
    revoked_at: datetime | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "key_id": self.key_id,
            "prefix": self.prefix,
            "name": self.name,
            "assistant_ids": list(self.assistant_ids),
            "allowed_origins": list(self.allowed_origins),
            "allow_no_origin": self.allow_no_origin,
            "key_requests_per_minute": self.key_per_minute,
            "visitor_requests_per_minute": self.visitor_per_minute,
            "created_at": self.created_at,
            "created_by": self.created_by,
            "revoked_at": self.revoked_at,
            "revoked": self.revoked_at is not None,
        }

    def check_origin(self, origin: str | None) -> str | None:
        """The request's origin if this key may be used from it (None: no Origin, allowed); else Forbidden."""
        if origin is None:
            if self.allow_no_origin:
                return None
            raise Forbidden(
                "this request has no Origin header: a publishable key works only from the web pages of its "
                f"allowed origins ({', '.join(self.allowed_origins) or 'none'}); for server-to-server use, create "
                "a key with allow_no_origin"
            )
        normal = _normal_origin(origin)
        if normal is None or normal not in self.allowed_origins:
            shown = origin[:200]
            raise Forbidden(
                f"origin '{shown}' may not use this publishable key; its allowed origins are "
                f"{', '.join(self.allowed_origins) or 'none'} (an organization_admin adds origins with a new key)"
            )
        return normal

    def check_bot(self, assistant_id: str) -> str:
        """The assistant id in canonical form if the key serves it; else Forbidden naming the key's bots."""
        try:
            canonical = str(uuid.UUID(assistant_id))
        except ValueError:
            canonical = assistant_id
        if canonical not in self.assistant_ids:
            raise Forbidden(
                f"assistant '{assistant_id[:64]}' is not one of this publishable key's bots "
                f"({', '.join(self.assistant_ids)})"
            )
        return canonical


@dataclass(frozen=True)
class NewPublishableKey:
    info: PublishableKey
    key: str


def _row(row: dict[str, Any]) -> PublishableKey:
    return PublishableKey(
        key_id=str(row["key_id"]),
        tenant_id=str(row["tenant_id"]),
        prefix=row["prefix"],
        name=row["name"],
        assistant_ids=tuple(str(a) for a in row["assistant_ids"]),
        allowed_origins=tuple(row["allowed_origins"]),
        allow_no_origin=row["allow_no_origin"],
        key_per_minute=row["key_requests_per_minute"],
        visitor_per_minute=row["visitor_requests_per_minute"],
        created_at=row["created_at"],
        created_by=str(row["created_by"]) if row["created_by"] else None,
        revoked_at=row["revoked_at"],
    )


def _normal_origin(value: str) -> str | None:
    """`scheme://host[:port]` in lower case without a default port, or None if `value` is not an origin."""
    try:
        parts = urlsplit(value.strip().rstrip("/"))
    except ValueError:  # e.g. an unclosed IPv6 bracket
        return None
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname or parts.path or parts.query or parts.fragment:
        return None
    if parts.username or parts.password:
        return None
    try:
        port = parts.port
    except ValueError:
        return None
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    shown_port = "" if port is None or port == _DEFAULT_PORTS[parts.scheme] else f":{port}"
    return f"{parts.scheme}://{host}{shown_port}"


def parse_origins(values: list[str]) -> list[str]:
    """Allowed origins as the browser sends them (`https://shop.example.com`, `http://localhost:8080`):
    the rule of chorus/cors.py, minus `*` (a key names the sites that embed it)."""
    if len(values) > MAX_ORIGINS:
        raise InvalidInput(f"a publishable key takes at most {MAX_ORIGINS} origins (got {len(values)})")
    origins: list[str] = []
    problems = []
    for i, value in enumerate(values):
        normal = _normal_origin(value) if value.strip() != "*" else None
        if normal is None:
            problems.append(
                {
                    "path": f"$.allowed_origins[{i}]",
                    "message": f"'{value[:200]}' is not an origin: write scheme://host[:port] "
                    "(e.g. https://shop.example.com), no path, no wildcard",
                }
            )
        elif normal not in origins:
            origins.append(normal)
    if problems:
        raise InvalidInput("; ".join(p["message"] for p in problems), errors=problems)
    return origins


async def _tenant_chatbots(db: Database, tenant_id: str, assistant_ids: list[str]) -> list[str]:
    """The ids in canonical form, each a live chatbot of the tenant; InvalidInput naming the others."""
    if not assistant_ids or len(assistant_ids) > MAX_BOTS:
        raise InvalidInput(f"a publishable key serves 1 to {MAX_BOTS} bots (assistant_ids)")
    canonical: list[str] = []
    problems = []
    for i, value in enumerate(assistant_ids):
        try:
            ident = str(uuid.UUID(value))
        except ValueError:
            problems.append({"path": f"$.assistant_ids[{i}]", "message": f"'{value[:64]}' is not an assistant id"})
            continue
        if ident not in canonical:
            canonical.append(ident)
    if not problems:
        async with db.connection() as conn:
            cur = await conn.execute(
                "SELECT config_id, product_type FROM bot_configs"
                " WHERE tenant_id = %s AND config_id = ANY(%s::uuid[]) AND deleted_at IS NULL",
                (tenant_id, canonical),
            )
            found = {str(r["config_id"]): r["product_type"] for r in await cur.fetchall()}
        for i, ident in enumerate(canonical):
            if ident not in found:
                problems.append({"path": f"$.assistant_ids[{i}]", "message": f"assistant '{ident}' does not exist"})
            elif found[ident] != "chatbot":
                message = f"assistant '{ident}' is a {found[ident]}, not a chatbot"
                problems.append({"path": f"$.assistant_ids[{i}]", "message": message})
    if problems:
        raise InvalidInput(
            "a publishable key serves the tenant's chatbots: " + "; ".join(p["message"] for p in problems),
            errors=problems,
        )
    return canonical


async def create_publishable_key(
    db: Database,
    *,
    tenant_id: str,
    assistant_ids: list[str],
    allowed_origins: list[str],
    allow_no_origin: bool = False,
    key_per_minute: int = DEFAULT_KEY_PER_MINUTE,
    visitor_per_minute: int = DEFAULT_VISITOR_PER_MINUTE,
    name: str | None = None,
    created_by: str | None = None,
) -> NewPublishableKey:
    """Create a key; the clear key is in the result and nowhere else (only its hash is stored)."""
    origins = parse_origins(allowed_origins)
    if not origins and not allow_no_origin:
        raise InvalidInput(
            "allowed_origins is empty: list the web origins that embed the widget (e.g. https://shop.example.com)",
            errors=[{"path": "$.allowed_origins", "message": "at least one origin, or allow_no_origin"}],
        )
    rates = {"key_requests_per_minute": key_per_minute, "visitor_requests_per_minute": visitor_per_minute}
    for field, value in rates.items():
        if not 1 <= value <= 1_000_000:
            problem = {"path": f"$.{field}", "message": "from 1 to 1000000"}
            raise InvalidInput(f"{field} must be from 1 to 1000000", errors=[problem])
    bots = await _tenant_chatbots(db, tenant_id, assistant_ids)
    key = PUBLISHABLE_PREFIX + secrets.token_urlsafe(24)
    async with db.connection() as conn:
        cur = await conn.execute(
            "INSERT INTO publishable_keys (key_id, tenant_id, key_hash, prefix, name, assistant_ids, allowed_origins,"
            " allow_no_origin, key_requests_per_minute, visitor_requests_per_minute, created_by)"
            f" VALUES (%s, %s, %s, %s, %s, %s::uuid[], %s, %s, %s, %s, %s) RETURNING {_COLUMNS}",
            (
                uuid.uuid4(),
                tenant_id,
                key_hash(key),
                key[:PREFIX_LENGTH],
                name,
                bots,
                origins,
                allow_no_origin,
                key_per_minute,
                visitor_per_minute,
                created_by,
            ),
        )
        row = await cur.fetchone()
    if row is None:
        raise NotFound("the tenant was deleted while the key was being created")
    return NewPublishableKey(_row(row), key)


async def list_publishable_keys(db: Database, tenant_id: str) -> list[PublishableKey]:
    async with db.connection() as conn:
        cur = await conn.execute(
            f"SELECT {_COLUMNS} FROM publishable_keys WHERE tenant_id = %s ORDER BY created_at DESC, key_id",
            (tenant_id,),
        )
        return [_row(r) for r in await cur.fetchall()]


async def find_publishable_keys(db: Database, ref: str, *, tenant_id: str | None = None) -> list[PublishableKey]:
    """The keys matching a key id, a prefix (`pk_chorus_xxxxxx`) or the key itself (for the CLI)."""
    sql = f"SELECT {_COLUMNS} FROM publishable_keys WHERE (key_id::text = %s OR prefix = %s OR key_hash = %s)"
    params: list[Any] = [ref.lower(), ref, key_hash(ref)]
    if tenant_id is not None:
        sql += " AND tenant_id = %s"
        params.append(tenant_id)
    async with db.connection() as conn:
        cur = await conn.execute(sql, params)
        return [_row(r) for r in await cur.fetchall()]


async def revoke_publishable_key(db: Database, *, tenant_id: str, key_id: str) -> PublishableKey:
    """Revoke a key of the tenant (idempotent): its visitor tokens stop working with it."""
    try:
        key_id = str(uuid.UUID(key_id))
    except ValueError:
        raise NotFound(f"publishable key '{key_id[:64]}' does not exist") from None
    async with db.connection() as conn:
        cur = await conn.execute(
            "UPDATE publishable_keys SET revoked_at = coalesce(revoked_at, now())"
            f" WHERE tenant_id = %s AND key_id = %s RETURNING {_COLUMNS}",
            (tenant_id, key_id),
        )
        row = await cur.fetchone()
    if row is None:
        raise NotFound(f"publishable key '{key_id}' does not exist")
    return _row(row)


def _refused(key: PublishableKey) -> Unauthorized:
    assert key.revoked_at is not None
    return Unauthorized(
        f"this publishable key was revoked at {key.revoked_at.isoformat()}; the site's owner must embed a new one"
    )


class PublishableKeyResolver:
    """Keys by their clear text (the widget's X-Publishable-Key) or by id (a visitor token names its key),
    cached for CACHE_SECONDS so the widget's requests do not read the key's row each time."""

    def __init__(self, db: Database, *, cache_seconds: float = CACHE_SECONDS) -> None:
        self._db = db
        self._cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, PublishableKey | None]] = {}

    async def _lookup(self, cache_key: str, sql: str, value: str) -> PublishableKey | None:
        now = time.monotonic()
        hit = self._cache.get(cache_key)
        if hit and now - hit[0] < self._cache_seconds:
            return hit[1]
        async with self._db.connection() as conn:
            cur = await conn.execute(f"SELECT {_COLUMNS} FROM publishable_keys WHERE {sql}", (value,))
            row = await cur.fetchone()
        key = _row(row) if row else None
        if len(self._cache) >= _CACHE_LIMIT:
            fresh = {k: e for k, e in self._cache.items() if now - e[0] < self._cache_seconds}
            self._cache = fresh if len(fresh) < _CACHE_LIMIT else {}
        self._cache[cache_key] = (now, key)
        return key

    async def by_key(self, key: str) -> PublishableKey:
        found = await self._lookup("h:" + key_hash(key), "key_hash = %s", key_hash(key))
        if found is None:
            raise Unauthorized(
                "unknown publishable key; an organization_admin creates one with POST /api/v1/publishable-keys "
                "(or `chorus widget-keys create`)"
            )
        if found.revoked_at is not None:
            raise _refused(found)
        return found

    async def by_id(self, key_id: str) -> PublishableKey:
        found = await self._lookup("i:" + key_id, "key_id = %s::uuid", key_id)
        if found is None:
            raise Unauthorized("the publishable key of this visitor token no longer exists; start a new session")
        if found.revoked_at is not None:
            raise _refused(found)
        return found

    def forget(self, key_id: str) -> None:
        """Drop a revoked key from the cache, so this process refuses it from the next request on."""
        for cache_key in [k for k, (_, v) in self._cache.items() if v is not None and v.key_id == key_id]:
            del self._cache[cache_key]


def refuse_widget_credential(credential: str | None, *, publishable_header: str | None) -> None:
    """On a management or Agent Server route: a publishable key or a visitor token is refused (401) with a
    message saying what it is for, rather than "unknown API key"."""
    if (credential and credential.startswith(PUBLISHABLE_PREFIX)) or (not credential and publishable_header):
        raise Unauthorized(
            "this is a publishable key: it works only on the widget API (/widget/v1), never on management or "
            "Agent Server routes; send an API key (X-Api-Key) here"
        )
    if credential and credential.startswith(VISITOR_TOKEN_PREFIX):
        raise Unauthorized(
            "this is a widget visitor token: it works only on the widget API (/widget/v1), never on management "
            "or Agent Server routes; send an API key (X-Api-Key) here"
        )
