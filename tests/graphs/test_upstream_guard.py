"""Importing Chorus fails with a clear message when an upstream LangGraph name it relies on is gone."""

from __future__ import annotations

import importlib
import sys
from importlib import metadata

import langgraph.channels.binop
import pytest
from langgraph.checkpoint.postgres import base as postgres_base

from chorus.graphs import upstream


def _fresh_import() -> None:
    importlib.import_module("chorus.graphs.upstream")


@pytest.fixture
def fresh(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    # monkeypatch puts the already imported module back afterwards
    monkeypatch.delitem(sys.modules, "chorus.graphs.upstream")
    return monkeypatch


def test_a_missing_private_helper_names_itself_and_the_versions(fresh: pytest.MonkeyPatch) -> None:
    fresh.delattr(langgraph.channels.binop, "_get_overwrite")
    # The fresh import defines its own UpstreamMismatch class: match the ImportError it derives from.
    with pytest.raises(ImportError) as raised:
        _fresh_import()
    assert type(raised.value).__name__ == "UpstreamMismatch"
    message = str(raised.value)
    assert "`_get_overwrite` from `langgraph.channels.binop` (langgraph)" in message
    assert f"langgraph {metadata.version('langgraph')}" in message
    assert "langgraph>=1.2.0,<1.3" in message and "langgraph-checkpoint-postgres>=3.2.0,<3.3" in message
    assert "docs/decisions.md" in message


def test_a_missing_saver_method_names_itself(fresh: pytest.MonkeyPatch) -> None:
    fresh.delattr(postgres_base.BasePostgresSaver, "_load_blobs")
    with pytest.raises(ImportError, match=r"`AsyncPostgresSaver\._load_blobs`"):
        _fresh_import()


def test_the_tested_range_is_the_pinned_one() -> None:
    import tomllib
    from pathlib import Path

    pyproject = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())
    pinned = dict(d.split(">", 1) for d in pyproject["project"]["dependencies"] if d.startswith("langgraph"))
    assert {dist: ">" + spec for dist, spec in pinned.items()} == upstream.TESTED
