"""The system prompt of a bot, built from its role, instructions, constraints and tone."""

from __future__ import annotations

from chorus.agents.configs.models import BotConfig


def build_system_prompt(cfg: BotConfig, *, tool_names: list[str]) -> str:
    sp = cfg.system_prompt
    lines = [f"Role: {sp.role.replace('_', ' ')}", "", sp.instructions.strip()]
    if sp.constraints:
        lines += ["", "Constraints:"] + [f"- {c}" for c in sp.constraints]
    if sp.tone:
        lines += ["", f"Tone: {sp.tone.replace('_', ' ')}"]
    if cfg.product_type == "voicebot":
        lines += [
            "",
            "You are speaking on the phone: answer in short spoken sentences, no lists or markdown.",
            "A caller turn starting with [dtmf] lists the keys they pressed on their phone's keypad.",
        ]
        if "transfer_call" in tool_names:
            lines.append("To hand the caller to a person, call transfer_call and say you are transferring them.")
        if "end_call" in tool_names:
            lines.append("When the caller is done and has said goodbye, say goodbye and call end_call.")
    if "knowledge_search" in tool_names or "faq_search" in tool_names:
        lines += [
            "",
            "For questions about policies, products or how things work, search the knowledge base first and answer "
            "only from what it returns, citing each source as [citation]. If it has nothing, say you don't know.",
        ]
    if "escalate_to_human" in tool_names:
        lines += ["", "If the customer asks for a person or cannot be helped, call escalate_to_human."]
    pii = cfg.workflow_features.pii_collection
    if pii and pii.enabled and pii.fields:
        lines += ["", f"Collect when relevant: {', '.join(pii.fields)}. Never repeat them back in full."]
    return "\n".join(lines)
