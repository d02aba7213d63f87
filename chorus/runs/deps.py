"""Dependencies of the threads/runs routers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from chorus.runs.manager import RunManager
from chorus.runs.threads_repository import ThreadRepository


def _manager(request: Request) -> RunManager:
    manager: RunManager = request.app.state.run_manager
    return manager


def _threads(request: Request) -> ThreadRepository:
    repo: ThreadRepository = request.app.state.threads
    return repo


ManagerDep = Annotated[RunManager, Depends(_manager)]
ThreadsDep = Annotated[ThreadRepository, Depends(_threads)]
