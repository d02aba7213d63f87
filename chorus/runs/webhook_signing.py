"""Signatures of run webhooks: `X-Chorus-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`.

Each tenant has its own signing secret, derived (HKDF, then HMAC with the tenant id) from the vault key, so
every process sharing the vault key signs alike, nothing new is stored, and one tenant's secret tells
nothing about another's. The secret is a string (`whsec_…`) whose UTF-8 bytes are the HMAC key; the
operator hands it to the tenant (`chorus webhooks signing-secret`). It never appears in a log or an API
response. The timestamp is signed with the body, so a receiver can refuse a replayed old delivery.
"""

from __future__ import annotations

import hashlib
import hmac
import time

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from chorus.agents.secrets.crypto import VaultKey

SIGNATURE_HEADER = "X-Chorus-Signature"
DELIVERY_HEADER = "X-Chorus-Delivery"
EVENT_HEADER = "X-Chorus-Event"
SECRET_PREFIX = "whsec_"
TOLERANCE_S = 300  # what the docs advise receivers: refuse a signature older than five minutes
_HKDF_INFO = b"chorus run webhook signing v1"


class WebhookSigner:
    def __init__(self, root: bytes) -> None:
        self._root = root

    def __repr__(self) -> str:
        return "WebhookSigner(<key hidden>)"

    @classmethod
    def from_vault_key(cls, key: VaultKey) -> WebhookSigner:
        return cls(HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO).derive(key.material))

    def secret(self, tenant_id: str) -> str:
        """The tenant's signing secret, as its receivers hold it."""
        return SECRET_PREFIX + hmac.new(self._root, tenant_id.encode(), hashlib.sha256).hexdigest()

    def sign(self, tenant_id: str, body: bytes, *, at: int | None = None) -> str:
        """The signature header's value for `body` sent at `at` (unix seconds, default now)."""
        at = int(time.time()) if at is None else at
        return f"t={at},v1={signature(self.secret(tenant_id), body, at=at)}"


def signature(secret: str, body: bytes, *, at: int) -> str:
    return hmac.new(secret.encode(), f"{at}.".encode() + body, hashlib.sha256).hexdigest()


def verify(secret: str, header: str, body: bytes, *, tolerance_s: int = TOLERANCE_S, now: float | None = None) -> bool:
    """Whether `header` signs `body` with `secret`, no more than `tolerance_s` ago (a receiver's check)."""
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        at = int(fields.get("t", ""))
    except ValueError:
        return False
    if abs((time.time() if now is None else now) - at) > tolerance_s:
        return False
    return hmac.compare_digest(signature(secret, body, at=at), fields.get("v1", ""))
