"""The `circular_dependencies` rules. A bot config has no steps or rules that name each other (escalation
triggers name an action, not another trigger), so the loops it can express are these: a model that falls back
to itself, a SIP trunk that fails over to itself, and a voicebot that transfers calls to its own number."""

from __future__ import annotations

from chorus.agents.configs.models import BotConfig
from chorus.agents.configs.problems import CheckName, Problem

_CHECK: CheckName = "circular_dependencies"


def _digits(phone: str) -> str:
    return phone.lstrip("+")


def cycle_problems(cfg: BotConfig) -> list[Problem]:
    problems: list[Problem] = []
    llm = cfg.llm_config
    chain = [(llm.provider, llm.model, llm.base_url)]
    listed = isinstance(llm.fallback, list)
    for j, fb in enumerate(llm.fallbacks()):
        path = f"$.llm_config.fallback[{j}]" if listed else "$.llm_config.fallback"
        step = (fb.provider, fb.model, fb.base_url)
        if step in chain:
            what = "the primary model" if chain.index(step) == 0 else f"fallback {chain.index(step) - 1}"
            problems.append(
                Problem(
                    path,
                    f"falls back to {fb.provider}/{fb.model}, which is {what} again: a failing model would be "
                    "retried instead of replaced; name another model, or remove this fallback",
                    _CHECK,
                )
            )
        chain.append(step)

    sip = cfg.sip_config
    own = {_digits(n) for n in (sip.primary_endpoint, sip.failover_endpoint) if n} if sip else set()
    if sip and sip.failover_endpoint and _digits(sip.failover_endpoint) == _digits(sip.primary_endpoint):
        problems.append(
            Problem(
                "$.sip_config.failover_endpoint",
                "fails over to the primary endpoint itself: give another number, or remove the failover",
                _CHECK,
            )
        )
    transfer = cfg.workflow_features.call_transfer
    if transfer and transfer.enabled:
        for k, dest in enumerate(transfer.transfer_destinations):
            if _digits(dest.phone) in own:
                problems.append(
                    Problem(
                        f"$.workflow_features.call_transfer.transfer_destinations[{k}].phone",
                        f"'{dest.name}' is this bot's own number: a transfer would ring the bot again, in a loop; "
                        "transfer to a person's or a team's number",
                        _CHECK,
                    )
                )
    return problems
