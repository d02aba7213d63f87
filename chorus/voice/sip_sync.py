"""`chorus sip sync`: a voicebot config's SIP objects on a LiveKit server, made to match the config: the inbound
trunk (its numbers), the dispatch rule (a room per call, dispatched to the worker with the config named in its
metadata), and the outbound trunks of the primary and failover providers. Idempotent: each object carries a
tag in its metadata (tenant, config, role) by which the next run finds it; a run changes only what differs."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from livekit import api
from livekit.protocol import agent_dispatch, room, sip

from chorus.agents.configs.models import BotConfig
from chorus.agents.configs.repository import ConfigRepository
from chorus.agents.errors import BadRequest, NotFound
from chorus.agents.secrets.service import SecretVault
from chorus.agents.storage.database import Database
from chorus.agents.tools.registry import ToolContext

AGENT_NAME = "chorus-voicebot"  # the worker's agent name (chorus/voice/worker.py registers it)
TAG = "chorus"  # the metadata key holding an object's identity
Role = Literal["inbound", "dispatch", "primary", "failover"]
Action = Literal["create", "update", "delete", "unchanged"]
KIND = {
    "inbound": "inbound trunk",
    "dispatch": "dispatch rule",
    "primary": "outbound trunk (primary)",
    "failover": "outbound trunk (failover)",
}


@dataclass(frozen=True)
class TrunkCredentials:
    """Where and how an outbound trunk reaches its SIP provider (from the tenant's vault)."""

    address: str
    username: str = ""
    password: str = field(default="", repr=False)

    def fingerprint(self) -> str:
        """Stands for the credentials in the trunk's metadata, so a rotated password is seen as a change
        without LiveKit having to hand the password back (and without it ever being printed)."""
        return hashlib.sha256(f"{self.username}\0{self.password}".encode()).hexdigest()[:16]


def secret_names(provider: str) -> tuple[str, str, str]:
    """The vault names of a provider's SIP address, username and password: SIP_TWILIO_ADDRESS, …"""
    stem = "SIP_" + re.sub(r"[^A-Z0-9]+", "_", provider.upper()).strip("_")
    return f"{stem}_ADDRESS", f"{stem}_USERNAME", f"{stem}_PASSWORD"


async def provider_credentials(db: Database, vault: SecretVault, tenant_id: str, provider: str) -> TrunkCredentials:
    """A provider's outbound trunk settings from the tenant's vault (production scope). The address is required;
    username and password are optional (a provider may authenticate LiveKit by IP instead)."""
    ctx = ToolContext(tenant_id=tenant_id, db=db, environment="production", secrets=vault)
    address_name, user_name, password_name = secret_names(provider)

    async def reveal(name: str) -> str | None:
        try:
            return await vault.reveal(ctx, name, tool_name="sip:sync")
        except NotFound:
            return None

    address = await reveal(address_name)
    if not address:
        raise BadRequest(
            f"the {provider} outbound trunk needs its SIP address in the tenant's vault: "
            f"`chorus secrets set {address_name}` (e.g. example.pstn.twilio.com), and {user_name} / "
            f"{password_name} if {provider} authenticates with a username and password"
        )
    return TrunkCredentials(address, await reveal(user_name) or "", await reveal(password_name) or "")


@dataclass
class DesiredSip:
    """What the config asks of LiveKit. `outbound` maps primary/failover to (provider, caller number, creds)."""

    tenant_id: str
    config_key: str
    inbound_numbers: list[str]
    room_prefix: str
    outbound: dict[Role, tuple[str, str, TrunkCredentials]]

    def tag(self, role: Role) -> dict[str, str]:
        return {"tenant_id": self.tenant_id, "config_id": self.config_key, "role": role}

    def name(self, role: Role) -> str:
        return f"chorus:{self.config_key}:{'outbound:' + role if role in ('primary', 'failover') else role}"

    def metadata(self, role: Role, **extra: str) -> str:
        return json.dumps({TAG: self.tag(role), **extra}, sort_keys=True)


def outbound_providers(cfg: BotConfig) -> dict[Role, tuple[str, str]]:
    """primary/failover → (provider, the number calls come from) for a config that makes outbound calls."""
    sc = cfg.sip_config
    if sc is None or not sc.outbound_calls_enabled:
        return {}
    out: dict[Role, tuple[str, str]] = {"primary": (sc.primary_provider, sc.primary_endpoint)}
    if sc.failover_provider:
        out["failover"] = (sc.failover_provider, sc.failover_endpoint or sc.primary_endpoint)
    return out


def desired_sip(
    cfg: BotConfig, *, tenant_id: str, config_key: str, credentials: dict[str, TrunkCredentials]
) -> DesiredSip:
    """The objects `cfg` asks for; `credentials` holds every provider `outbound_providers(cfg)` names."""
    if cfg.config_metadata.product_type != "voicebot":
        raise BadRequest(f"config {config_key!r} is a {cfg.config_metadata.product_type}: only a voicebot has SIP")
    sc = cfg.sip_config
    if sc is None:
        raise BadRequest(f"config {config_key!r} has no sip_config: add its primary_provider and primary_endpoint")
    inbound = [n for n in (sc.primary_endpoint, sc.failover_endpoint) if n] if sc.inbound_calls_enabled else []
    prefix = (cfg.livekit_config.room_prefix if cfg.livekit_config else None) or config_key
    outbound = {
        role: (provider, number, credentials[provider]) for role, (provider, number) in outbound_providers(cfg).items()
    }
    return DesiredSip(tenant_id, config_key, list(dict.fromkeys(inbound)), prefix, outbound)


@dataclass
class Change:
    action: Action
    role: Role
    name: str
    object_id: str | None = None
    details: list[str] = field(default_factory=list)

    def describe(self) -> str:
        what = f"{self.action} {KIND[self.role]} {self.name}"
        if self.object_id:
            what += f" ({self.object_id})"
        return what + (": " + "; ".join(self.details) if self.details else "")


def _tag_of(metadata: str) -> dict[str, Any] | None:
    try:
        data = json.loads(metadata) if metadata else None
    except ValueError:
        return None
    tag = data.get(TAG) if isinstance(data, dict) else None
    return tag if isinstance(tag, dict) else None


def _ours(items: Any, desired: DesiredSip, role: Role) -> Any | None:
    """The first object tagged as this config's `role` (objects of other configs and hand-made ones are left
    alone)."""
    want = desired.tag(role)
    return next((item for item in items if _tag_of(item.metadata) == want), None)


def _diff(fields: dict[str, tuple[Any, Any]]) -> list[str]:
    """Human-readable differences of (current, desired) pairs; credentials are named, never shown."""
    out = []
    for label, (current, wanted) in fields.items():
        if current == wanted:
            continue
        if label == "credentials":
            out.append("credentials changed")
        elif isinstance(wanted, list):
            out.append(f"{label} {', '.join(current) or '(none)'} → {', '.join(wanted) or '(none)'}")
        else:
            out.append(f"{label} changed")
    return out


class SipSync:
    """One sync run. `changes` lists what was done (or, dry, what would be), in order, also after a failure
    part way: the caller can say exactly what was left half-done."""

    def __init__(self, lk: api.LiveKitAPI, desired: DesiredSip, *, dry_run: bool = False) -> None:
        self.lk = lk
        self.desired = desired
        self.dry_run = dry_run
        self.changes: list[Change] = []
        self.attempting = ""  # what a failure interrupted

    async def run(self) -> list[Change]:
        inbound_id = await self._inbound()
        await self._dispatch_rule(inbound_id)
        self.attempting = "list the outbound trunks"
        listed = await self.lk.sip.list_outbound_trunk(sip.ListSIPOutboundTrunkRequest())
        for role in ("primary", "failover"):
            await self._outbound(role, listed.items)
        return self.changes

    async def _record(self, change: Change, act: Callable[[], Any] | None) -> Any:
        """Do `act` (unless dry or unchanged), then note the change as done."""
        result = None
        if act is not None and not self.dry_run:
            self.attempting = change.describe()
            result = await act()
            if change.object_id is None:
                change.object_id = getattr(result, "sip_trunk_id", None) or getattr(
                    result, "sip_dispatch_rule_id", None
                )
        self.changes.append(change)
        return result

    async def _inbound(self) -> str | None:
        d = self.desired
        self.attempting = "list the inbound trunks"
        listed = await self.lk.sip.list_inbound_trunk(sip.ListSIPInboundTrunkRequest())
        current = _ours(listed.items, d, "inbound")
        name = d.name("inbound")
        if not d.inbound_numbers:
            if current is not None:
                await self._record(
                    Change("delete", "inbound", name, current.sip_trunk_id, ["inbound_calls_enabled is false"]),
                    lambda: self.lk.sip.delete_trunk(sip.DeleteSIPTrunkRequest(sip_trunk_id=current.sip_trunk_id)),
                )
            return None
        want = sip.SIPInboundTrunkInfo(name=name, metadata=d.metadata("inbound"), numbers=d.inbound_numbers)
        if current is None:
            created = await self._record(
                Change("create", "inbound", name, details=[f"numbers {', '.join(d.inbound_numbers)}"]),
                lambda: self.lk.sip.create_inbound_trunk(sip.CreateSIPInboundTrunkRequest(trunk=want)),
            )
            return created.sip_trunk_id if created is not None else None
        details = _diff(
            {
                "numbers": (sorted(current.numbers), sorted(want.numbers)),
                "name": (current.name, want.name),
                "metadata": (current.metadata, want.metadata),
            }
        )
        trunk_id = str(current.sip_trunk_id)
        if details:
            # Replace only what the config decides; settings made by hand on the trunk stay as they are.
            replaced = sip.SIPInboundTrunkInfo()
            replaced.CopyFrom(current)
            del replaced.numbers[:]
            replaced.numbers.extend(want.numbers)
            replaced.name, replaced.metadata = want.name, want.metadata
            await self._record(
                Change("update", "inbound", name, trunk_id, details),
                lambda: self.lk.sip.update_inbound_trunk(trunk_id, replaced),
            )
        else:
            await self._record(Change("unchanged", "inbound", name, trunk_id), None)
        return trunk_id

    def _rule(self, inbound_id: str | None) -> sip.SIPDispatchRuleInfo:
        d = self.desired
        dispatch = agent_dispatch.RoomAgentDispatch(
            agent_name=AGENT_NAME,
            metadata=json.dumps({"tenant_id": d.tenant_id, "config_id": d.config_key, "direction": "inbound"}),
        )
        return sip.SIPDispatchRuleInfo(
            name=d.name("dispatch"),
            metadata=d.metadata("dispatch"),
            trunk_ids=[inbound_id] if inbound_id else [],
            rule=sip.SIPDispatchRule(
                dispatch_rule_individual=sip.SIPDispatchRuleIndividual(room_prefix=d.room_prefix + "-")
            ),
            room_config=room.RoomConfiguration(agents=[dispatch]),
        )

    async def _dispatch_rule(self, inbound_id: str | None) -> None:
        d = self.desired
        self.attempting = "list the dispatch rules"
        listed = await self.lk.sip.list_dispatch_rule(sip.ListSIPDispatchRuleRequest())
        current = _ours(listed.items, d, "dispatch")
        name = d.name("dispatch")
        if not d.inbound_numbers:
            if current is not None:
                rule_id = current.sip_dispatch_rule_id
                await self._record(
                    Change("delete", "dispatch", name, rule_id, ["inbound_calls_enabled is false"]),
                    lambda: self.lk.sip.delete_dispatch_rule(
                        sip.DeleteSIPDispatchRuleRequest(sip_dispatch_rule_id=rule_id)
                    ),
                )
            return
        want = self._rule(inbound_id)
        if current is None:
            await self._record(
                Change("create", "dispatch", name, details=[f"rooms {d.room_prefix}-…, agent {AGENT_NAME}"]),
                lambda: self.lk.sip.create_dispatch_rule(sip.CreateSIPDispatchRuleRequest(dispatch_rule=want)),
            )
            return
        if inbound_id is None:  # dry run: the trunk it will point at does not exist yet
            want.trunk_ids[:] = ["(new inbound trunk)"]
        details = _diff(
            {
                "trunks": (list(current.trunk_ids), list(want.trunk_ids)),
                "room prefix": (current.rule, want.rule),
                "agent dispatch": (current.room_config, want.room_config),
                "name": (current.name, want.name),
                "metadata": (current.metadata, want.metadata),
            }
        )
        rule_id = str(current.sip_dispatch_rule_id)
        if not details:
            await self._record(Change("unchanged", "dispatch", name, rule_id), None)
            return
        replaced = sip.SIPDispatchRuleInfo()
        replaced.CopyFrom(current)
        for attr in ("rule", "room_config"):
            getattr(replaced, attr).CopyFrom(getattr(want, attr))
        del replaced.trunk_ids[:]
        replaced.trunk_ids.extend(want.trunk_ids)
        replaced.name, replaced.metadata = want.name, want.metadata
        await self._record(
            Change("update", "dispatch", name, rule_id, details),
            lambda: self.lk.sip.update_dispatch_rule(rule_id, replaced),
        )

    async def _outbound(self, role: Role, items: Any) -> None:
        d = self.desired
        current = _ours(items, d, role)
        name = d.name(role)
        if role not in d.outbound:
            if current is not None:
                trunk_id = current.sip_trunk_id
                await self._record(
                    Change("delete", role, name, trunk_id, ["the config no longer makes outbound calls through it"]),
                    lambda: self.lk.sip.delete_trunk(sip.DeleteSIPTrunkRequest(sip_trunk_id=trunk_id)),
                )
            return
        provider, number, creds = d.outbound[role]
        want = sip.SIPOutboundTrunkInfo(
            name=name,
            metadata=d.metadata(role, provider=provider, credentials=creds.fingerprint()),
            address=creds.address,
            numbers=[number],
            auth_username=creds.username,
            auth_password=creds.password,
        )
        if current is None:
            await self._record(
                Change("create", role, name, details=[f"{provider} at {creds.address}, calling from {number}"]),
                lambda: self.lk.sip.create_outbound_trunk(sip.CreateSIPOutboundTrunkRequest(trunk=want)),
            )
            return
        current_tag = json.loads(current.metadata)
        details = _diff(
            {
                "numbers": (list(current.numbers), list(want.numbers)),
                "address": (current.address, want.address),
                "credentials": (current_tag.get("credentials"), creds.fingerprint()),
                "name": (current.name, want.name),
                "metadata": (current.metadata, want.metadata),
            }
        )
        trunk_id = str(current.sip_trunk_id)
        if not details:
            await self._record(Change("unchanged", role, name, trunk_id), None)
            return
        if "metadata changed" in details and len(details) > 1:
            details.remove("metadata changed")  # the credentials' fingerprint or the provider: said already
        replaced = sip.SIPOutboundTrunkInfo()
        replaced.CopyFrom(current)
        del replaced.numbers[:]
        replaced.numbers.extend(want.numbers)
        replaced.name, replaced.metadata, replaced.address = want.name, want.metadata, want.address
        replaced.auth_username, replaced.auth_password = want.auth_username, want.auth_password
        await self._record(
            Change("update", role, name, trunk_id, details),
            lambda: self.lk.sip.update_outbound_trunk(trunk_id, replaced),
        )


async def outbound_trunks(lk: api.LiveKitAPI, *, tenant_id: str, config_key: str) -> dict[Role, str]:
    """primary/failover → the outbound trunk id `chorus sip sync` made for this config."""
    listed = await lk.sip.list_outbound_trunk(sip.ListSIPOutboundTrunkRequest())
    found: dict[Role, str] = {}
    for item in listed.items:
        tag = _tag_of(item.metadata) or {}
        role = tag.get("role")
        if tag.get("tenant_id") == tenant_id and tag.get("config_id") == config_key and role in ("primary", "failover"):
            found.setdefault(role, item.sip_trunk_id)
    return found


def _config_file(ref: str) -> BotConfig | None:
    """The config in file `ref`, or None when `ref` does not name a file (then it is a stored config's id)."""
    path = Path(ref)
    if path.suffix != ".json" and not path.is_file():
        return None
    if not path.is_file():
        raise BadRequest(f"{ref}: no such file (give a voicebot config file or a stored config's id)")
    try:
        return BotConfig.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, OSError) as exc:
        raise BadRequest(f"{ref} is not a valid bot config: {exc} (check it with `chorus config validate`)") from None


async def load_voicebot(db: Database, tenant_id: str, ref: str) -> tuple[BotConfig, str, bool]:
    """The voicebot `ref` names: a config file (by its config_metadata.config_id) or a stored config of the
    tenant (its id or assistant id, at its latest version). Returns (config, config id, whether it is stored)."""
    cfg = await asyncio.to_thread(_config_file, ref)
    if cfg is None:
        found = await ConfigRepository(db).find(tenant_id, ref)
        return BotConfig.model_validate(found.config), found.key, True
    key = cfg.config_metadata.config_id
    if not key:
        raise BadRequest(f"{ref} has no config_metadata.config_id: give it one (its SIP objects are named by it)")
    stored = await ConfigRepository(db).find_by_key(tenant_id, key)
    return cfg, key, stored is not None
