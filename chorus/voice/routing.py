"""Which voicebot answers a call, and at which version: from the job's dispatch metadata, else from the number
the caller dialed (the SIP participant's `sip.trunkPhoneNumber`) matched against the configs' sip_config. The
version is what production serves for that config (its deploys and rollouts), chosen once: the call is
pinned to it until it ends."""

from __future__ import annotations

import json
import logging
import re
import uuid
from dataclasses import dataclass
from typing import Any

from chorus.agents.configs.deployments_repository import DeploymentRepository
from chorus.agents.configs.environments import Serving, effective_config, serving
from chorus.agents.configs.models import BotConfig
from chorus.agents.configs.repository import ConfigRepository
from chorus.agents.errors import BadRequest, ChorusError, NotFound
from chorus.agents.storage.database import Database
from chorus.agents.tenancy.environments import DEFAULT_ENVIRONMENT

log = logging.getLogger(__name__)

SIP_DIALED = "sip.trunkPhoneNumber"  # the participant attribute LiveKit SIP sets to the number called


def is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


_E164 = re.compile(r"\+[1-9][0-9]{6,14}")  # whole (fullmatch), ASCII digits only


@dataclass(frozen=True)
class CallRoute:
    tenant_id: str
    assistant_id: str
    config_key: str
    serving: Serving
    config: BotConfig


class NoVoicebot(NotFound):
    """No voicebot answers this call (unknown number, missing or stale dispatch metadata)."""


def _metadata(raw: str | None) -> dict[str, Any]:
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        raise BadRequest(
            'the job\'s dispatch metadata is not JSON: expected {"tenant_id": …, "config_id": …}'
        ) from None
    if not isinstance(data, dict):
        raise BadRequest("the job's dispatch metadata must be a JSON object with tenant_id and config_id")
    return data


async def _by_number(db: Database, dialed: str) -> tuple[str, str]:
    """(tenant_id, assistant id) of the live voicebot whose current version lists `dialed` as its primary or
    failover endpoint. A number claimed by two bots answers no one: which one is meant cannot be told."""
    async with db.connection() as conn:
        cur = await conn.execute(
            "SELECT c.tenant_id, c.config_id FROM bot_configs c"
            " JOIN bot_config_versions v ON v.config_id = c.config_id AND v.version = c.latest_version"
            " WHERE c.deleted_at IS NULL AND c.product_type = 'voicebot'"
            " AND %s IN (v.config->'sip_config'->>'primary_endpoint', v.config->'sip_config'->>'failover_endpoint')"
            " LIMIT 2",
            (dialed,),
        )
        rows = await cur.fetchall()
    if not rows:
        raise NoVoicebot(f"no voicebot answers {dialed}: set it as a config's sip_config.primary_endpoint")
    if len(rows) > 1:
        raise NoVoicebot(f"{dialed} is claimed by more than one voicebot; give each number to one config")
    return str(rows[0]["tenant_id"]), str(rows[0]["config_id"])


async def route_call(db: Database, *, call_id: str, metadata: str | None, dialed: str | None) -> CallRoute:
    """The voicebot and version for a call. Raises NoVoicebot (or BadRequest for malformed metadata)."""
    meta = _metadata(metadata)
    configs = ConfigRepository(db)
    if meta.get("tenant_id") and meta.get("config_id"):
        if not is_uuid(str(meta["tenant_id"])):
            raise NoVoicebot(f"the dispatch's tenant_id {meta['tenant_id']!r} is not a tenant id")
        try:
            stored = await configs.find(str(meta["tenant_id"]), str(meta["config_id"]))
        except ChorusError:
            raise NoVoicebot(
                f"the dispatch names config {meta['config_id']!r}, which this tenant does not have"
            ) from None
    elif dialed:
        if not _E164.fullmatch(dialed):
            raise NoVoicebot(f"the dialed number {dialed!r} is not an E.164 number")
        tenant_id, assistant_id = await _by_number(db, dialed)
        stored = await configs.get(tenant_id, assistant_id)
    else:
        raise NoVoicebot("the call has neither dispatch metadata nor a dialed number (sip.trunkPhoneNumber)")
    if stored.product_type != "voicebot":
        raise NoVoicebot(f"config {stored.key!r} is a {stored.product_type}, not a voicebot")
    environments = DeploymentRepository(db)
    state = await environments.state(stored.tenant_id, stored.config_id, DEFAULT_ENVIRONMENT)
    chosen = serving(state, environment=DEFAULT_ENVIRONMENT, current=stored.version, thread_id=call_id)
    version = (
        stored
        if chosen.version == stored.version
        else await configs.get(stored.tenant_id, stored.config_id, chosen.version)
    )
    found = await environments.overrides(
        stored.tenant_id, stored.config_id, chosen.environment, chosen.overrides_revision
    )
    config = BotConfig.model_validate(effective_config(version.config, found.overrides if found else None))
    return CallRoute(stored.tenant_id, stored.config_id, stored.key, chosen, config)
