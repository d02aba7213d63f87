"""Visitor tokens: what the widget holds after POST /widget/v1/session, naming one visitor of one publishable
key of one tenant. `vt_chorus_<payload>.<HMAC-SHA256>`, signed with a key derived (HKDF) from the vault key,
so every process sharing the vault key accepts them and no new setting is needed. They expire after
TOKEN_TTL_S; an expired one is renewed (same visitor, so the same conversations) within RENEW_WITHIN_S."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
import uuid
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from chorus.agents.errors import Unauthorized
from chorus.agents.secrets.crypto import VaultKey
from chorus.agents.tenancy.publishable_keys import VISITOR_TOKEN_PREFIX

TOKEN_TTL_S = 24 * 3600
RENEW_WITHIN_S = 30 * 24 * 3600
_HKDF_INFO = b"chorus widget visitor tokens v1"
_MAX_TOKEN_CHARS = 1000


@dataclass(frozen=True)
class Visitor:
    tenant_id: str
    key_id: str
    visitor_id: str
    expires_at: int  # unix seconds


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class VisitorTokens:
    def __init__(self, secret: bytes, *, ttl_s: int = TOKEN_TTL_S) -> None:
        self._secret = secret
        self.ttl_s = ttl_s

    @classmethod
    def from_vault_key(cls, key: VaultKey) -> VisitorTokens:
        secret = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO).derive(key.material)
        return cls(secret)

    def _sign(self, payload: str) -> str:
        return _b64(hmac.new(self._secret, payload.encode("ascii"), hashlib.sha256).digest())

    def issue(
        self, *, tenant_id: str, key_id: str, visitor_id: str | None = None, ttl_s: int | None = None
    ) -> tuple[str, Visitor]:
        expires = int(time.time()) + (self.ttl_s if ttl_s is None else ttl_s)
        visitor = Visitor(tenant_id, key_id, visitor_id or str(uuid.uuid4()), expires)
        body = {"t": visitor.tenant_id, "k": visitor.key_id, "v": visitor.visitor_id, "e": visitor.expires_at}
        payload = _b64(json.dumps(body, separators=(",", ":")).encode())
        return f"{VISITOR_TOKEN_PREFIX}{payload}.{self._sign(payload)}", visitor

    def verify(self, token: str, *, expired_for_up_to_s: int = 0) -> Visitor:
        """The token's visitor; Unauthorized if it was not signed here, is malformed, or has expired (more
        than `expired_for_up_to_s` ago: renewal accepts a recently expired token)."""
        if not token.startswith(VISITOR_TOKEN_PREFIX) or len(token) > _MAX_TOKEN_CHARS:
            raise Unauthorized("not a visitor token: start a session with POST /widget/v1/session")
        payload, _, signature = token[len(VISITOR_TOKEN_PREFIX) :].partition(".")
        if not hmac.compare_digest(self._sign(payload), signature):
            raise Unauthorized(
                "this visitor token was not issued by this server (or the server's vault key changed); "
                "start a new session with POST /widget/v1/session"
            )
        try:
            body = json.loads(_unb64(payload))
            visitor = Visitor(str(body["t"]), str(body["k"]), str(body["v"]), int(body["e"]))
        except (ValueError, KeyError, TypeError, binascii.Error):
            raise Unauthorized("malformed visitor token; start a new session with POST /widget/v1/session") from None
        if visitor.expires_at + expired_for_up_to_s < time.time():
            raise Unauthorized(
                "this visitor token has expired; renew it: POST /widget/v1/session with the publishable key and "
                "'Authorization: Bearer <the expired token>'"
            )
        return visitor
