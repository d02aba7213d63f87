"""GitOps apply (`chorus config apply`, POST /api/v1/configs/apply): many config files planned together —
created, changed (with its diff, and whether it will wait for approval), unchanged, already waiting for
approval — and stored only when no file has a problem, so a bad file stores nothing.

Problems: a file that is not a valid config, one without `config_metadata.config_id` (apply keeps bots by
their id), two files with one id, drift (the config changed on the server since its last apply, and not
back), and a file that was applied as another config (its id was edited). `force` overrides the last two.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal

from chorus.agents.configs.approvals_repository import ApprovalRepository
from chorus.agents.configs.change_risk import classify_changes
from chorus.agents.configs.diff import diff_configs, same_content
from chorus.agents.configs.history import Author, VersionRecord
from chorus.agents.configs.repository import StoredConfig, stamp
from chorus.agents.configs.service import ConfigService, require_same_kind
from chorus.agents.configs.versions_repository import VersionRepository
from chorus.agents.errors import ChorusError, InvalidInput

Action = Literal["create", "change", "unchanged", "pending", "invalid"]


@dataclass(frozen=True)
class ApplyFile:
    path: str  # relative to the directory applied: the file's identity in the apply history
    config: Any


@dataclass(frozen=True)
class Drift:
    """The config changed on the server since its last apply: from `applied_version` to `current_version`,
    by the versions listed (`how`: 'v4 patch by ops-key (developer)'), these fields."""

    applied_version: int
    current_version: int
    how: list[str]
    changes: dict[str, dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "applied_version": self.applied_version,
            "current_version": self.current_version,
            "versions_since": self.how,
            "diff": self.changes,
        }


@dataclass
class FilePlan:
    """One file's part of the plan, then of the result (`version`, `status` once applied)."""

    path: str
    config_id: str | None
    action: Action
    assistant_id: str | None = None
    current_version: int | None = None
    diff: dict[str, dict[str, Any]] = field(default_factory=dict)
    risk_level: str | None = None
    approval_required_from: list[str] = field(default_factory=list)
    pending_version: int | None = None  # `pending`: the version of this content already waiting
    drift: Drift | None = None
    applied_as: str | None = None  # this file was last applied as that other config id
    errors: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[dict[str, Any]] = field(default_factory=list)
    version: int | None = None
    status: str | None = None

    def blockers(self, *, force: bool) -> list[str]:
        """What stops the apply, in words (empty: this file may be applied)."""
        said = [f"{e.get('path', '$')}: {e.get('message', '')}" for e in self.errors]
        if self.drift and not force:
            said.append(
                f"config '{self.config_id}' changed on the server since its last apply (v{self.drift.applied_version}"
                f" -> v{self.drift.current_version}); put those changes in the file, or pass force to overwrite them"
            )
        if self.applied_as and not force:
            said.append(
                f"this file was applied as config '{self.applied_as}' and now says '{self.config_id}': a config's id "
                f"is its identity, so change it back, or pass force to make '{self.config_id}' a new bot (config "
                f"'{self.applied_as}' stays as it is)"
            )
        return said

    def to_dict(self, *, force: bool) -> dict[str, Any]:
        return {
            "path": self.path,
            "config_id": self.config_id,
            "assistant_id": self.assistant_id,
            "action": self.action,
            "current_version": self.current_version,
            "diff": self.diff,
            "requires_approval": bool(self.approval_required_from),
            "risk_level": self.risk_level,
            "approval_required_from": self.approval_required_from,
            "pending_version": self.pending_version,
            "drift": self.drift.to_dict() if self.drift else None,
            "applied_as": self.applied_as,
            "errors": self.errors,
            "warnings": self.warnings,
            "blocked_by": self.blockers(force=force),
            "version": self.version,
            "status": self.status,
        }


@dataclass(frozen=True)
class ApplyResult:
    files: list[FilePlan]
    force: bool
    dry_run: bool
    applied: bool

    def to_dict(self) -> dict[str, Any]:
        counts = Counter(f.action for f in self.files)
        return {
            "dry_run": self.dry_run,
            "applied": self.applied,
            "force": self.force,
            "summary": {
                **{a: counts.get(a, 0) for a in ("create", "change", "unchanged", "pending", "invalid")},
                "requires_approval": sum(
                    1 for f in self.files if f.action in ("create", "change") and f.approval_required_from
                ),
                "blocked": sum(1 for f in self.files if f.blockers(force=self.force)),
            },
            "files": [f.to_dict(force=self.force) for f in self.files],
        }


def _who(record: VersionRecord) -> str:
    author = record.author
    by = f" by {author.name or author.kind} ({author.role or author.kind})" if author else ""
    return f"v{record.version} {record.source}{by}"


class ConfigApply:
    def __init__(self, service: ConfigService) -> None:
        self.service = service
        self.versions = VersionRepository(service.repo.db)

    async def plan(self, tenant_id: str, files: list[ApplyFile]) -> list[FilePlan]:
        """Every file checked against the tenant's configs; nothing is stored."""
        plans = [await self._plan_one(tenant_id, f) for f in files]
        ids = Counter(p.config_id for p in plans if p.config_id)
        for p in plans:
            if p.config_id and ids[p.config_id] > 1:
                others = ", ".join(o.path for o in plans if o.config_id == p.config_id and o is not p)
                p.errors.append(
                    {
                        "path": "$.config_metadata.config_id",
                        "message": f"'{p.config_id}' is also the id of {others}: each config lives in one file",
                    }
                )
        previous = await self.versions.applied_from(tenant_id, [p.path for p in plans if p.config_id])
        named = {p.config_id for p in plans}
        for p in plans:
            before = previous.get(p.path)
            if before and before[1] != p.config_id and before[1] not in named:
                p.applied_as = before[1]
        return plans

    async def _plan_one(self, tenant_id: str, file: ApplyFile) -> FilePlan:
        report = await self.service.validate(tenant_id, file.config)
        meta = file.config.get("config_metadata") if isinstance(file.config, dict) else None
        key = meta.get("config_id") if isinstance(meta, dict) and isinstance(meta.get("config_id"), str) else None
        plan = FilePlan(file.path, key, "invalid", warnings=[w.to_dict() for w in report.warnings])
        if not report.valid or report.config is None:
            plan.errors = [p.to_dict() for p in report.errors]
            return plan
        if key is None:
            plan.errors = [
                {
                    "path": "$.config_metadata.config_id",
                    "message": "missing: apply keeps each bot by its id, so give it one (letters, digits, _ . : -)",
                }
            ]
            return plan
        current = await self.service.repo.find_by_key(tenant_id, key)
        if current is None:
            plan.action = "create"
            return plan
        plan.assistant_id, plan.current_version = current.config_id, current.version
        try:
            require_same_kind(current, report.config)
        except InvalidInput as exc:
            plan.errors = exc.errors
            return plan
        new = stamp(file.config, current.key, current.version)
        if same_content(current.config, new):
            plan.action = "unchanged"
            return plan
        plan.diff = diff_configs(current.config, new).changes
        for waiting in await self.versions.pending(tenant_id, current.config_id):
            if same_content(waiting.config, new):
                plan.action, plan.pending_version = "pending", waiting.version
                plan.risk_level = waiting.risk_level
                plan.approval_required_from = await self._missing(tenant_id, current, waiting)
                return plan
        plan.action = "change"
        classification = classify_changes(current.config, new)
        plan.risk_level = classification.risk_level
        plan.approval_required_from = list(classification.approval_required_from)
        plan.drift = await self._drift(tenant_id, current)
        return plan

    async def _missing(self, tenant_id: str, current: StoredConfig, waiting: VersionRecord) -> list[str]:
        needed = (waiting.change_classification or {}).get("approval_required_from") or []
        approvals = ApprovalRepository(self.service.repo.db)
        signed = (await approvals.signatures(tenant_id, current.config_id, [waiting.version]))[waiting.version]
        done = {s.role for s in signed if s.decision == "approve"}
        return [r for r in needed if r not in done]

    async def _drift(self, tenant_id: str, current: StoredConfig) -> Drift | None:
        """The server's changes since the last apply, unless the current version has the applied content (a
        change undone, or the same change made both ways). A config never applied has no drift."""
        applied = await self.versions.last_applied(tenant_id, current.config_id)
        if applied is None or applied.version == current.version or same_content(applied.config, current.config):
            return None
        since = await self.versions.approved_since(tenant_id, current.config_id, applied.version)
        return Drift(
            applied.version,
            current.version,
            [_who(v) for v in since],
            diff_configs(applied.config, current.config).changes,
        )

    async def apply(
        self,
        tenant_id: str,
        files: list[ApplyFile],
        *,
        author: Author,
        commit_message: str | None,
        force: bool,
        dry_run: bool,
    ) -> ApplyResult:
        """Plan every file; unless `dry_run`, store the created and changed ones (`source` apply, the file's
        path kept on the version) — or nothing, with every problem listed (422), if any file has one."""
        seen: dict[str, int] = {}
        for i, f in enumerate(files):
            if f.path in seen:
                raise InvalidInput(
                    f"two files have the path '{f.path[:200]}' ($.files[{seen[f.path]}] and $.files[{i}]): each "
                    "file of an apply needs its own path",
                    errors=[{"path": f"$.files[{i}].path", "message": "the same as another file's"}],
                )
            seen[f.path] = i
        plans = await self.plan(tenant_id, files)
        if dry_run:
            return ApplyResult(plans, force, dry_run, applied=False)
        blocked = [(i, p, b) for i, p in enumerate(plans) for b in p.blockers(force=force)]
        if blocked:
            names = sorted({p.path for _, p, _ in blocked})
            raise InvalidInput(
                f"nothing applied: {len(names)} file(s) have problems ({', '.join(names)}); fix each one listed "
                "in 'errors' (a dry run shows the whole plan)",
                errors=[{"path": f"$.files[{i}]", "file": p.path, "message": b} for i, p, b in blocked],
            )
        by_path = {f.path: f for f in files}  # one file per path (checked above)
        for p in plans:
            if p.action not in ("create", "change"):
                continue
            try:
                done = await self.service.upload(
                    tenant_id,
                    by_path[p.path].config,
                    author=author,
                    source="apply",
                    commit_message=commit_message,
                    reviewed=True,
                )
            except ChorusError as exc:  # the config changed meanwhile, or a secret went: say which file
                applied = [q.path for q in plans if q.version is not None]
                exc.detail = f"{p.path}: {exc.detail}" + (
                    f" (applied before it: {', '.join(applied)})" if applied else " (nothing was applied)"
                )
                raise
            stored = done.stored
            await self.versions.set_source_path(tenant_id, stored.config_id, stored.version, p.path)
            p.assistant_id, p.version = stored.config_id, stored.version
            p.status = "pending_approval" if stored.version != stored.latest_version else "current"
            p.current_version = stored.latest_version
        return ApplyResult(plans, force, dry_run, applied=True)
