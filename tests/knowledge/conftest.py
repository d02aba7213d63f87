"""Knowledge-base fixtures: a KnowledgeBase on the session database, the example corpus ingested once."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from chorus.agents.knowledge.local_files import ingest_path
from chorus.agents.knowledge.service import KnowledgeBase
from chorus.agents.storage.database import Database
from tests.conftest import ROOT, Tenant, make_tenant

CORPUS = ROOT / "configs" / "examples" / "knowledge" / "acme_support"
FAQ_FILE = ROOT / "configs" / "examples" / "knowledge" / "acme_support_faq.csv"
DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
async def corpus_tenant(db: Database, kb: KnowledgeBase) -> Tenant:
    """A tenant whose namespace 'support' holds the example support corpus (ingested once per session)."""
    tenant = await make_tenant(db)
    outcomes = await ingest_path(kb, tenant.tenant_id, CORPUS, namespace="support")
    assert all(o.status == "completed" for o in outcomes), [(o.path.name, o.detail) for o in outcomes]
    return tenant


def labelled_questions() -> list[dict[str, Any]]:
    data: dict[str, Any] = json.loads((DATA / "retrieval_questions.json").read_text())
    return list(data["questions"])
