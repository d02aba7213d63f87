"""Creating and versioning bot configs: every stored version has passed validation, and a config uploaded
again under its id appends a version only when its content changed."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from chorus.agents.configs.change_risk import classify_changes
from chorus.agents.configs.diff import same_content
from chorus.agents.configs.history import Author, ChangeSource
from chorus.agents.configs.models import BotConfig
from chorus.agents.configs.repository import ConfigRepository, Review, StoredConfig, stamp
from chorus.agents.configs.validation import ValidationReport, validate_config
from chorus.agents.errors import ConfigIdTaken, InvalidInput
from chorus.agents.secrets.references import referenced_names
from chorus.agents.secrets.repository import SecretRepository
from chorus.agents.tools.registry import ToolRegistry


def _raise_if_invalid(report: ValidationReport) -> BotConfig:
    """The config of a valid report; InvalidInput listing every problem otherwise."""
    if not report.valid or report.config is None:
        raise InvalidInput(
            f"the bot config is invalid ({len(report.errors)} problem(s)); fix each path listed in 'errors'",
            errors=[p.to_dict() for p in report.errors],
        )
    return report.config


@dataclass(frozen=True)
class Upload:
    """What an upload did: created the config, appended a version (`changed`), or nothing (same content)."""

    stored: StoredConfig
    report: ValidationReport
    created: bool
    changed: bool


def require_same_kind(current: StoredConfig, config: BotConfig) -> None:
    if config.product_type != current.product_type:
        raise InvalidInput(
            f"this config is a {current.product_type}; a new version cannot change product_type "
            "(give the other bot another config_id)",
            errors=[{"path": "$.config_metadata.product_type", "message": "cannot change"}],
        )


class ConfigService:
    def __init__(self, repo: ConfigRepository, registry: ToolRegistry) -> None:
        self.repo = repo
        self.registry = registry
        self.secrets = SecretRepository(repo.db)

    async def validate(self, tenant_id: str, raw: Any) -> ValidationReport:
        """Validate for this tenant: the secrets the config references must exist in its vault."""
        names = await self.secrets.names(tenant_id) if referenced_names(raw) else set()
        return validate_config(raw, registry=self.registry, secret_names=names)

    async def checked(self, tenant_id: str, raw: Any) -> tuple[ValidationReport, BotConfig]:
        """The report and the parsed config of a valid config; InvalidInput listing every problem otherwise."""
        report = await self.validate(tenant_id, raw)
        return report, _raise_if_invalid(report)

    async def create(
        self,
        tenant_id: str,
        raw: Any,
        *,
        metadata: dict[str, Any] | None = None,
        name: str | None = None,
        description: str | None = None,
        config_id: str | None = None,
        key: str | None = None,
        commit_message: str | None = None,
        source: ChangeSource = "upload",
        author: Author,
    ) -> tuple[StoredConfig, ValidationReport]:
        """A new config: assistant id `config_id` (or a new UUID), key `key` (or the assistant id)."""
        report, config = await self.checked(tenant_id, raw)
        config_id = config_id or str(uuid.uuid4())
        stored = await self.repo.insert(
            tenant_id=tenant_id,
            config_id=config_id,
            key=key,
            name=name or config.display_name,
            description=description or config.config_metadata.description,
            product_type=config.product_type,
            config=raw,
            metadata=metadata or {},
            commit_message=commit_message,
            source=source,
            author=author,
        )
        return stored, report

    @staticmethod
    def _review(current: StoredConfig, new: dict[str, Any]) -> Review:
        """How a change made over the API is stored: approved at once when its risk needs nobody, else
        waiting for the approvers its classification names."""
        # Compared as it will be stored: under the config's own id (a file may name another) and version.
        classification = classify_changes(current.config, stamp(new, current.key, current.version))
        return Review(
            status="pending_approval" if classification.requires_approval else "approved",
            risk_level=classification.risk_level,
            classification=classification.to_dict(),
            based_on=current.version,
        )

    async def upload(
        self,
        tenant_id: str,
        raw: Any,
        *,
        author: Author,
        source: ChangeSource = "upload",
        commit_message: str | None = None,
        key: str | None = None,
        reviewed: bool = False,
    ) -> Upload:
        """Store a config under its id (`key`, else its config_metadata.config_id): a new config if the tenant
        has none of that id (a new id when it names none), else a new version if its content changed.
        `reviewed` (an upload over the API): a new version is classified like a PATCH, and one whose risk
        needs approval waits for it (`pending_approval`) instead of becoming current. The operator's own
        paths (the demo, `chorus chat`) store directly."""
        report, config = await self.checked(tenant_id, raw)
        key = key or config.config_metadata.config_id
        for _ in range(2):  # a concurrent upload of the same new id may create it first: then this is a version
            current = await self.repo.find_by_key(tenant_id, key) if key else None
            if current is None:
                try:
                    stored, _ = await self.create(
                        tenant_id, raw, key=key, commit_message=commit_message, source=source, author=author
                    )
                except ConfigIdTaken:
                    continue
                return Upload(stored, report, created=True, changed=True)
            require_same_kind(current, config)
            if same_content(current.config, stamp(raw, current.key, current.version)):
                return Upload(current, report, created=False, changed=False)
            review = self._review(current, raw) if reviewed else None
            stored = await self.repo.add_version(
                tenant_id=tenant_id,
                config_id=current.config_id,
                config=raw,
                metadata=current.metadata,
                name=config.display_name,
                description=config.config_metadata.description,
                commit_message=commit_message,
                source=source,
                author=author,
                review=review,
            )
            return Upload(stored, report, created=False, changed=True)
        raise ConfigIdTaken(str(key))

    async def update(
        self,
        tenant_id: str,
        config_id: str,
        raw: Any | None,
        *,
        metadata: dict[str, Any] | None = None,
        name: str | None = None,
        description: str | None = None,
        commit_message: str | None = None,
        source: ChangeSource = "patch",
        author: Author,
        reviewed: bool = False,
    ) -> tuple[StoredConfig, ValidationReport | None]:
        """A new version: the new config (or the current one again), `metadata` merged into the current
        version's (as the Agent Server's PATCH merges), the name and description given or kept. `reviewed`:
        a new config is classified, and waits for approval when its risk needs it (see `upload`)."""
        current = await self.repo.get(tenant_id, config_id)
        report: ValidationReport | None = None
        new_raw = current.config
        review = None
        if raw is not None:
            report, config = await self.checked(tenant_id, raw)
            require_same_kind(current, config)
            new_raw = raw
            if reviewed:
                review = self._review(current, raw)
        stored = await self.repo.add_version(
            tenant_id=tenant_id,
            config_id=current.config_id,
            config=new_raw,
            metadata={**current.metadata, **(metadata or {})},
            name=name or (report.config.display_name if report and report.config else current.name),
            description=description
            or (report.config.config_metadata.description if report and report.config else current.description),
            commit_message=commit_message,
            source=source,
            author=author,
            review=review,
        )
        return stored, report
