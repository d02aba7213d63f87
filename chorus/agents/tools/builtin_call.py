"""Call-control tools of a voicebot's graph: `end_call` (always) and `transfer_call(destination)` (when
workflow_features.call_transfer is enabled with destinations).

They act on nothing themselves. The model calls them inside the graph like any tool; the tool checks its
argument and answers with a call action (`{"call_action": …}`) that the voice session reads from the graph's
tools step and carries out once the bot's answer has been spoken (chorus/voice/call_control.py). An unknown
destination is a tool error naming the allowed ones, so the model tells the caller it cannot: nothing is dialled.
Since they only describe an action, running one again after a crash is harmless: not side-effecting tools.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from chorus.agents.configs.models import BotConfig, TransferDestination
from chorus.agents.errors import ToolError
from chorus.agents.tools.registry import RegisteredTool, ToolContext, schema_from_signature

END_CALL = "end_call"
TRANSFER_CALL = "transfer_call"
CALL_TOOLS = (END_CALL, TRANSFER_CALL)
ACTION_KEY = "call_action"

END_CALL_DESCRIPTION = (
    "Hang up the phone call. Use it only once the caller is done and has said goodbye; say a short goodbye "
    "in the same answer, the call ends after it is spoken."
)


async def end_call(
    ctx: ToolContext,
    reason: Annotated[str, Field(description="Why the call ends, e.g. the caller said goodbye")] = "caller is done",
) -> dict[str, Any]:
    return {ACTION_KEY: END_CALL, "reason": reason, "note": "The call ends once your goodbye has been spoken."}


def _transfer_tool(destinations: list[TransferDestination]) -> RegisteredTool:
    names = [d.name for d in destinations]
    allowed = ", ".join(names)

    async def transfer_call(ctx: ToolContext, destination: str) -> dict[str, Any]:
        wanted = destination.strip()
        match = next((d for d in destinations if d.name.lower() == wanted.lower()), None)
        if match is None:
            raise ToolError(
                f"'{wanted[:60]}' is not a transfer destination of this line; the allowed ones are: {allowed}. "
                "Tell the caller you cannot transfer them there, and offer one of these if it fits."
            )
        return {
            ACTION_KEY: TRANSFER_CALL,
            "destination": match.name,
            "note": "The caller is transferred once your answer has been spoken: tell them briefly that you "
            "are transferring them now.",
        }

    description = (
        f"Transfer the phone call to a person. Destinations: {allowed}. Say in the same answer that you are "
        "transferring the caller; the transfer starts after it is spoken."
    )
    schema = schema_from_signature(transfer_call)
    schema["properties"]["destination"]["description"] = f"Who to transfer the caller to, one of: {allowed}"
    return RegisteredTool(TRANSFER_CALL, description, schema, transfer_call, side_effects=False)


def call_tools(cfg: BotConfig) -> dict[str, RegisteredTool]:
    """The call-control tools a config's graph offers: none for a chatbot."""
    if cfg.product_type != "voicebot":
        return {}
    tools = {
        END_CALL: RegisteredTool(
            END_CALL, END_CALL_DESCRIPTION, schema_from_signature(end_call), end_call, side_effects=False
        )
    }
    transfer = cfg.workflow_features.call_transfer
    if transfer is not None and transfer.enabled and transfer.transfer_destinations:
        tools[TRANSFER_CALL] = _transfer_tool(transfer.transfer_destinations)
    return tools
