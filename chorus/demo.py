"""The demo set-up `make run` does: the default tenant (`demo`), its API key, the example bots and their
knowledge, and a publishable key with which the widget's demo page (/static/widget-demo.html) embeds the
support bot. `chorus chat FILE` in that tenant loads the same knowledge, so a bot answers alike in both.

Knowledge: every folder under configs/examples/knowledge/ is ingested into the namespace of its name
(unchanged files are skipped), and every <namespace>.csv there is imported (merged) as FAQs.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from chorus.agents.configs.history import Author
from chorus.agents.configs.repository import ConfigRepository
from chorus.agents.configs.service import ConfigService
from chorus.agents.errors import ChorusError
from chorus.agents.settings import Settings
from chorus.agents.storage.database import Database
from chorus.agents.tenancy.keys import DEFAULT_TENANT, create_api_key, ensure_tenant, resolve_api_key
from chorus.agents.tenancy.publishable_keys import (
    create_publishable_key,
    find_publishable_keys,
    revoke_publishable_key,
)
from chorus.agents.tools.builtins import build_registry
from chorus.agents.tools.registry import ToolRegistry

if TYPE_CHECKING:
    from chorus.agents.knowledge.faq import FaqService

log = logging.getLogger(__name__)
EXAMPLES_DIR = Path(__file__).resolve().parents[1] / "configs" / "examples"
KNOWLEDGE_DIR = EXAMPLES_DIR / "knowledge"
# Where the demo key is kept (under $CHORUS_HOME), for the README's `KEY=$(cat .chorus/demo_api_key)`.
DEMO_KEY_FILE = "demo_api_key"
# The widget demo's publishable key (for the support bot, from the server's own origins).
DEMO_WIDGET_KEY_FILE = "demo_publishable_key"
WIDGET_DEMO_BOT = "acme_support_bot.json"


@dataclass(frozen=True)
class DemoKeys:
    api_key: str
    widget_key: str | None  # None: the support bot did not load


async def load_config_file(
    db: Database, tenant_id: str, path: Path, *, registry: ToolRegistry
) -> tuple[str, int, bool]:
    """Store the config in `path` for the tenant under its config_metadata.config_id, as `chorus config apply`
    would: a new bot, a new version if it changed, or nothing. A file without an id is matched by its bot's
    name, so `chorus chat FILE` run twice talks to one bot.

    Returns (assistant id, version, changed).
    """
    raw = json.loads(await asyncio.to_thread(path.read_text, encoding="utf-8"))
    service = ConfigService(ConfigRepository(db), registry)
    meta = raw.get("config_metadata") if isinstance(raw, dict) else None
    key = meta.get("config_id") if isinstance(meta, dict) else None
    name = (meta or {}).get("name") or ((raw.get("system_prompt") or {}).get("role") if isinstance(raw, dict) else None)
    by_name = await service.repo.find_by_name(tenant_id, str(name)) if name else None
    if key is None and by_name is not None:
        key = by_name.key
    elif (
        isinstance(key, str)
        and by_name is not None
        and by_name.key == by_name.config_id
        and await service.repo.find_by_key(tenant_id, key) is None
    ):
        # Loaded before Chorus kept a file's id (it stored its own UUID instead): that bot takes the file's id
        # rather than a second bot being made.
        await service.repo.set_key(tenant_id, by_name.config_id, key)
    done = await service.upload(
        tenant_id,
        raw,
        key=key,
        source="apply",
        author=Author.cli(),
        commit_message=f"loaded from {path.name}",
    )
    return done.stored.config_id, done.stored.version, done.changed


async def _faqs_stored(faqs: FaqService, tenant_id: str, faq_file: Path, data: bytes) -> bool:
    """Whether every FAQ of the file is stored as it is: then an import would only embed them all again."""
    from chorus.agents.knowledge.faq import faq_input
    from chorus.agents.knowledge.faq_import import parse_import

    wanted = parse_import(faq_file.name, data, None)
    stored = await faqs.list_faqs(tenant_id, faq_file.stem, category=None, limit=10_000, offset=0)
    by_question = {str(row["question"]).strip().lower(): faq_input(row) for row in stored}
    return all(by_question.get(faq.question.strip().lower()) == faq for faq in wanted)


async def load_demo_knowledge(db: Database, settings: Settings, tenant_id: str) -> None:
    from chorus.agents.knowledge.faq_import import submit_import
    from chorus.agents.knowledge.local_files import ingest_path
    from chorus.agents.knowledge.service import standalone_knowledge_base

    async with standalone_knowledge_base(db, max_file_bytes=settings.upload_max_bytes) as kb:
        for folder in sorted(p for p in KNOWLEDGE_DIR.iterdir() if p.is_dir()):
            outcomes = await ingest_path(kb, tenant_id, folder, namespace=folder.name)
            for o in outcomes:
                if o.status == "failed":
                    log.error("example document not loaded", extra={"file": o.path.name, "error": o.detail})
            log.info(
                "example knowledge ready",
                extra={"namespace": folder.name, "documents": sum(o.status != "skipped" for o in outcomes)},
            )
        for faq_file in sorted(KNOWLEDGE_DIR.glob("*.csv")):
            data = await asyncio.to_thread(faq_file.read_bytes)
            if await _faqs_stored(kb.faqs, tenant_id, faq_file, data):
                log.info("example FAQs ready", extra={"namespace": faq_file.stem, "result": "unchanged"})
                continue
            job = await submit_import(
                kb.faqs, kb.jobs, tenant_id, faq_file.stem, faq_file.name, data, mode="merge", mapping=None, actor=None
            )
            done = await kb.jobs.finished(tenant_id, job["job_id"])
            log.info("example FAQs ready", extra={"namespace": faq_file.stem, "result": done["result"]})


async def bootstrap_demo(db: Database, settings: Settings, *, origins: list[str] | None = None) -> DemoKeys:
    """Create the demo tenant and load the examples; return its API key and the widget demo's publishable key
    for `origins` (the server's own; both kept under $CHORUS_HOME)."""
    tenant_id = await ensure_tenant(db, DEFAULT_TENANT)
    registry = build_registry()
    support_bot = None
    for path in sorted(EXAMPLES_DIR.glob("*.json")):
        try:
            config_id, version, changed = await load_config_file(db, tenant_id, path, registry=registry)
        except ChorusError as exc:
            log.error("example bot not loaded", extra={"file": path.name, "error": exc.detail})
            continue
        if path.name == WIDGET_DEMO_BOT:
            support_bot = config_id
        log.info(
            "example bot ready",
            extra={"file": path.name, "config_id": config_id, "version": version, "changed": changed},
        )
    await load_demo_knowledge(db, settings, tenant_id)
    widget_key = await _demo_widget_key(db, settings, tenant_id, support_bot, origins or []) if support_bot else None
    return DemoKeys(await _demo_api_key(db, settings, tenant_id), widget_key)


def _keep(settings: Settings, name: str, key: str) -> None:
    settings.home.mkdir(parents=True, exist_ok=True)
    path = settings.home / name
    path.write_text(key)
    path.chmod(0o600)


async def _demo_api_key(db: Database, settings: Settings, tenant_id: str) -> str:
    key_file = settings.home / DEMO_KEY_FILE
    if key_file.exists():
        key = key_file.read_text().strip()
        try:
            await resolve_api_key(db, key)
            return key
        except ChorusError:
            pass
    key = await create_api_key(db, tenant_id=tenant_id, role="organization_admin", name="demo")
    _keep(settings, DEMO_KEY_FILE, key)
    return key


async def _demo_widget_key(
    db: Database, settings: Settings, tenant_id: str, bot: str, origins: list[str]
) -> str | None:
    """The kept publishable key while it is live and fits (the bot, these origins); else a new one, and the
    old one revoked (a server started on another port needs other origins)."""
    if not origins:
        return None
    key_file = settings.home / DEMO_WIDGET_KEY_FILE
    if key_file.exists():
        kept = key_file.read_text().strip()
        for found in await find_publishable_keys(db, kept, tenant_id=tenant_id):
            fits = list(found.assistant_ids) == [bot] and set(found.allowed_origins) == set(origins)
            if found.revoked_at is None and fits:
                return kept
            await revoke_publishable_key(db, tenant_id=tenant_id, key_id=found.key_id)
    created = await create_publishable_key(
        db, tenant_id=tenant_id, assistant_ids=[bot], allowed_origins=origins, name="widget demo"
    )
    _keep(settings, DEMO_WIDGET_KEY_FILE, created.key)
    return created.key
