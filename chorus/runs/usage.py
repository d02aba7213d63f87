"""Token usage per run: a callback collects it from every model call; it is stored per run and tenant."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from langchain_core.callbacks import AsyncCallbackHandler
from langchain_core.messages import AIMessage
from langchain_core.outputs import ChatGeneration, LLMResult

from chorus.agents.observability.metrics import TOKENS
from chorus.agents.storage.database import Database


class UsageCollector(AsyncCallbackHandler):
    # Awaited in line: otherwise LangChain gathers every callback of this handler, one per streamed token
    # included (no-ops here), in a task of its own (measured: ~4% of a streaming server's CPU).
    run_inline = True

    def __init__(self) -> None:
        self.by_model: dict[str, list[int]] = defaultdict(lambda: [0, 0])

    async def on_llm_end(self, response: LLMResult, **kwargs: Any) -> None:
        for generations in response.generations:
            for gen in generations:
                if not isinstance(gen, ChatGeneration) or not isinstance(gen.message, AIMessage):
                    continue
                usage = gen.message.usage_metadata
                if not usage:
                    continue
                model = str(
                    gen.message.response_metadata.get("model_name")
                    or (response.llm_output or {}).get("model_name")
                    or "unknown"
                )
                self.by_model[model][0] += int(usage.get("input_tokens", 0))
                self.by_model[model][1] += int(usage.get("output_tokens", 0))

    async def store(self, db: Database, *, tenant_id: str, run_id: str, thread_id: str) -> None:
        if not self.by_model:
            return
        async with db.connection() as conn:
            for model, (tokens_in, tokens_out) in self.by_model.items():
                TOKENS.labels(tenant_id, model, "input").inc(tokens_in)
                TOKENS.labels(tenant_id, model, "output").inc(tokens_out)
                await conn.execute(
                    "INSERT INTO token_usage (tenant_id, run_id, thread_id, model, input_tokens, output_tokens)"
                    " VALUES (%s, %s, %s, %s, %s, %s)",
                    (tenant_id, run_id, thread_id, model, tokens_in, tokens_out),
                )
