"""Prometheus metrics: runs, turn latency, tokens, tool calls and tool errors, webhook attempts."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

RUNS = Counter("chorus_runs_total", "Runs finished, by status.", ["status"], registry=REGISTRY)
TURN_LATENCY = Histogram(
    "chorus_turn_latency_seconds",
    "Wall time of one run (a turn), from start to final state.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
    registry=REGISTRY,
)
FIRST_TOKEN = Histogram(
    "chorus_first_token_seconds",
    "Time from run start to the first streamed token.",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
    registry=REGISTRY,
)
TOKENS = Counter(
    "chorus_tokens_total",
    "Model tokens, by tenant, model and direction.",
    ["tenant", "model", "direction"],
    registry=REGISTRY,
)
TOOL_CALLS = Counter(
    "chorus_tool_calls_total",
    "Tool invocations, by tool and outcome.",
    ["tool", "outcome"],
    registry=REGISTRY,
)
TOOL_CALLS_NOT_REPEATED = Counter(
    "chorus_tool_calls_not_repeated_total",
    "Side-effecting tool calls seen again (a resumed run) and not run again: the recorded result reused,"
    " or the outcome unknown because the earlier attempt was interrupted; by tool and outcome.",
    ["tool", "outcome"],
    registry=REGISTRY,
)
WEBHOOK_ATTEMPTS = Counter(
    "chorus_webhook_attempts_total",
    "Run webhook delivery attempts, by outcome: delivered, retried (a later attempt follows), failed.",
    ["outcome"],
    registry=REGISTRY,
)
TOOL_ERRORS = Counter("chorus_tool_errors_total", "Tool invocations that failed, by tool.", ["tool"], registry=REGISTRY)
ESCALATIONS = Counter(
    "chorus_escalations_total", "Conversations handed to a human, by trigger.", ["trigger"], registry=REGISTRY
)
HTTP_REQUESTS = Counter(
    "chorus_http_requests_total",
    "HTTP requests, by method, route and status.",
    ["method", "route", "status"],
    registry=REGISTRY,
)
