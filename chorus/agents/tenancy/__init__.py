"""Tenants and their API keys (stored hashed); every row in Chorus belongs to one tenant."""

from chorus.agents.tenancy.keys import DEFAULT_TENANT, Principal, create_api_key, ensure_tenant, resolve_api_key

__all__ = ["DEFAULT_TENANT", "Principal", "create_api_key", "ensure_tenant", "resolve_api_key"]
