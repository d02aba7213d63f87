"""Deterministic metrics: checks of a trial's answer, tool calls, escalation, latency and tokens that need no
judge. Each metric validates its `value` when a case is created and measures an `Observation`; formulas are in
docs/evals.md. A score is in [0, 1]; None means "unmeasured" (never a pass, never averaged)."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jsonschema
import regex  # type: ignore[import-untyped]
from rapidfuzz.distance import Levenshtein
from rouge_score import rouge_scorer  # type: ignore[import-untyped]

from chorus.agents.configs.version_metrics import price
from chorus.evals.observation import Observation, ToolCall

REGEX_TIMEOUT_S = 0.02  # a pattern's budget on one answer


@dataclass(frozen=True)
class Measured:
    score: float | None
    passed: bool | None
    reasoning: str

    @staticmethod
    def verdict(ok: bool, reasoning: str) -> Measured:
        return Measured(1.0 if ok else 0.0, ok, reasoning)


Check = Callable[[Any], None]
Measure = Callable[[Any, float | None, Observation], Measured]


@dataclass(frozen=True)
class Metric:
    check: Check
    measure: Measure


def _string(value: Any) -> None:
    if not isinstance(value, str) or not value:
        raise ValueError("value must be a non-empty string")


def _strings(value: Any) -> None:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        raise ValueError("value must be a non-empty list of strings")


def _none(value: Any) -> None:
    if value not in (None, True):
        raise ValueError("takes no value")


def _number(value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise ValueError("value must be a finite number ≥ 0")


def _regex(value: Any) -> None:
    _string(value)
    try:
        regex.compile(value)
    except regex.error as exc:
        raise ValueError(f"value is not a valid regular expression: {exc}") from None


def _schema(value: Any) -> None:
    if not isinstance(value, dict):
        raise ValueError("value must be a JSON Schema object")
    try:
        jsonschema.Draft202012Validator.check_schema(value)
    except jsonschema.SchemaError as exc:
        raise ValueError(f"value is not a valid JSON Schema: {exc.message}") from None


def _expected_tool(value: Any) -> ToolCall:
    if isinstance(value, str) and value:
        return ToolCall(value)
    if isinstance(value, dict) and isinstance(value.get("name"), str) and value["name"]:
        args = value.get("arguments", {})
        if not isinstance(args, dict) or set(value) - {"name", "arguments"}:
            raise ValueError("a tool is a name, or {name, arguments}")
        return ToolCall(value["name"], args)
    raise ValueError("a tool is a name, or {name, arguments}")


def _tool(value: Any) -> None:
    _expected_tool(value)


def _tools(value: Any) -> None:
    items = value.get("tools") if isinstance(value, dict) else value
    if not isinstance(items, list) or not items:
        raise ValueError("value must be a non-empty list of tools (names, or {name, arguments})")
    for item in items:
        _expected_tool(item)
    if isinstance(value, dict) and set(value) - {"tools", "exact_match", "consider_ordering"}:
        raise ValueError("value is {tools, exact_match, consider_ordering} or a list of tools")


def _text_of(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _equals(value: Any, _t: float | None, obs: Observation) -> Measured:
    ok = obs.output.strip() == _text_of(value).strip()
    return Measured.verdict(ok, "the answer equals the expected text" if ok else "the answer differs")


def _contains(fold: bool) -> Measure:
    def measure(value: Any, _t: float | None, obs: Observation) -> Measured:
        out, want = (obs.output.lower(), value.lower()) if fold else (obs.output, value)
        ok = want in out
        return Measured.verdict(ok, f"the answer {'contains' if ok else 'does not contain'} '{value}'")

    return measure


def _contains_many(fold: bool, *, every: bool) -> Measure:
    def measure(value: Any, _t: float | None, obs: Observation) -> Measured:
        out = obs.output.lower() if fold else obs.output
        found = [v for v in value if (v.lower() if fold else v) in out]
        missing = [v for v in value if v not in found]
        ok = not missing if every else bool(found)
        score = len(found) / len(value) if every else float(ok)
        why = f"found {found}" + (f", missing {missing}" if missing else "")
        return Measured(score, ok, why)

    return measure


def _regex_measure(value: Any, _t: float | None, obs: Observation) -> Measured:
    """A suite's pattern runs in the server's process: a catastrophic one (`(a+)+$`) is stopped after
    REGEX_TIMEOUT_S (the `regex` library's timeout; Python's `re` has none) and the check is unmeasured."""
    try:
        ok = regex.search(value, obs.output, timeout=REGEX_TIMEOUT_S) is not None
    except TimeoutError:
        return Measured(None, None, f"unmeasured: /{value}/ took longer than {REGEX_TIMEOUT_S * 1000:.0f} ms")
    return Measured.verdict(ok, f"the answer {'matches' if ok else 'does not match'} /{value}/")


def _starts_with(value: Any, _t: float | None, obs: Observation) -> Measured:
    ok = obs.output.lstrip().startswith(value)
    return Measured.verdict(ok, f"the answer {'starts' if ok else 'does not start'} with '{value}'")


def _parsed(output: str) -> tuple[Any, str | None]:
    try:
        return json.loads(output), None
    except ValueError as exc:
        return None, f"the answer is not JSON: {exc}"


def _is_json(value: Any, _t: float | None, obs: Observation) -> Measured:
    _, error = _parsed(obs.output)
    if error is not None:
        return Measured.verdict(False, error)
    if value not in (None, True):
        return _json_schema(value, _t, obs)
    return Measured.verdict(True, "the answer is JSON")


def _json_schema(value: Any, _t: float | None, obs: Observation) -> Measured:
    data, error = _parsed(obs.output)
    if error is not None:
        return Measured.verdict(False, error)
    problems = [
        f"{'/'.join(map(str, e.absolute_path)) or '$'}: {e.message}" for e in _validator(value).iter_errors(data)
    ]
    return Measured.verdict(not problems, "; ".join(problems[:3]) or "the answer's JSON matches the schema")


def _validator(schema: dict[str, Any]) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(schema)


def _subset(expected: Any, actual: Any) -> bool:
    """`expected` is found in `actual`: objects by key (recursively), anything else by equality."""
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(k in actual and _subset(v, actual[k]) for k, v in expected.items())
    return bool(expected == actual)


def _matches(expected: ToolCall, called: ToolCall) -> bool:
    return expected.name == called.name and _subset(expected.arguments, called.arguments)


def _tool_called(value: Any, _t: float | None, obs: Observation) -> Measured:
    want = _expected_tool(value)
    ok = any(_matches(want, c) for c in obs.tool_calls)
    called = [c.name for c in obs.tool_calls] or "no tools"
    args = f" with arguments ⊇ {want.arguments}" if want.arguments else ""
    return Measured.verdict(ok, f"'{want.name}'{args} {'was' if ok else 'was not'} called (called: {called})")


def _tool_sequence(value: Any, _t: float | None, obs: Observation) -> Measured:
    wanted = [_expected_tool(v) for v in value]
    i = 0
    for call in obs.tool_calls:
        if i < len(wanted) and _matches(wanted[i], call):
            i += 1
    ok = i == len(wanted)
    called = [c.name for c in obs.tool_calls]
    return Measured(i / len(wanted), ok, f"expected {[w.name for w in wanted]} in this order; called {called}")


def _lcs(a: list[ToolCall], b: list[ToolCall]) -> int:
    table = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i, x in enumerate(a):
        for j, y in enumerate(b):
            table[i + 1][j + 1] = table[i][j] + 1 if _matches(x, y) else max(table[i][j + 1], table[i + 1][j])
    return table[-1][-1]


def _tool_correctness(value: Any, threshold: float | None, obs: Observation) -> Measured:
    """DeepEval's ToolCorrectnessMetric: the share of expected tools that were called (each call matched
    once; with arguments, their subset must match); `exact_match`: 1 only if the calls are exactly the
    expected ones, in order; `consider_ordering`: the longest common subsequence / expected tools."""
    options = value if isinstance(value, dict) else {"tools": value}
    expected = [_expected_tool(v) for v in options["tools"]]
    called = list(obs.tool_calls)
    if options.get("exact_match"):
        same = len(expected) == len(called) and all(_matches(e, c) for e, c in zip(expected, called, strict=True))
        score = 1.0 if same else 0.0
    elif options.get("consider_ordering"):
        score = _lcs(expected, called) / len(expected)
    else:
        used: set[int] = set()
        hits = 0
        for want in expected:
            for i, call in enumerate(called):
                if i not in used and _matches(want, call):
                    used.add(i)
                    hits += 1
                    break
        score = hits / len(expected)
    bar = 0.5 if threshold is None else threshold  # DeepEval's default threshold
    why = f"expected {[e.name for e in expected]}, called {[c.name for c in called]}: {score:.2f} (passes at ≥ {bar})"
    return Measured(score, score >= bar, why)


def _escalated(value: Any, _t: float | None, obs: Observation) -> Measured:
    return Measured.verdict(obs.escalated, "the conversation was escalated" if obs.escalated else "not escalated")


def _latency(value: Any, _t: float | None, obs: Observation) -> Measured:
    if obs.latency_ms is None:
        return Measured(None, None, "unmeasured: no latency was timed for this turn")
    ok = obs.latency_ms <= value
    return Measured.verdict(ok, f"took {obs.latency_ms:.0f} ms (budget {value} ms)")


def _tokens(value: Any, _t: float | None, obs: Observation) -> Measured:
    if obs.tokens is None:
        return Measured(None, None, "unmeasured: the model reported no token usage")
    ok = obs.tokens <= value
    return Measured.verdict(ok, f"used {obs.tokens} tokens (budget {value})")


def _is_offline(model: str) -> bool:
    return model.startswith("offline") or model == "chorus-offline"


def _cost(value: Any, _t: float | None, obs: Observation) -> Measured:
    """The conversation's cost in USD at the models' public prices (genai-prices) is within `value`. The
    offline model is local and costs nothing; a model with no public price makes the cost unmeasured."""
    if obs.usage is None:
        return Measured(None, None, "unmeasured: the model reported no token usage")
    total = 0.0
    for used in obs.usage:
        if _is_offline(used.model):
            continue
        cost = price(used.model, used.input_tokens, used.output_tokens)
        if cost is None:
            return Measured(None, None, f"unmeasured: the price of model '{used.model}' is not known")
        total += float(cost)
    return Measured.verdict(total <= value, f"cost ${total:.6f} (budget ${value})")


def _destination(value: Any) -> None:
    if value is not None:
        _string(value)


def _transferred(value: Any, _t: float | None, obs: Observation) -> Measured:
    """The bot transferred the call (a voicebot's `transfer_call`), to destination `value` when given."""
    asked = [str(c.arguments.get("destination")) for c in obs.tool_calls if c.name == "transfer_call"]
    if not asked:
        return Measured.verdict(False, "no transfer")
    if value is None:
        return Measured.verdict(True, f"transferred to {asked[-1]}")
    return Measured.verdict(value in asked, f"transferred to {', '.join(asked)} (expected {value})")


def _levenshtein(value: Any, threshold: float | None, obs: Observation) -> Measured:
    """Passes when the edit distance to `value` is at most `threshold` (default 5, as promptfoo); the score
    is the normalized similarity 1 - distance / max(len)."""
    distance = Levenshtein.distance(obs.output.strip(), value.strip())
    bar = 5 if threshold is None else threshold
    score = Levenshtein.normalized_similarity(obs.output.strip(), value.strip())
    return Measured(score, distance <= bar, f"edit distance {distance} (passes at ≤ {bar:g})")


_ROUGE = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)


def _rouge_l(value: Any, threshold: float | None, obs: Observation) -> Measured:
    """ROUGE-L F-measure (longest common subsequence of tokens) against `value`; passes at ≥ threshold
    (default 0.75, as promptfoo's rouge-n)."""
    score = float(_ROUGE.score(value, obs.output)["rougeL"].fmeasure)
    bar = 0.75 if threshold is None else threshold
    return Measured(score, score >= bar, f"ROUGE-L F1 {score:.3f} (passes at ≥ {bar:g})")


METRICS: dict[str, Metric] = {
    "equals": Metric(lambda v: None if v is not None else _string(v), _equals),
    "contains": Metric(_string, _contains(False)),
    "icontains": Metric(_string, _contains(True)),
    "contains-any": Metric(_strings, _contains_many(False, every=False)),
    "contains-all": Metric(_strings, _contains_many(False, every=True)),
    "icontains-any": Metric(_strings, _contains_many(True, every=False)),
    "icontains-all": Metric(_strings, _contains_many(True, every=True)),
    "regex": Metric(_regex, _regex_measure),
    "starts-with": Metric(_string, _starts_with),
    "is-json": Metric(lambda v: None if v in (None, True) else _schema(v), _is_json),
    "json-schema": Metric(_schema, _json_schema),
    "tool_called": Metric(_tool, _tool_called),
    "tool_sequence": Metric(_tools, _tool_sequence),
    "tool_correctness": Metric(_tools, _tool_correctness),
    "escalated": Metric(_none, _escalated),
    "latency": Metric(_number, _latency),
    "token_budget": Metric(_number, _tokens),
    "cost_budget": Metric(_number, _cost),
    "transferred": Metric(_destination, _transferred),
    "levenshtein": Metric(_string, _levenshtein),
    "rouge-l": Metric(_string, _rouge_l),
}


def measure(kind: str, value: Any, threshold: float | None, obs: Observation) -> Measured:
    """Measure assertion `kind` (`not-` negates: the pass flips, a score s becomes 1 - s)."""
    negate = kind.startswith("not-")
    result = METRICS[kind.removeprefix("not-")].measure(value, threshold, obs)
    if not negate or result.passed is None:
        return result
    score = None if result.score is None else 1.0 - result.score
    return Measured(score, not result.passed, f"negated: {result.reasoning}")
