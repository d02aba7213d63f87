"""Hot reload: what a deploy, promotion, rollback or overrides change in any process means for this one.

New conversations read what their environment serves from the database when they are pinned, so they get a
deployed version the moment its transaction commits, in every process. The change is also announced on
CONFIG_CHANNEL (Postgres NOTIFY, sent at commit); each process then compiles the versions the environment
now serves before the first conversation needs them, and tells the tenant's subscribers of
`GET /api/v1/configs/events` (an operator's dashboard) what changed."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from chorus.agents.configs.deployments_repository import DeploymentRepository
from chorus.agents.configs.environments import Serving
from chorus.agents.configs.repository import ConfigRepository
from chorus.agents.errors import NotFound
from chorus.agents.tenancy.environments import parse_environment

log = logging.getLogger(__name__)
_QUEUE_MAX = 100
# Compile a version as an environment serves it (the run engine's graph cache).
Warm = Callable[[str, str, Serving], Awaitable[object]]


class ConfigEvents:
    def __init__(self, configs: ConfigRepository, *, warm: Warm | None = None) -> None:
        self.configs = configs
        self.environments = DeploymentRepository(configs.db)
        self.warm = warm
        self._subscribers: dict[str, set[asyncio.Queue[dict[str, Any]]]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.received = 0  # announcements handled here (tests and the hot-reload benchmark read it)
        self.last_received_at: float | None = None

    def on_notification(self, payload: str) -> None:
        """A NOTIFY on CONFIG_CHANNEL (called in the listening task: the work goes to a task of its own)."""
        try:
            note = json.loads(payload)
        except ValueError:
            log.warning("ignored a malformed config announcement")
            return
        self.received += 1
        self.last_received_at = time.monotonic()
        task = asyncio.get_running_loop().create_task(self._handle(note))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _handle(self, note: dict[str, Any]) -> None:
        try:
            tenant_id, config_id = str(note["tenant_id"]), str(note["config_id"])
            environment = parse_environment(str(note["environment"]))
            config = await self.configs.get(tenant_id, config_id)
            state = await self.environments.state(tenant_id, config_id, environment)
        except NotFound:  # deleted meanwhile
            return
        except Exception:
            log.exception("could not read a config announcement's environment")
            return
        stable = state.stable(config.version) if state else config.version
        candidate = state.candidate_version if state else None
        revision = state.overrides_revision if state else 0
        event = {
            "event_type": "config_deployed",
            "config_id": config.key,
            "assistant_id": config.config_id,
            "product_type": config.product_type,
            "deployment_id": note.get("deployment_id"),
            "environment": environment,
            "version": stable,
            "candidate_version": candidate,
            "traffic_split": state.to_dict(config.version)["traffic_split"] if state else {"blue": 100, "green": 0},
            "overrides_revision": revision,
            "timestamp": datetime.now(UTC).isoformat(),
        }
        for queue in list(self._subscribers.get(tenant_id, ())):
            with contextlib.suppress(asyncio.QueueFull):  # a subscriber that does not read loses events
                queue.put_nowait(event)
        if self.warm is not None:
            for version in {stable, candidate} - {None}:
                assert version is not None
                try:
                    await self.warm(tenant_id, config_id, Serving(version, environment, revision))
                except Exception:
                    log.exception("could not compile version %s of %s ahead of its conversations", version, config_id)

    async def subscribe(self, tenant_id: str, *, keepalive_s: float = 15.0) -> AsyncIterator[dict[str, Any] | None]:
        """The tenant's config events from now on, until the caller stops iterating; None after `keepalive_s`
        without one (so a stream can show it is alive through proxies)."""
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(_QUEUE_MAX)
        self._subscribers.setdefault(tenant_id, set()).add(queue)
        try:
            while True:
                try:
                    yield await asyncio.wait_for(queue.get(), keepalive_s)
                except TimeoutError:
                    yield None
        finally:
            subscribers = self._subscribers.get(tenant_id, set())
            subscribers.discard(queue)
            if not subscribers:
                self._subscribers.pop(tenant_id, None)
