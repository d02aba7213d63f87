"""Post-call analysis (a config's `analysis_plan`, after Vapi's analysisPlan): a summary of the call, structured
data filled against the plan's JSON Schema, and a success evaluation on the plan's rubric, worked out from the
call's transcript and outcome with the config's own model (chorus/agents/providers/factory.py).

The offline model cannot read a call, so with it (or a server run offline) the analysis is deterministic: the
summary is the caller's first request and the bot's last answer, the structured data is what
`extract_arguments` finds in the caller's words, and success follows from the outcome. Either way the
structured data is validated against the schema; what does not fit is reported, not stored as if it did."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from typing import Any

from jsonschema import Draft202012Validator
from langchain_core.messages import HumanMessage, SystemMessage

from chorus.agents.configs.models import AnalysisPlan, BotConfig, LlmConfig
from chorus.agents.configs.repository import ConfigRepository
from chorus.agents.errors import ChorusError
from chorus.agents.providers.argument_extraction import extract_arguments
from chorus.agents.providers.factory import build_chat_model
from chorus.agents.queue import Job, JobContext, JobQueue, Lease, StopReason
from chorus.voice.call_records import CALL_ENDED, CallRecords, call_view

log = logging.getLogger(__name__)

MODEL_TIMEOUT_S = 60.0
SUMMARY_PROMPT = "Summarise this phone call in two or three sentences: what the caller wanted and what happened."
STRUCTURED_PROMPT = "Extract the data this JSON Schema describes from the phone call."
SUCCESS_PROMPT = "Judge whether the bot achieved what the caller called for."
RUBRICS = {
    "pass_fail": "Answer with only true or false.",
    "numeric_scale": "Answer with only a whole number from 1 (failed) to 10 (perfect).",
    "descriptive_scale": "Answer with only one word: Excellent, Good, Fair or Poor.",
}
DESCRIPTIVE = ("Excellent", "Good", "Fair", "Poor")
# Success from the outcome alone (offline): (passed, score, description).
_BY_OUTCOME: dict[str, tuple[bool, int, str]] = {
    "completed": (True, 8, "Good"),
    "transferred": (True, 6, "Fair"),
    "escalated": (True, 6, "Fair"),
    "voicemail": (False, 3, "Poor"),
    "failed": (False, 1, "Poor"),
}


class AnalysisFailed(Exception):
    """The model failed or answered something that cannot be used."""


def transcript_text(record: dict[str, Any]) -> str:
    return "\n".join(f"{line['role']}: {line['text']}" for line in record.get("transcript") or [] if line.get("text"))


def _lines(record: dict[str, Any], role: str) -> list[str]:
    return [line["text"] for line in record.get("transcript") or [] if line.get("role") == role and line.get("text")]


def check_data(schema: dict[str, Any], data: Any) -> list[str]:
    """What in `data` does not fit `schema` (empty: it fits)."""
    errors = sorted(Draft202012Validator(schema).iter_errors(data), key=lambda e: list(e.path))
    return [f"{'/'.join(str(p) for p in e.path) or '(root)'}: {e.message}" for e in errors]


def offline_analysis(record: dict[str, Any], plan: AnalysisPlan) -> dict[str, Any]:
    result: dict[str, Any] = {}
    caller, bot = _lines(record, "caller"), _lines(record, "bot")
    if plan.summary is not None and plan.summary.enabled:
        parts = []
        if caller:
            parts.append(f"The caller said: {caller[0]}")
        if bot:
            parts.append(f"The bot's last answer: {bot[-1]}")
        parts.append(f"Outcome: {record['outcome']}.")
        result["summary"] = " ".join(p if p.endswith((".", "?", "!")) else p + "." for p in parts)
    if plan.structured_data is not None and plan.structured_data.enabled:
        schema = plan.structured_data.json_schema
        found, missing = extract_arguments(schema, list(reversed(caller)))
        result["structured_data"] = _checked(schema, found, missing=missing)
    if plan.success_evaluation is not None and plan.success_evaluation.enabled:
        passed, score, description = _BY_OUTCOME.get(record["outcome"], (False, 1, "Poor"))
        value: bool | int | str = {"pass_fail": passed, "numeric_scale": score}.get(
            plan.success_evaluation.rubric, description
        )
        result["success_evaluation"] = {"rubric": plan.success_evaluation.rubric, "value": value}
    return result


def _checked(schema: dict[str, Any], data: Any, *, missing: list[str] | None = None) -> dict[str, Any]:
    problems = check_data(schema, data)
    if problems:
        return {"error": "the data does not fit json_schema: " + "; ".join(problems[:5]), "data": data}
    return {"data": data, **({"missing": missing} if missing else {})}


def _json_answer(text: str) -> Any:
    """The JSON a model answered, inside a code fence or not."""
    fenced = re.search(r"```(?:json)?\s*(.*?)```", text, re.S)
    raw = (fenced.group(1) if fenced else text).strip()
    try:
        return json.loads(raw)
    except ValueError:
        raise AnalysisFailed(f"the model did not answer JSON: {raw[:200]!r}") from None


def _success_value(rubric: str, text: str) -> bool | int | str:
    answer = text.strip().strip(".").strip()
    if rubric == "pass_fail":
        if answer.lower() in ("true", "false"):
            return answer.lower() == "true"
    elif rubric == "numeric_scale":
        if answer.isdigit() and 1 <= int(answer) <= 10:
            return int(answer)
    else:
        for word in DESCRIPTIVE:
            if answer.lower() == word.lower():
                return word
    raise AnalysisFailed(f"the model's success evaluation {answer[:100]!r} is not on the {rubric} rubric")


async def model_analysis(record: dict[str, Any], plan: AnalysisPlan, llm: LlmConfig) -> dict[str, Any]:
    model = build_chat_model(llm, tools=[], offline=False)
    call = f"Outcome: {record['outcome']}\nTranscript:\n{transcript_text(record)}"

    async def ask(instructions: str) -> str:
        async with asyncio.timeout(MODEL_TIMEOUT_S):
            answer = await model.ainvoke([SystemMessage(instructions), HumanMessage(call)])
        return answer.text

    result: dict[str, Any] = {}
    if plan.summary is not None and plan.summary.enabled:
        result["summary"] = (await ask(plan.summary.prompt or SUMMARY_PROMPT)).strip()
    if plan.structured_data is not None and plan.structured_data.enabled:
        spec = plan.structured_data
        prompt = (
            f"{spec.prompt or STRUCTURED_PROMPT}\nAnswer with only a JSON object valid against this JSON Schema; "
            f"leave out what the call does not say:\n{json.dumps(spec.json_schema)}"
        )
        result["structured_data"] = _checked(spec.json_schema, _json_answer(await ask(prompt)))
    if plan.success_evaluation is not None and plan.success_evaluation.enabled:
        rubric = plan.success_evaluation.rubric
        prompt = f"{plan.success_evaluation.prompt or SUCCESS_PROMPT}\n{RUBRICS[rubric]}"
        result["success_evaluation"] = {"rubric": rubric, "value": _success_value(rubric, await ask(prompt))}
    return result


async def analyse_call(record: dict[str, Any], plan: AnalysisPlan, llm: LlmConfig, *, offline: bool) -> dict[str, Any]:
    """The analysis of one call record; {"error": …} if the model failed (the record keeps what it has)."""
    if offline or llm.provider == "offline":
        try:
            return offline_analysis(record, plan)
        except Exception as exc:  # never a call left pending: the record says what went wrong
            return {"error": f"the analysis failed: {type(exc).__name__}: {exc}"[:500]}
    try:
        return await model_analysis(record, plan, llm)
    except AnalysisFailed as exc:
        return {"error": str(exc)}
    except TimeoutError:
        return {"error": f"the model did not answer within {MODEL_TIMEOUT_S:g} s"}
    except Exception as exc:  # a provider's own error: what it said, never a hung job
        detail = getattr(exc, "detail", None) or str(exc) or type(exc).__name__
        return {"error": f"the model failed: {detail}"[:500]}


class PostCallJob:
    """The queue's handler for jobs of kind `call_analysis` (queued with each record of a served call, its id
    the call's): the analysis from the config version that served the call, stored on the record, then the
    call.ended webhook queued, in one statement. Run by the server's workers (any process), not by the voice
    worker: a call's end never waits for a model."""

    def __init__(self, *, records: CallRecords, queue: JobQueue, offline: bool) -> None:
        self.records = records
        self.queue = queue
        self.configs = ConfigRepository(records.db)
        self.offline = offline

    async def run(self, job: Job, ctx: JobContext) -> None:
        try:
            await self._run(job, ctx)
        except asyncio.CancelledError:
            if ctx.stop_reason != StopReason.LOST and not ctx.finished:
                try:  # the process stops: another one analyses the call
                    await self.queue.hand_back(job.job_id, ctx.lease)
                except Exception:
                    log.warning("could not hand a post-call job back; its lease lapses and it is retried")
            ctx.finished = True

    async def given_up(self, job: Job, lease: Lease) -> None:
        error = f"the server process stopped {job.attempts} time(s) while analysing the call"
        await self.records.analysis_given_up(job.job_id, lease, error=error)

    async def _config(self, record: dict[str, Any]) -> BotConfig | str:
        try:
            stored = await self.configs.get(
                record["tenant_id"], record["assistant_id"], record["config_version"], deleted_too=True
            )
            return BotConfig.model_validate(stored.config)
        except (ChorusError, ValueError) as exc:
            return f"the config version that served the call cannot be read: {getattr(exc, 'detail', exc)}"

    async def _run(self, job: Job, ctx: JobContext) -> None:
        record = await self.records.find(job.job_id)
        if record is None or record["tenant_id"] is None or record["assistant_id"] is None:
            await self.queue.finish(job.job_id, ctx.lease)  # the tenant (and its calls) went
            ctx.finished = True
            return
        cfg = await self._config(record)
        analysis: dict[str, Any] | None
        if isinstance(cfg, str):
            analysis, url = {"error": cfg}, None
        else:
            plan = cfg.analysis_plan
            analysis = await analyse_call(record, plan, cfg.llm_config, offline=self.offline) if plan else None
            url = cfg.call_webhook.url if cfg.call_webhook else None
        status = "none" if analysis is None else "error" if "error" in analysis else "done"
        payload = {"event": CALL_ENDED, "call": call_view({**record, "analysis": analysis, "analysis_status": status})}
        await self.records.store_analysis(
            job.job_id, ctx.lease, analysis=analysis, webhook_url=url, webhook_payload=payload
        )
        ctx.finished = True
        log.info("call %s analysed: %s", job.job_id, status, extra={"call_id": job.job_id})
