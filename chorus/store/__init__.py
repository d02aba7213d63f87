"""The Agent Server store: each tenant's items (key-value, TTL, semantic search through the knowledge
base's embedder), kept by LangGraph's AsyncPostgresStore."""

from chorus.store.service import Item, ItemStore

__all__ = ["Item", "ItemStore"]
