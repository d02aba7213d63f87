"""Postgres: the embedded server, the connection pool and the migrations."""

from chorus.agents.storage.database import Database, open_database

__all__ = ["Database", "open_database"]
