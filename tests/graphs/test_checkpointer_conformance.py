"""LangGraph's checkpointer conformance suite (PyPI langgraph-checkpoint-conformance) against ChorusCheckpointer
on the real Postgres, one pytest case per upstream check.

Capabilities are detected as the suite's own `validate` does (the saver overrides the method). The optional
ones Chorus does not provide are skipped, each with its reason; the base ones must all pass.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from langgraph.checkpoint.conformance.capabilities import BASE_CAPABILITIES, Capability, DetectedCapabilities
from langgraph.checkpoint.conformance.spec.test_copy_thread import ALL_COPY_THREAD_TESTS
from langgraph.checkpoint.conformance.spec.test_delete_for_runs import ALL_DELETE_FOR_RUNS_TESTS
from langgraph.checkpoint.conformance.spec.test_delete_thread import ALL_DELETE_THREAD_TESTS
from langgraph.checkpoint.conformance.spec.test_get_tuple import ALL_GET_TUPLE_TESTS
from langgraph.checkpoint.conformance.spec.test_list import ALL_LIST_TESTS
from langgraph.checkpoint.conformance.spec.test_prune import ALL_PRUNE_TESTS
from langgraph.checkpoint.conformance.spec.test_put import ALL_PUT_TESTS
from langgraph.checkpoint.conformance.spec.test_put_writes import ALL_PUT_WRITES_TESTS

from chorus.agents.storage.database import Database
from chorus.graphs.checkpointer import ChorusCheckpointer

Check = Callable[[ChorusCheckpointer], Awaitable[None]]
SUITES: dict[str, list[Any]] = {
    "put": ALL_PUT_TESTS,
    "put_writes": ALL_PUT_WRITES_TESTS,
    "get_tuple": ALL_GET_TUPLE_TESTS,
    "list": ALL_LIST_TESTS,
    "delete_thread": ALL_DELETE_THREAD_TESTS,
    "delete_for_runs": ALL_DELETE_FOR_RUNS_TESTS,
    "copy_thread": ALL_COPY_THREAD_TESTS,
    "prune": ALL_PRUNE_TESTS,
}
# Optional capabilities ChorusCheckpointer does not implement (nor does the stock AsyncPostgresSaver it extends).
NOT_PROVIDED = {
    "delete_for_runs": "Chorus deletes a thread's checkpoints whole (adelete_thread) or prunes them (aprune); "
    "it keeps no per-run checkpoint deletion (adelete_for_runs)",
}
DETECTED = {c.value for c in DetectedCapabilities.from_instance(object.__new__(ChorusCheckpointer)).detected}


def _case(suite: str, check: Any) -> Any:
    marks = []
    if suite not in DETECTED:
        marks.append(pytest.mark.skip(reason=NOT_PROVIDED.get(suite, f"ChorusCheckpointer does not implement {suite}")))
    return pytest.param(check, id=f"{suite}::{check.__name__}", marks=marks)


CASES = [_case(suite, check) for suite, checks in SUITES.items() for check in checks]


def test_every_capability_is_run_or_skipped_for_a_stated_reason() -> None:
    assert set(SUITES) == {c.value for c in Capability}, "the suite gained a capability: add it to SUITES"
    assert {c.value for c in BASE_CAPABILITIES} <= DETECTED
    assert set(SUITES) - DETECTED == set(NOT_PROVIDED), "a capability is newly provided or dropped: update NOT_PROVIDED"


@pytest.fixture
async def saver(db: Database) -> AsyncIterator[ChorusCheckpointer]:
    saver = ChorusCheckpointer(db.pool)
    await saver.setup()
    yield saver
    await saver.aflush()


@pytest.mark.parametrize("check", CASES)
async def test_conformance(saver: ChorusCheckpointer, check: Check) -> None:
    await check(saver)
