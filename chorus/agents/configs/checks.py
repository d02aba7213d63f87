"""The seed's validation report (001 §7 "Validate Config"): named checks, whether the config is ready to deploy,
and what blocks it. Validity (can it be stored?) and readiness (can it go live?) differ: a config naming a tool
that is still missing is valid, and runs with reduced functionality, but is not deployment ready until the tool
exists; nor is one whose secrets are missing from an environment's vault."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from chorus.agents.configs.models import BotConfig
from chorus.agents.configs.problems import CHECKS, CheckName, Problem, ValidationReport
from chorus.agents.configs.repository import StoredConfig, stamp
from chorus.agents.configs.validation import NAMESPACE, validate_config
from chorus.agents.knowledge.repository import KnowledgeRepository
from chorus.agents.secrets.references import referenced_names
from chorus.agents.secrets.repository import SecretRepository
from chorus.agents.storage.database import Database
from chorus.agents.tenancy.environments import ENVIRONMENTS
from chorus.agents.tools.registry import ToolRegistry

if TYPE_CHECKING:
    from chorus.agents.configs.service import ConfigService

CheckStatus = Literal["passed", "failed", "warning"]
_ISSUE_NUMBER = re.compile(r"(?:/issues/|#|^)(\d+)/?$")
_MAX_BLOCKERS_FROM_ERRORS = 20
_SCHEMA_CHECKS = ("json_schema_compliance", "required_fields_present")
_NOT_CHECKED = "not checked: the config must pass json_schema_compliance and required_fields_present first"


async def secret_names_per_environment(db: Database, tenant_id: str) -> dict[str, set[str]]:
    """The secret names a tool call can use in each environment: scoped to it, or unscoped."""
    return await SecretRepository(db).names_per_environment(tenant_id)


@dataclass(frozen=True)
class TenantFacts:
    """What validation needs to know about the tenant: its secrets per environment, and which of the knowledge
    namespaces the config names exist."""

    secrets: dict[str, set[str]] = field(default_factory=dict)
    namespaces: set[str] = field(default_factory=set)

    def any_environment(self) -> set[str]:
        return set().union(*self.secrets.values()) if self.secrets else set()


def _named_namespaces(raw: Any) -> list[str]:
    """The well-formed namespace names `raw` names (a malformed one is an error of its own, never looked up)."""
    knowledge = raw.get("knowledge") if isinstance(raw, dict) else None
    if not isinstance(knowledge, dict):
        return []
    named = knowledge.get("namespaces")
    names = [n for n in named if isinstance(n, str)] if isinstance(named, list) else []
    if isinstance(knowledge.get("faq_namespace"), str):
        names.append(knowledge["faq_namespace"])
    return sorted({n for n in names if NAMESPACE.match(n)})


async def tenant_facts(db: Database, tenant_id: str, raw: Any) -> TenantFacts:
    """The facts `raw` needs (no query for what it does not name)."""
    secrets = await secret_names_per_environment(db, tenant_id) if referenced_names(raw) else {}
    named = _named_namespaces(raw)
    namespaces = await KnowledgeRepository(db).existing_namespaces(tenant_id, named) if named else set()
    return TenantFacts(secrets=secrets, namespaces=namespaces)


@dataclass(frozen=True)
class Check:
    check: CheckName
    status: CheckStatus
    details: str | None = None
    errors: list[Problem] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"check": self.check, "status": self.status}
        if self.details:
            out["details"] = self.details
        if self.errors:
            out["errors"] = [p.to_dict() for p in self.errors]
        return {**out, **self.extra}


@dataclass(frozen=True)
class Blocker:
    """Something that keeps a valid config from going live, under the check it fails."""

    check: CheckName
    detail: str  # for the check: "Tool 'initiate_refund' not implemented"
    item: str  # for deployment_blocked_by: "Tool initiate_refund (GitHub issue #156)"


@dataclass(frozen=True)
class CheckReport:
    report: ValidationReport
    checks: list[Check]
    blocked_by: list[str]
    config_id: str | None = None
    version: int | None = None
    stored: bool | None = None  # for a config of the tenant: whether this version is stored, or only proposed

    @property
    def deployment_ready(self) -> bool:
        return self.report.valid and not self.blocked_by

    def to_dict(self) -> dict[str, Any]:
        out = {
            "config_id": self.config_id,
            "version": self.version,
            **self.report.to_dict(),
            "checks": [c.to_dict() for c in self.checks],
            "deployment_ready": self.deployment_ready,
            "deployment_blocked_by": self.blocked_by,
        }
        return out if self.stored is None else {**out, "stored": self.stored}


def _issue(reference: str | None, status: str) -> str:
    if not reference:
        return status
    found = _ISSUE_NUMBER.search(reference.strip())
    return f"GitHub issue #{found.group(1)}" if found else reference


def _dependency_blockers(cfg: BotConfig) -> list[Blocker]:
    blockers = [
        Blocker(
            "tool_dependencies_met",
            f"Tool '{t.tool_name}' not implemented ({t.status})",
            f"Tool {t.tool_name} ({_issue(t.github_issue, t.status)})",
        )
        for t in cfg.tools_available
        if t.status != "implemented"
    ]
    listed = {i.integration_name: i for i in cfg.integrations}
    for integration in cfg.integrations:
        if integration.status != "implemented":
            blockers.append(
                Blocker(
                    "integration_dependencies_met",
                    f"Integration '{integration.integration_name}' not configured ({integration.status})",
                    f"Integration {integration.integration_name} "
                    f"({_issue(integration.github_issue, integration.status)})",
                )
            )
    for needed in cfg.integrations_needed:
        if needed.integration_name not in listed:
            blockers.append(
                Blocker(
                    "integration_dependencies_met",
                    f"Integration '{needed.integration_name}' not configured (needed, not in integrations)",
                    f"Integration {needed.integration_name} (not configured)",
                )
            )
    return blockers


def _missing_secrets(raw: Any, facts: TenantFacts | None) -> dict[str, list[str]]:
    wanted = referenced_names(raw)
    if facts is None:
        return {}
    return {env: sorted(wanted - facts.secrets.get(env, set())) for env in ENVIRONMENTS}


def _credential_blockers(missing: dict[str, list[str]]) -> list[Blocker]:
    where: dict[str, list[str]] = {}
    for env, names in missing.items():
        for name in names:
            where.setdefault(name, []).append(env)
    return [
        Blocker(
            "credentials_present",
            f"Secret '{name}' missing in {', '.join(envs)}",
            f"Secret {name} (missing in {', '.join(envs)})",
        )
        for name, envs in sorted(where.items())
    ]


def _status(errors: list[Problem], warnings: list[Problem], blockers: list[Blocker]) -> CheckStatus:
    if errors or blockers:
        return "failed"
    return "warning" if warnings else "passed"


def _details(errors: list[Problem], warnings: list[Problem], blockers: list[Blocker]) -> str | None:
    parts = [b.detail for b in blockers]
    if errors:
        parts.append(f"{len(errors)} error(s): {errors[0].path}: {errors[0].message}")
    if warnings and not parts:
        more = f" (and {len(warnings) - 1} more)" if len(warnings) > 1 else ""
        parts.append(f"{warnings[0].path}: {warnings[0].message}{more}")
    return "; ".join(parts) or None


def check_report(
    report: ValidationReport,
    raw: Any,
    facts: TenantFacts | None,
    *,
    config_id: str | None = None,
    version: int | None = None,
    stored: bool | None = None,
) -> CheckReport:
    """The check list of a validated config `raw`; `facts` (the tenant's) add credentials per environment."""
    blockers = _dependency_blockers(report.parsed) if report.parsed else []
    missing = _missing_secrets(raw, facts)
    blockers += _credential_blockers(missing)
    checks = []
    for name in CHECKS:
        errors = [p for p in report.errors if p.check == name]
        warnings = [p for p in report.warnings if p.check == name]
        mine = [b for b in blockers if b.check == name]
        extra: dict[str, Any] = {"missing": missing} if name == "credentials_present" and missing else {}
        if report.parsed is None and name not in _SCHEMA_CHECKS and not errors:
            # The rules beyond the schema read the parsed config: "passed" would claim what was not looked at.
            checks.append(Check(name, "warning", _NOT_CHECKED, [], extra))
            continue
        details = _details(errors, warnings, mine)
        checks.append(Check(name, _status(errors, warnings, mine), details, errors, extra))
    blocked_by = [b.item for b in blockers]
    if not report.valid:
        shown = report.errors[:_MAX_BLOCKERS_FROM_ERRORS]
        blocked_by += [f"Invalid config at {p.path}: {p.message}" for p in shown]
        if len(report.errors) > len(shown):
            blocked_by.append(f"... and {len(report.errors) - len(shown)} more error(s)")
    return CheckReport(report, checks, blocked_by, config_id, version, stored)


async def _validated(
    db: Database, registry: ToolRegistry, tenant_id: str, raw: Any
) -> tuple[ValidationReport, TenantFacts]:
    facts = await tenant_facts(db, tenant_id, raw)
    report = validate_config(raw, registry=registry, secret_names=facts.any_environment(), namespaces=facts.namespaces)
    return report, facts


async def check_config(
    db: Database,
    registry: ToolRegistry,
    tenant_id: str,
    raw: Any,
    *,
    config_id: str | None = None,
    version: int | None = None,
    stored: bool | None = None,
) -> CheckReport:
    """Validate `raw` for the tenant (its vault, its knowledge) and list the checks. A secret counts as existing
    when some environment has it; one missing from another environment blocks deployment."""
    report, facts = await _validated(db, registry, tenant_id, raw)
    if config_id is None and isinstance(raw, dict) and isinstance(raw.get("config_metadata"), dict):
        named = raw["config_metadata"].get("config_id")
        config_id = named if isinstance(named, str) else None
    return check_report(report, raw, facts, config_id=config_id, version=version, stored=stored)


async def validate_next_version(service: ConfigService, tenant_id: str, current: StoredConfig, raw: Any) -> CheckReport:
    """`raw` checked as the next version of `current`, as it would be stored: under the config's own id (the
    body may name another), and of the same product type."""
    number = current.latest_version + 1
    as_stored = raw
    if isinstance(raw, dict) and isinstance(raw.get("config_metadata"), dict):
        as_stored = stamp(raw, current.key, number)
    report, facts = await _validated(service.repo.db, service.registry, tenant_id, as_stored)
    if report.parsed is not None and report.parsed.product_type != current.product_type:
        report.errors.append(
            Problem(
                "$.config_metadata.product_type",
                f"this config is a {current.product_type}; a new version cannot change product_type (give the "
                "other bot another config_id)",
            )
        )
        report.config = None
    return check_report(report, as_stored, facts, config_id=current.key, version=number, stored=False)
