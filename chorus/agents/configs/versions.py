"""Reading a config's history, comparing two of its versions, and rolling back: a rollback appends a new
version equal to the one chosen, so history only ever grows."""

from __future__ import annotations

from dataclasses import dataclass

from chorus.agents.configs.approvals import assert_deployable
from chorus.agents.configs.diff import ConfigDiff, diff_configs
from chorus.agents.configs.history import Author, VersionRecord
from chorus.agents.configs.repository import StoredConfig
from chorus.agents.configs.service import ConfigService
from chorus.agents.configs.versions_repository import VersionRepository
from chorus.agents.errors import InvalidInput, VersionNotFound


@dataclass(frozen=True)
class VersionPage:
    config: StoredConfig
    versions: list[VersionRecord]
    total: int


@dataclass(frozen=True)
class VersionDiff:
    config: StoredConfig
    from_version: int
    to_version: int
    diff: ConfigDiff


@dataclass(frozen=True)
class Rollback:
    config: StoredConfig  # at its new current version
    rolled_back_from: int
    rolled_back_to: int
    commit_message: str


class ConfigVersions:
    def __init__(self, service: ConfigService) -> None:
        self.service = service
        self.repo = VersionRepository(service.repo.db)

    async def page(self, tenant_id: str, ident: str, *, limit: int, offset: int) -> VersionPage:
        config = await self.service.repo.find(tenant_id, ident)
        versions = await self.repo.page(tenant_id, config.config_id, limit=limit, offset=offset)
        return VersionPage(config, versions, await self.repo.count(tenant_id, config.config_id))

    async def _version(self, tenant_id: str, config: StoredConfig, version: int) -> VersionRecord:
        record = await self.repo.get(tenant_id, config.config_id, version)
        if record is None:
            raise VersionNotFound(config.key, version, await self.repo.count(tenant_id, config.config_id))
        return record

    async def get(self, tenant_id: str, ident: str, version: int) -> tuple[StoredConfig, VersionRecord]:
        config = await self.service.repo.find(tenant_id, ident)
        return config, await self._version(tenant_id, config, version)

    async def diff(self, tenant_id: str, ident: str, *, start: int | None, end: int | None) -> VersionDiff:
        """From `start` (default: the version before `end`) to `end` (default: the current version)."""
        config = await self.service.repo.find(tenant_id, ident)
        end = config.version if end is None else end
        start = max(1, end - 1) if start is None else start
        old = await self._version(tenant_id, config, start)
        new = await self._version(tenant_id, config, end)
        return VersionDiff(config, start, end, diff_configs(old.config, new.config))

    async def rollback(
        self, tenant_id: str, ident: str, *, target: int, reason: str | None, author: Author
    ) -> Rollback:
        """A new version with the content of `target`, validated again (a secret or tool it needs may have
        gone since)."""
        config = await self.service.repo.find(tenant_id, ident)
        chosen = await self._version(tenant_id, config, target)
        assert_deployable(chosen, where="$.target_version")
        if target == config.version:
            raise InvalidInput(
                f"version {target} is already the current version of config '{config.key}': roll back to an "
                f"earlier one (GET /api/v1/configs/{config.key}/versions lists them)",
                errors=[{"path": "$.target_version", "message": "is the current version"}],
            )
        _, checked = await self.service.checked(tenant_id, chosen.config)
        message = f"Rollback to v{target}" + (f": {reason}" if reason else "")
        stored = await self.service.repo.add_version(
            tenant_id=tenant_id,
            config_id=config.config_id,
            config=chosen.config,
            metadata=config.metadata,
            name=checked.display_name,
            description=checked.config_metadata.description,
            commit_message=message,
            source="rollback",
            author=author,
            rolled_back_to=target,
        )
        return Rollback(stored, config.version, target, message)
