"""The vault's rules: names and values checked, values sealed per version, every touch audited.

`SecretVault` is also the `SecretResolver` tool calls use: `reveal` is the one place a plaintext value
leaves the vault, and only into a tool call of the same tenant. A secret is scoped to one environment or
to every environment (`environment=None`); a tool call in environment E uses the secret scoped to E if
there is one, else the unscoped one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from chorus.agents.errors import Conflict, InvalidInput, NotFound, SecretUndecryptable
from chorus.agents.secrets.crypto import VaultKey, associated_data, seal, unseal
from chorus.agents.secrets.environments import ENVIRONMENTS, environment_problem, scope_label
from chorus.agents.secrets.references import NAME_RULE, is_valid_name, referenced_names
from chorus.agents.secrets.repository import (
    Actor,
    AuditEvent,
    Sealer,
    SecretRecord,
    SecretRepository,
    SecretVersion,
)
from chorus.agents.tools.registry import ToolContext

MAX_VALUE_BYTES = 8192
MAX_DESCRIPTION_CHARS = 500


def name_problem(name: str) -> str | None:
    if is_valid_name(name):
        return None
    shown = name if len(name) <= 80 else name[:80] + "…"
    return f"invalid secret name {shown!r}: names are {NAME_RULE} (e.g. SHOP_API_KEY)"


def value_problem(value: str) -> str | None:
    if not value:
        return "the value is empty"
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:
        return "the value is not valid text: it contains an unpaired UTF-16 surrogate"
    if size > MAX_VALUE_BYTES:
        return f"the value is {size} bytes; the limit is {MAX_VALUE_BYTES}"
    if value != value.strip(" "):
        return "the value starts or ends with a space, which HTTP headers do not carry; remove it"
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        return (
            "the value contains a control character (newline, tab, NUL…); values are sent in HTTP headers, "
            "so encode binary or multi-line values (e.g. as base64)"
        )
    return None


def description_problem(description: str | None) -> str | None:
    if description is None:
        return None
    if len(description) > MAX_DESCRIPTION_CHARS:
        return f"the description is {len(description)} characters; the limit is {MAX_DESCRIPTION_CHARS}"
    try:
        description.encode("utf-8")
    except UnicodeEncodeError:
        return "the description is not valid text: it contains an unpaired UTF-16 surrogate"
    return None


def _check(problems: dict[str, str | None]) -> None:
    errors = [{"path": f"$.{path}", "message": msg} for path, msg in problems.items() if msg]
    if errors:
        raise InvalidInput("; ".join(e["message"] for e in errors), errors=errors)


def _known_environment(environment: str | None) -> None:
    _check({"environment": environment_problem(environment)})


def _known_name(name: str) -> None:
    """An invalid name can name no secret: answer exactly as for an unknown one."""
    if not is_valid_name(name):
        raise NotFound("no secret by that name; GET /api/v1/secrets lists this tenant's secrets")


@dataclass(frozen=True)
class Dependent:
    """A bot config whose versions reference a secret."""

    config_id: str
    config_name: str
    versions: list[int]
    latest_version: int

    @property
    def latest_uses_it(self) -> bool:
        return self.latest_version in self.versions


@dataclass(frozen=True)
class Described:
    record: SecretRecord
    versions: list[SecretVersion]
    decryptable: bool


@dataclass(frozen=True)
class Deleted:
    name: str
    environment: str | None
    versions_deleted: int
    dependents: list[Dependent] = field(default_factory=list)
    # The environments where tool calls no longer find the name (another scope may still serve the rest).
    environments_left_without: list[str] = field(default_factory=list)


def tool_actor(ctx: ToolContext, tool_name: str) -> Actor:
    label = f"run:{ctx.run_id}" if ctx.run_id else f"thread:{ctx.thread_id}" if ctx.thread_id else "tool:api"
    return Actor(label, ctx.thread_id, ctx.run_id, tool_name, ctx.tool_call_id, ctx.environment)


class SecretVault:
    def __init__(self, repo: SecretRepository, key: VaultKey) -> None:
        self.repo = repo
        self._key = key

    def _sealer(self, tenant_id: str, name: str, environment: str | None, value: str) -> Sealer:
        def sealer(version: int) -> tuple[bytes, bytes]:
            aad = associated_data(tenant_id=tenant_id, name=name, version=version, environment=environment)
            return seal(self._key, value, aad=aad)

        return sealer

    async def create(
        self,
        tenant_id: str,
        *,
        name: str,
        value: str,
        description: str | None,
        actor: Actor,
        environment: str | None = None,
    ) -> Described:
        _check(
            {
                "name": name_problem(name),
                "environment": environment_problem(environment),
                "value": value_problem(value),
                "description": description_problem(description),
            }
        )

        record = await self.repo.insert(
            tenant_id=tenant_id,
            name=name,
            environment=environment,
            description=description,
            seal=self._sealer(tenant_id, name, environment, value),
            key_id=self._key.key_id,
            actor=actor,
        )
        return await self._described(tenant_id, record)

    async def rotate(
        self,
        tenant_id: str,
        name: str,
        *,
        value: str,
        reason: str | None,
        actor: Actor,
        environment: str | None = None,
    ) -> Described:
        _known_environment(environment)
        _known_name(name)
        _check({"value": value_problem(value), "rotation_reason": description_problem(reason)})

        record = await self.repo.add_version(
            tenant_id=tenant_id,
            name=name,
            environment=environment,
            seal=self._sealer(tenant_id, name, environment, value),
            key_id=self._key.key_id,
            reason=reason,
            actor=actor,
        )
        return await self._described(tenant_id, record)

    async def list_secrets(self, tenant_id: str, actor: Actor) -> list[SecretRecord]:
        records = await self.repo.all(tenant_id)
        await self.repo.record(tenant_id, "*", "list", actor, environment=None)
        return records

    async def describe(self, tenant_id: str, name: str, actor: Actor, *, environment: str | None = None) -> Described:
        """A secret's metadata and versions (never its value); audited as a read."""
        _known_environment(environment)
        _known_name(name)
        record = await self.repo.get(tenant_id, name, environment)
        await self.repo.record(tenant_id, name, "read", actor, environment=environment, version=record.latest_version)
        return await self._described(tenant_id, record)

    async def _described(self, tenant_id: str, record: SecretRecord) -> Described:
        versions = await self.repo.versions(tenant_id, record.name, record.environment)
        latest = next((v for v in versions if v.version == record.latest_version), None)
        return Described(record, versions, decryptable=latest is not None and latest.key_id == self._key.key_id)

    async def dependents(self, tenant_id: str, name: str) -> list[Dependent]:
        rows = await self.repo.configs_mentioning(tenant_id, f"${{secret:{name}}}")
        found: dict[str, Dependent] = {}
        for row in rows:
            if name not in referenced_names(row["config"]):
                continue
            config_id = str(row["config_id"])
            entry = found.setdefault(config_id, Dependent(config_id, row["name"], [], row["latest_version"]))
            entry.versions.append(row["version"])
        return list(found.values())

    async def delete(
        self, tenant_id: str, name: str, *, force: bool, actor: Actor, environment: str | None = None
    ) -> Deleted:
        """Delete the secret of this name and scope. Refused while bot configs reference the name and some
        environment would be left without it (another scope of the name still serving it is no loss)."""
        _known_environment(environment)
        _known_name(name)
        await self.repo.get(tenant_id, name, environment)
        others = await self.repo.scopes(tenant_id, name) - {environment}
        lost: list[str]
        if None in others:  # the unscoped secret stays and serves every environment
            lost = []
        elif environment is None:
            lost = [str(e) for e in ENVIRONMENTS if e not in others]
        else:
            lost = [environment]
        dependents = await self.dependents(tenant_id, name) if lost else []
        listed = [{"config_id": d.config_id, "config_name": d.config_name, "versions": d.versions} for d in dependents]
        if dependents and not force:
            names = ", ".join(f"'{d.config_name}'" for d in dependents)
            where = " and ".join(lost)
            raise Conflict(
                f"secret '{name}' for {scope_label(environment)} is referenced by {len(dependents)} bot config(s): "
                f"{names}, and {where} would have no secret of that name; change them to stop using it, store "
                "it for those environments first, or delete anyway with ?force=true (their HTTP tools will then "
                "fail there until fixed)",
                extra={"dependent_configs": listed, "environments_left_without": lost},
            )
        detail = f"forced; referenced by {len(dependents)} config(s)" if dependents else None
        deleted = await self.repo.delete(tenant_id, name, environment, actor, detail=detail)
        return Deleted(name, environment, deleted, dependents, lost)

    async def audit(self, tenant_id: str, name: str, *, limit: int, environment: str | None = None) -> list[AuditEvent]:
        """The audit trail of a name and scope (kept after the secret is deleted); 404 when there is none."""
        _known_environment(environment)
        _known_name(name)
        events = await self.repo.audit_events(tenant_id, name, environment, limit=limit)
        if not events:
            await self.repo.get(tenant_id, name, environment)
        return events

    async def reveal(self, ctx: ToolContext, name: str, *, tool_name: str) -> str:
        actor = tool_actor(ctx, tool_name)
        environment = ctx.environment
        if not is_valid_name(name):
            raise NotFound(f"there is no secret named {name!r}")
        if environment not in ENVIRONMENTS:
            # A run's environment is set by the server, not typed by a user; still, never guess one.
            problem = environment_problem(environment)
            await self.repo.record(ctx.tenant_id, name, "use_failed", actor, environment=None, detail=problem)
            raise NotFound(f"no secret can be chosen for this call: {problem}")
        try:
            sealed = await self.repo.latest_sealed(ctx.tenant_id, name, environment=environment)
        except NotFound:
            await self.repo.record(
                ctx.tenant_id, name, "use_failed", actor, environment=None, detail=f"no such secret in {environment}"
            )
            raise NotFound(
                f"this tenant has no secret named '{name}' usable in {environment} (none scoped to {environment} "
                f"nor to every environment); create it with POST /api/v1/secrets"
            ) from None
        scope = f" for {sealed.environment}" if sealed.environment else ""
        try:
            value = unseal(
                self._key,
                nonce=sealed.nonce,
                ciphertext=sealed.ciphertext,
                aad=associated_data(
                    tenant_id=ctx.tenant_id, name=name, version=sealed.version, environment=sealed.environment
                ),
                sealed_by=sealed.key_id,
                what=f"secret '{name}'{scope} (version {sealed.version})",
            )
        except SecretUndecryptable as exc:
            await self.repo.record(
                ctx.tenant_id,
                name,
                "use_failed",
                actor,
                environment=sealed.environment,
                version=sealed.version,
                detail=exc.detail,
            )
            raise
        await self.repo.record(
            ctx.tenant_id, name, "use", actor, environment=sealed.environment, version=sealed.version
        )
        return value
