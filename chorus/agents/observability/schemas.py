"""What GET /health and GET /info answer with."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class Health(BaseModel):
    status: Literal["ok", "busy", "unhealthy"] = Field(description="busy: up, but every connection is in use")
    database: str = Field(description="`ok`, or what is wrong with the database")
    pool: dict[str, int] = Field(description="the connection pool: size, available, waiting …")


class InfoFlags(BaseModel):
    assistants: bool
    crons: bool
    langsmith: bool


class InfoHost(BaseModel):
    kind: str
    project_id: str | None
    revision_id: str | None
    tenant_id: str | None


class Info(BaseModel):
    """What this server is, in the LangGraph Agent Server's shape (clients such as agent-chat-ui check it)."""

    version: str
    langgraph_py_version: str
    flags: InfoFlags
    host: InfoHost
