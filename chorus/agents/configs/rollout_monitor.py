"""Automatic rollback: every few seconds, each rollout in progress with `auto_rollback` has its new version's
error rate (and, if asked, escalation rate) over its window compared with its thresholds; past one, the
rollout is rolled back (new conversations go back to the stable version; those on the new version keep it).

Every process runs the monitor; the rollback itself happens under the environment's row lock and only while
the rollout is still in progress, so two processes never roll back twice. A rollout is judged only once its
window holds `min_turns` turns of the new version: two failures in the first three turns are not a verdict."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

from chorus.agents.configs.deployments import Deployed, Deployments
from chorus.agents.configs.deployments_repository import Deployment
from chorus.agents.configs.version_metrics import VersionMetrics, version_metrics
from chorus.agents.errors import ChorusError

log = logging.getLogger(__name__)
CHECK_EVERY_S = 5.0


def verdict(deployment: Deployment, metrics: VersionMetrics) -> str | None:
    """Why the rollout must be rolled back, or None."""
    if metrics.turns < deployment.min_turns:
        return None
    window = f"over the last {deployment.window_seconds} s"
    error_rate, limit = metrics.error_rate, deployment.rollback_on_error_rate
    if error_rate is not None and limit is not None and error_rate > limit:
        return (
            f"automatic: version {deployment.version}'s error rate {error_rate:.1%} ({metrics.errors} of "
            f"{metrics.turns} turns) {window} is above {limit:.1%}"
        )
    escalation_rate, limit = metrics.escalation_rate, deployment.rollback_on_escalation_rate
    if escalation_rate is not None and limit is not None and escalation_rate > limit:
        return (
            f"automatic: version {deployment.version}'s escalation rate {escalation_rate:.1%} "
            f"({metrics.escalations} of {metrics.conversations} conversations) {window} is above {limit:.1%}"
        )
    return None


class RolloutMonitor:
    def __init__(self, deployments: Deployments, *, every_s: float = CHECK_EVERY_S) -> None:
        self.deployments = deployments
        self.every_s = every_s

    async def check_once(self) -> list[Deployed]:
        """Judge every rollout in progress; the rollouts rolled back."""
        rolled: list[Deployed] = []
        now = datetime.now(UTC)
        async for deployment in self.deployments.repo.rolling_out():
            try:  # one rollout that cannot be judged (its config purged meanwhile) never stops the others
                done = await self._judge(deployment, now)
            except ChorusError as exc:
                log.warning("could not judge rollout %s: %s", deployment.deployment_id, exc.detail)
                continue
            if done is not None:
                rolled.append(done)
        return rolled

    async def _judge(self, deployment: Deployment, now: datetime) -> Deployed | None:
        since = max(deployment.created_at, now - timedelta(seconds=deployment.window_seconds))
        metrics = await version_metrics(
            self.deployments.service.repo.db,
            tenant_id=deployment.tenant_id,
            config_id=deployment.config_id,
            versions=[deployment.version],
            since=since,
            environment=deployment.environment,
        )
        reason = verdict(deployment, metrics[deployment.version])
        if reason is None:
            return None
        done = await self.deployments.auto_rollback(deployment, reason)
        if done is not None:
            log.warning("rolled back deployment %s: %s", deployment.deployment_id, reason)
        return done

    async def run_forever(self) -> None:
        while True:
            await asyncio.sleep(self.every_s)
            try:
                await self.check_once()
            except Exception:  # the database away, say: the next check tries again
                log.exception("the rollout monitor's check failed")
