"""Tenants and their API keys (stored hashed); every row in Chorus belongs to one tenant."""

from chorus.agents.tenancy.keys import Principal, create_api_key, ensure_tenant, resolve_api_key

__all__ = ["Principal", "create_api_key", "ensure_tenant", "resolve_api_key"]
