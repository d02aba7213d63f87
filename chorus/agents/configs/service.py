"""Creating and versioning bot configs: every stored version has passed validation."""

from __future__ import annotations

import uuid
from typing import Any

from chorus.agents.configs.models import BotConfig
from chorus.agents.configs.repository import ConfigRepository, StoredConfig
from chorus.agents.configs.validation import ValidationReport, validate_config
from chorus.agents.errors import InvalidInput
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


class ConfigService:
    def __init__(self, repo: ConfigRepository, registry: ToolRegistry) -> None:
        self.repo = repo
        self.registry = registry
        self.secrets = SecretRepository(repo.db)

    async def validate(self, tenant_id: str, raw: Any) -> ValidationReport:
        """Validate for this tenant: the secrets the config references must exist in its vault."""
        names = await self.secrets.names(tenant_id) if referenced_names(raw) else set()
        return validate_config(raw, registry=self.registry, secret_names=names)

    async def _checked(self, tenant_id: str, raw: Any) -> tuple[ValidationReport, BotConfig]:
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
        commit_message: str | None = None,
    ) -> tuple[StoredConfig, ValidationReport]:
        report, config = await self._checked(tenant_id, raw)
        config_id = config_id or str(uuid.uuid4())
        stored = await self.repo.insert(
            tenant_id=tenant_id,
            config_id=config_id,
            name=name or config.display_name,
            description=description or config.config_metadata.description,
            product_type=config.product_type,
            config=raw,
            metadata=metadata or {},
            commit_message=commit_message,
        )
        return stored, report

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
    ) -> tuple[StoredConfig, ValidationReport | None]:
        """A new version: the new config (or the current one again), `metadata` merged into the current
        version's (as the Agent Server's PATCH merges), the name and description given or kept."""
        current = await self.repo.get(tenant_id, config_id)
        report: ValidationReport | None = None
        new_raw = current.config
        if raw is not None:
            report, config = await self._checked(tenant_id, raw)
            if config.product_type != current.product_type:
                raise InvalidInput(
                    f"this assistant is a {current.product_type}; a new version cannot change product_type",
                    errors=[{"path": "$.config_metadata.product_type", "message": "cannot change"}],
                )
            new_raw = raw
        stored = await self.repo.add_version(
            tenant_id=tenant_id,
            config_id=current.config_id,
            config=new_raw,
            metadata={**current.metadata, **(metadata or {})},
            name=name or (report.config.display_name if report and report.config else current.name),
            description=description
            or (report.config.config_metadata.description if report and report.config else current.description),
            commit_message=commit_message,
        )
        return stored, report
