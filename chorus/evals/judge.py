"""The LLM judge of the judged metrics: a configured chat model at temperature 0 that answers each step of a
metric with one JSON object of a fixed pydantic schema (statements, or one verdict per item). It never gives
a score: the metrics compute theirs from its verdicts (chorus/evals/metrics_judged.py).

Each call has a hard timeout; an answer that is not valid JSON of the step's schema (or has the wrong number
of verdicts) is asked for again, up to `max_retries` times, then the metric errors with the reason. Valid
answers are kept in Postgres (chorus/evals/judge_cache.py), keyed by every input, so a rerun asks nothing;
identical calls in flight at once in one execution share one model call."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from typing import Any, Literal, TypeVar

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from chorus.agents.configs.models import LlmConfig, LlmParameters
from chorus.agents.configs.urls import url_problem
from chorus.agents.destinations import literal_problem
from chorus.agents.errors import ChorusError, DatabaseUnavailable, ServerBusy
from chorus.agents.providers.factory import ChatRunnable, build_chat_model
from chorus.agents.secrets.service import name_problem
from chorus.agents.tenancy.environments import DEFAULT_ENVIRONMENT
from chorus.agents.tools.registry import SecretResolver, ToolContext
from chorus.evals.judge_cache import JudgeCache

# Bump when a prompt or the system message changes: the cache key holds it, so old answers are not reused.
PROMPT_VERSION = "1"
SYSTEM = (
    "You are a strict, impartial evaluation judge. Follow the instructions exactly. Answer with exactly one "
    "JSON object that matches this JSON Schema, and nothing else (no prose, no code fences):\n{schema}"
)


class JudgeConfig(BaseModel):
    """The suite's judge (evaluator_config.judge): any chat model Chorus can build for a bot, except the offline
    model, which cannot judge. Its key: the tenant's vault secret `api_key_secret`; without one, the server's
    key of the provider (OPENAI_API_KEY, ANTHROPIC_API_KEY) as a bot's, but only towards the provider's own
    endpoint: a judge with a `base_url` gets no server key (a suite must not send it to a URL it chose)."""

    model_config = ConfigDict(extra="forbid")
    provider: Literal["openai", "openai_compatible", "anthropic"]
    model: str = Field(min_length=1, max_length=200)
    base_url: str | None = Field(default=None, max_length=2000, description="for OpenAI-compatible servers")
    api_key_secret: str | None = Field(
        default=None, max_length=128, description="the tenant's vault secret holding the judge's key"
    )
    timeout_seconds: float = Field(default=60, gt=0, le=600, description="hard limit of one judge call")
    max_retries: int = Field(default=2, ge=0, le=10, description="asks again after an invalid answer")

    @field_validator("provider", mode="before")
    @classmethod
    def _provider(cls, value: Any) -> Any:
        if value == "offline":
            raise ValueError(
                "the offline model cannot judge (it does not read what it is asked); configure a real chat "
                "model as judge (openai, openai_compatible or anthropic), or remove `judge` to report the "
                "judged metrics as skipped"
            )
        if value not in ("openai", "openai_compatible", "anthropic"):
            raise ValueError(f"unknown judge provider '{value}'; choose openai, openai_compatible or anthropic")
        return value

    @field_validator("api_key_secret")
    @classmethod
    def _secret_name(cls, value: str | None) -> str | None:
        if value is not None and (problem := name_problem(value)):
            raise ValueError(f"api_key_secret: {problem}")
        return value

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and (problem := url_problem(value)):
            raise ValueError(problem)
        if value is not None and (problem := literal_problem(value, who="the judge's base_url", private_ok=True)):
            raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _needs_url(self) -> JudgeConfig:
        if self.provider == "openai_compatible" and not self.base_url:
            raise ValueError("provider openai_compatible needs base_url (the server's /v1 URL)")
        return self

    @property
    def name(self) -> str:
        return f"{self.provider}/{self.model}"


class Statements(BaseModel):
    """A step that lists things found in a text (statements, claims, intentions, criteria)."""

    statements: list[str] = Field(max_length=200)


class Verdict(BaseModel):
    verdict: Literal["yes", "no", "idk"]
    reason: str = ""


class Verdicts(BaseModel):
    """A step that gives one verdict per numbered item, in order."""

    verdicts: list[Verdict] = Field(max_length=200)


Answer = TypeVar("Answer", Statements, Verdicts)


class JudgeFailed(Exception):
    """The judge gave no usable answer (timeout, invalid after retries, provider error): the metric errors."""


def _text(message: BaseMessage) -> str:
    content = message.content
    if isinstance(content, str):
        return content
    return "".join(p.get("text", "") if isinstance(p, dict) else str(p) for p in content)


def _json_part(text: str) -> str:
    """The JSON object in an answer (models wrap it in code fences or a sentence despite being asked not to)."""
    text = re.sub(r"^```(?:json)?\s*|\s*```$", "", text.strip())
    start, end = text.find("{"), text.rfind("}")
    return text[start : end + 1] if start != -1 and end > start else text


class Judge:
    """One execution's judge: the model (built on the first call that the cache cannot answer), the cache and
    the calls in flight. `model_calls` counts the calls made to the model (each retry is one)."""

    def __init__(
        self,
        config: JudgeConfig,
        *,
        tenant_id: str,
        cache: JudgeCache | None,
        secrets: SecretResolver | None = None,
        model: ChatRunnable | None = None,
    ) -> None:
        self.config = config
        self.tenant_id = tenant_id
        self.cache = cache
        self.secrets = secrets
        self._model = model
        self._building = asyncio.Lock()
        self._inflight: dict[str, asyncio.Task[dict[str, Any]]] = {}
        self.model_calls = 0
        self.cache_hits = 0

    def key(self, *, metric: str, step: str, prompt: str, schema: type[BaseModel]) -> str:
        """The cache key: a SHA-256 of every input that can change the judge's answer."""
        parts = {
            "prompt_version": PROMPT_VERSION,
            "metric": metric,
            "step": step,
            "schema": schema.model_json_schema(),
            "system": SYSTEM,
            "provider": self.config.provider,
            "model": self.config.model,
            "base_url": self.config.base_url,
            "temperature": 0,
            "prompt": prompt,
        }
        return hashlib.sha256(json.dumps(parts, sort_keys=True, ensure_ascii=False).encode()).hexdigest()

    async def statements(self, *, metric: str, step: str, prompt: str) -> list[str]:
        answer = await self._ask(metric=metric, step=step, prompt=prompt, schema=Statements, count=None)
        return [s.strip() for s in answer.statements if s.strip()]

    async def verdicts(self, *, metric: str, step: str, prompt: str, items: list[str]) -> list[Verdict]:
        """One verdict per item (numbered in the prompt), in order."""
        numbered = "\n".join(f"{i}. {item}" for i, item in enumerate(items, 1))
        text = (
            f"{prompt}\n\nThe {len(items)} numbered items:\n{numbered}\n\nGive exactly {len(items)} verdicts, in order."
        )
        answer = await self._ask(metric=metric, step=step, prompt=text, schema=Verdicts, count=len(items))
        return answer.verdicts

    async def _ask(self, *, metric: str, step: str, prompt: str, schema: type[Answer], count: int | None) -> Answer:
        key = self.key(metric=metric, step=step, prompt=prompt, schema=schema)
        task = self._inflight.get(key)
        if task is None:
            task = asyncio.ensure_future(
                self._answer(key, metric=metric, step=step, prompt=prompt, schema=schema, count=count)
            )
            self._inflight[key] = task
            task.add_done_callback(lambda _t: self._inflight.pop(key, None))
        return schema.model_validate(await asyncio.shield(task))

    async def _answer(
        self, key: str, *, metric: str, step: str, prompt: str, schema: type[Answer], count: int | None
    ) -> dict[str, Any]:
        if self.cache is not None:
            cached = await self.cache.get(self.tenant_id, key)
            if cached is not None:
                self.cache_hits += 1
                return cached
        model = await self._build()
        messages: list[BaseMessage] = [
            SystemMessage(SYSTEM.format(schema=json.dumps(schema.model_json_schema()))),
            HumanMessage(prompt),
        ]
        problem = ""
        for _attempt in range(self.config.max_retries + 1):
            self.model_calls += 1
            try:
                reply = await asyncio.wait_for(model.ainvoke(messages), self.config.timeout_seconds)
            except TimeoutError:
                raise JudgeFailed(
                    f"the judge {self.config.name} did not answer within timeout_seconds "
                    f"({self.config.timeout_seconds:g} s)"
                ) from None
            except Exception as exc:  # the provider's own error (after its client's retries)
                raise JudgeFailed(f"the judge {self.config.name} failed: {type(exc).__name__}: {exc}") from None
            text = _text(reply)
            try:
                answer = schema.model_validate_json(_json_part(text))
            except ValidationError as exc:
                problem = f"not valid JSON of the {schema.__name__} schema ({exc.errors()[0]['msg']})"
            else:
                got = len(answer.verdicts) if isinstance(answer, Verdicts) else None
                if count is None or got == count:
                    dumped = answer.model_dump()
                    if self.cache is not None:
                        await self.cache.put(
                            self.tenant_id, key, metric=metric, step=step, judge_model=self.config.name, answer=dumped
                        )
                    return dumped
                problem = f"{got} verdicts for {count} items"
            messages += [
                AIMessage(text),
                HumanMessage(f"That answer was {problem}. Answer again with only the JSON object the schema asks for."),
            ]
        raise JudgeFailed(
            f"the judge {self.config.name} gave no valid answer after {self.config.max_retries + 1} attempt(s): "
            f"the last was {problem}"
        )

    async def _build(self) -> ChatRunnable:
        async with self._building:
            if self._model is None:
                llm = LlmConfig(
                    provider=self.config.provider,
                    model=self.config.model,
                    base_url=self.config.base_url,
                    parameters=LlmParameters(temperature=0),
                )
                try:
                    key = await self._key()
                    self._model = build_chat_model(llm, tools=[], offline=False, api_key=key)
                except (DatabaseUnavailable, ServerBusy):
                    raise  # the vault's database, not the judge: the execution resumes later
                except ChorusError as exc:
                    raise JudgeFailed(f"the judge model could not be built: {exc.detail}") from None
            return self._model

    async def _key(self) -> str | None:
        """The vault secret's value; else None (the provider's server key) without a base_url; else a
        placeholder: a server key never goes to a URL the suite chose."""
        name = self.config.api_key_secret
        if name is None:
            return None if self.config.base_url is None else "unused"
        if self.secrets is None or self.cache is None:
            raise JudgeFailed(f"the judge's key secret '{name}' cannot be read here (no vault)")
        ctx = ToolContext(
            tenant_id=self.tenant_id, db=self.cache.db, environment=DEFAULT_ENVIRONMENT, secrets=self.secrets
        )
        return await self.secrets.reveal(ctx, name, tool_name="eval_judge")
