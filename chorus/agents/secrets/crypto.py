"""AES-256-GCM sealing of secret values under the vault key.

Each value is sealed with a fresh 96-bit nonce and with the tenant, name, version and (for a scoped secret)
environment as associated data, so a ciphertext copied to another tenant's row (or another name, version
or environment) fails to open.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from chorus.agents.errors import SecretUndecryptable, ServerMisconfigured

KEY_BYTES = 32
NONCE_BYTES = 12
KEY_FORMAT = "32 random bytes, base64-encoded (e.g. `openssl rand -base64 32`)"


@dataclass(frozen=True)
class VaultKey:
    """The key material and its fingerprint (`key_id`, safe to store and show: it does not reveal the key)."""

    material: bytes = field(repr=False)
    key_id: str

    @classmethod
    def from_bytes(cls, material: bytes) -> VaultKey:
        if len(material) != KEY_BYTES:
            raise ServerMisconfigured(f"the vault key must be {KEY_BYTES} bytes, got {len(material)}")
        fingerprint = hashlib.sha256(b"chorus vault key id\x00" + material).hexdigest()[:16]
        return cls(material, fingerprint)


def parse_key(text: str, *, source: str) -> VaultKey:
    """Decode a base64 key (standard or URL-safe alphabet); a malformed one is a clear startup error."""
    cleaned = text.strip()
    try:
        material = base64.b64decode(cleaned.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError):
        raise ServerMisconfigured(f"{source} is not valid base64; it must be {KEY_FORMAT}") from None
    if len(material) != KEY_BYTES:
        raise ServerMisconfigured(f"{source} decodes to {len(material)} bytes; it must be {KEY_FORMAT}")
    return VaultKey.from_bytes(material)


def new_key_text() -> str:
    return base64.b64encode(os.urandom(KEY_BYTES)).decode("ascii")


def associated_data(*, tenant_id: str, name: str, version: int, environment: str | None = None) -> bytes:
    """The context a ciphertext is bound to. An unscoped secret's is what it was before environments existed
    (so values sealed then still open); a scoped one's also names its environment, so a ciphertext copied
    between environments fails to open."""
    base = f"chorus-secret\x00{tenant_id}\x00{name}\x00{version}"
    return (base if environment is None else f"{base}\x00{environment}").encode()


def seal(key: VaultKey, plaintext: str, *, aad: bytes) -> tuple[bytes, bytes]:
    """(nonce, ciphertext-with-tag)."""
    nonce = os.urandom(NONCE_BYTES)
    return nonce, AESGCM(key.material).encrypt(nonce, plaintext.encode("utf-8"), aad)


def unseal(key: VaultKey, *, nonce: bytes, ciphertext: bytes, aad: bytes, sealed_by: str, what: str) -> str:
    if sealed_by != key.key_id:
        raise SecretUndecryptable(
            f"{what} was encrypted with vault key {sealed_by}, but this server's key is {key.key_id}: "
            "set CHORUS_SECRET_KEY to the key it was encrypted with, or rotate the secret"
        )
    try:
        return AESGCM(key.material).decrypt(nonce, ciphertext, aad).decode("utf-8")
    except InvalidTag:
        raise SecretUndecryptable(
            f"{what} failed its integrity check (its stored row was altered or moved); rotate the secret"
        ) from None
