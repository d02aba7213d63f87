"""Chorus: a self-hosted runtime for customer-facing AI agents."""
