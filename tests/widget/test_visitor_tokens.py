"""Visitor tokens: signed with a key derived from the vault key, expiring, renewable for a while."""

from __future__ import annotations

import os

import pytest

from chorus.agents.errors import Unauthorized
from chorus.agents.secrets.crypto import VaultKey
from chorus.webchat.visitor_tokens import RENEW_WITHIN_S, VisitorTokens


def _tokens() -> tuple[VaultKey, VisitorTokens]:
    key = VaultKey.from_bytes(os.urandom(32))
    return key, VisitorTokens.from_vault_key(key)


def test_a_token_names_its_visitor_and_the_vault_key_is_not_the_signing_key() -> None:
    vault, tokens = _tokens()
    token, visitor = tokens.issue(tenant_id="t1", key_id="k1")
    assert tokens.verify(token) == visitor and visitor.visitor_id
    # Another process with the same vault key accepts it; HMAC with the raw vault key does not sign it.
    assert VisitorTokens.from_vault_key(vault).verify(token) == visitor
    with pytest.raises(Unauthorized):
        VisitorTokens(vault.material).verify(token)


def test_a_token_of_another_vault_key_or_altered_is_refused() -> None:
    _, tokens = _tokens()
    _, others = _tokens()
    token, _ = tokens.issue(tenant_id="t1", key_id="k1")
    payload, signature = token.split(".")
    with pytest.raises(Unauthorized, match="not issued by this server"):
        others.verify(token)
    with pytest.raises(Unauthorized):
        tokens.verify(payload[:-3] + "abc." + signature)


def test_an_expired_token_is_renewable_only_for_a_while() -> None:
    _, tokens = _tokens()
    recent, _ = tokens.issue(tenant_id="t1", key_id="k1", ttl_s=-60)
    with pytest.raises(Unauthorized, match="expired"):
        tokens.verify(recent)
    assert tokens.verify(recent, expired_for_up_to_s=RENEW_WITHIN_S).tenant_id == "t1"
    old, _ = tokens.issue(tenant_id="t1", key_id="k1", ttl_s=-RENEW_WITHIN_S - 60)
    with pytest.raises(Unauthorized, match="expired"):
        tokens.verify(old, expired_for_up_to_s=RENEW_WITHIN_S)
