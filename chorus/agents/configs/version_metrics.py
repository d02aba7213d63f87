"""Live metrics per config version, side by side: turns, errors, conversations and escalations, latency p50 and
p95, tokens and cost. Read from the runs themselves (each run records the version that executed it), so every
process and the rollout monitor see the same figures.

A turn is a run that ended (success, error or timeout; a cancelled run is not counted). Its latency is from
the moment it was accepted to the moment it ended, as the user waited for it. Cost uses genai-prices' public
price table; a model it does not know (the offline model, a private deployment) costs nothing and is named
in `unpriced_models`."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from genai_prices import Usage, calc_price

from chorus.agents.storage.database import Database
from chorus.agents.tenancy.environments import Environment

log = logging.getLogger(__name__)


@dataclass
class VersionMetrics:
    version: int
    turns: int = 0
    errors: int = 0
    conversations: int = 0
    escalations: int = 0
    latency_p50_ms: float | None = None
    latency_p95_ms: float | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: Decimal = Decimal(0)
    unpriced_models: list[str] = field(default_factory=list)

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.turns if self.turns else None

    @property
    def escalation_rate(self) -> float | None:
        return self.escalations / self.conversations if self.conversations else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "turns": self.turns,
            "errors": self.errors,
            "error_rate": self.error_rate,
            "conversations": self.conversations,
            "escalations": self.escalations,
            "escalation_rate": self.escalation_rate,
            "latency_ms": {"p50": self.latency_p50_ms, "p95": self.latency_p95_ms},
            "tokens": {"input": self.input_tokens, "output": self.output_tokens},
            "cost_usd": float(round(self.cost_usd, 6)),
            "unpriced_models": self.unpriced_models,
        }


_RUNS = (
    "SELECT r.config_version AS version,"
    " count(*) AS turns,"
    " count(*) FILTER (WHERE r.status IN ('error', 'timeout')) AS errors,"
    " count(DISTINCT r.thread_id) AS conversations,"
    " count(DISTINCT r.thread_id) FILTER (WHERE t.metadata->>'escalated' = 'true') AS escalations,"
    " percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM r.updated_at - r.created_at) * 1000)"
    "   FILTER (WHERE r.status = 'success') AS p50,"
    " percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM r.updated_at - r.created_at) * 1000)"
    "   FILTER (WHERE r.status = 'success') AS p95"
    " FROM runs r LEFT JOIN threads t ON t.thread_id = r.thread_id"
    " WHERE r.tenant_id = %s AND r.assistant_id = %s AND r.config_version = ANY(%s) AND r.created_at >= %s"
    " AND r.status IN ('success', 'error', 'timeout'){env}"
    " GROUP BY r.config_version"
)
_TOKENS = (
    "SELECT r.config_version AS version, u.model, sum(u.input_tokens) AS input, sum(u.output_tokens) AS output"
    " FROM token_usage u JOIN runs r ON r.run_id = u.run_id"
    " WHERE r.tenant_id = %s AND r.assistant_id = %s AND r.config_version = ANY(%s) AND r.created_at >= %s{env}"
    " GROUP BY r.config_version, u.model"
)


def price(model: str, input_tokens: int, output_tokens: int) -> Decimal | None:
    """What the tokens cost at the model's public price; None for a model the price table does not know."""
    try:
        found = calc_price(Usage(input_tokens=input_tokens, output_tokens=output_tokens), model_ref=model)
    except LookupError:
        return None
    return found.total_price


async def version_metrics(
    db: Database,
    *,
    tenant_id: str,
    config_id: str,
    versions: list[int],
    since: datetime,
    environment: Environment | None = None,
) -> dict[int, VersionMetrics]:
    """Metrics of each of `versions` over the runs accepted since `since` (in `environment` only, if given)."""
    out = {v: VersionMetrics(v) for v in versions}
    env = " AND r.environment = %s" if environment else ""
    params: list[Any] = [tenant_id, config_id, versions, since, *([environment] if environment else [])]
    async with db.connection() as conn:
        cur = await conn.execute(_RUNS.format(env=env), params)
        for row in await cur.fetchall():
            m = out[row["version"]]
            m.turns, m.errors = int(row["turns"]), int(row["errors"])
            m.conversations, m.escalations = int(row["conversations"]), int(row["escalations"])
            m.latency_p50_ms = round(float(row["p50"]), 1) if row["p50"] is not None else None
            m.latency_p95_ms = round(float(row["p95"]), 1) if row["p95"] is not None else None
        cur = await conn.execute(_TOKENS.format(env=env), params)
        for row in await cur.fetchall():
            m = out[row["version"]]
            tokens_in, tokens_out = int(row["input"] or 0), int(row["output"] or 0)
            m.input_tokens += tokens_in
            m.output_tokens += tokens_out
            cost = price(row["model"], tokens_in, tokens_out)
            if cost is None:
                m.unpriced_models.append(row["model"])
            else:
                m.cost_usd += cost
    return out
