"""Dependencies of the threads/runs routers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from chorus.runs.engine import RunEngine
from chorus.runs.threads_repository import ThreadRepository
from chorus.runs.threads_service import ThreadService


def _engine(request: Request) -> RunEngine:
    engine: RunEngine = request.app.state.run_engine
    return engine


def _threads(request: Request) -> ThreadRepository:
    repo: ThreadRepository = request.app.state.threads
    return repo


EngineDep = Annotated[RunEngine, Depends(_engine)]
ThreadsDep = Annotated[ThreadRepository, Depends(_threads)]


def _thread_service(engine: EngineDep, threads: ThreadsDep) -> ThreadService:
    return ThreadService(engine=engine, threads=threads)


ThreadServiceDep = Annotated[ThreadService, Depends(_thread_service)]
