"""Two executions of one suite side by side: which cases regressed, which improved, and how each metric and the
suite's pass rate moved. `chorus eval compare BASE HEAD` exits non-zero on a regression (CI gating).

Cases are matched by name (a suite file re-imported gives its cases new ids but keeps their names), else by id.
A case's verdict is ranked pass > flaky > fail; unmeasured and errored count as failing (never a pass). A case
regressed when its verdict got worse, or when its mean score fell by more than `tolerance` (both measured);
it improved in the opposite cases. `significant` says the two pass rates' 95 % Wilson intervals do not overlap,
so the change is unlikely to be trial-to-trial noise (with repeat 1 it never is: repeat cases to know)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chorus.agents.errors import Conflict, InvalidInput

DEFAULT_TOLERANCE = 0.05
_RANK = {"passed": 3, "flaky": 2, "failed": 1, "unmeasured": 1, "error": 1}


def case_verdict(case: dict[str, Any]) -> str:
    """passed (every trial), flaky (some), failed, unmeasured (no trial failed, some unmeasured), error."""
    trials, passes = int(case.get("trials") or 0), int(case.get("passed") or 0)
    if trials and passes == trials:
        return "passed"
    if passes and case.get("failed"):
        return "flaky"
    if case.get("errored"):
        return "error"
    if case.get("unmeasured") and not case.get("failed"):
        return "unmeasured"
    return "failed"


def _key(case: dict[str, Any]) -> str:
    return f"name:{case['name']}" if case.get("name") else f"id:{case['eval_id']}"


def _overlap(a: list[float] | None, b: list[float] | None) -> bool:
    if not a or not b:
        return True
    return a[0] <= b[1] and b[0] <= a[1]


def _delta(base: float | None, head: float | None) -> float | None:
    return None if base is None or head is None else round(head - base, 6)


@dataclass(frozen=True)
class CaseChange:
    name: str
    base: dict[str, Any] | None
    head: dict[str, Any] | None
    change: str  # regressed, improved, unchanged, added, removed
    reasons: tuple[str, ...]
    significant: bool

    def to_dict(self) -> dict[str, Any]:
        def side(case: dict[str, Any] | None) -> dict[str, Any] | None:
            if case is None:
                return None
            return {
                "eval_id": case["eval_id"],
                "verdict": case_verdict(case),
                "passed": case.get("passed"),
                "trials": case.get("trials"),
                "pass_rate": case.get("pass_rate"),
                "pass_rate_interval": case.get("pass_rate_interval"),
                "mean_score": case.get("mean_score"),
            }

        return {
            "name": self.name,
            "change": self.change,
            "reasons": list(self.reasons),
            "significant": self.significant,
            "base": side(self.base),
            "head": side(self.head),
        }


def _case_change(name: str, base: dict[str, Any] | None, head: dict[str, Any] | None, tolerance: float) -> CaseChange:
    if base is None or head is None:
        change = "added" if base is None else "removed"
        return CaseChange(
            name, base, head, change, (f"the case is only in the {'head' if base is None else 'base'}",), False
        )
    worse: list[str] = []
    better: list[str] = []
    before, after = case_verdict(base), case_verdict(head)
    if _RANK[after] < _RANK[before]:
        worse.append(f"{before} → {after}")
    elif _RANK[after] > _RANK[before]:
        better.append(f"{before} → {after}")
    score = _delta(base.get("mean_score"), head.get("mean_score"))
    if score is not None and score < -tolerance:
        worse.append(f"mean score {base['mean_score']:.2f} → {head['mean_score']:.2f}")
    elif score is not None and score > tolerance:
        better.append(f"mean score {base['mean_score']:.2f} → {head['mean_score']:.2f}")
    significant = not _overlap(base.get("pass_rate_interval"), head.get("pass_rate_interval"))
    if worse:
        return CaseChange(name, base, head, "regressed", tuple(worse), significant)
    if better:
        return CaseChange(name, base, head, "improved", tuple(better), significant)
    return CaseChange(name, base, head, "unchanged", (), False)


def _metric_changes(base: dict[str, Any], head: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in sorted(set(base) | set(head)):
        b, h = base.get(name) or {}, head.get(name) or {}
        out[name] = {
            "base_mean": b.get("mean"),
            "head_mean": h.get("mean"),
            "mean_delta": _delta(b.get("mean"), h.get("mean")),
            "base_pass_rate": b.get("pass_rate"),
            "head_pass_rate": h.get("pass_rate"),
            "pass_rate_delta": _delta(b.get("pass_rate"), h.get("pass_rate")),
        }
    return out


def _checked(execution: dict[str, Any], which: str) -> dict[str, Any]:
    if execution["status"] != "completed" or not execution.get("summary"):
        raise Conflict(
            f"the {which} execution {execution['id']} is {execution['status']}, not completed: compare two"
            " completed executions (poll GET /api/v1/evaluation/executions/{id}/status)"
        )
    summary: dict[str, Any] = execution["summary"]
    return summary


def compare(base: dict[str, Any], head: dict[str, Any], *, tolerance: float = DEFAULT_TOLERANCE) -> dict[str, Any]:
    """`base` and `head` are execution rows (with `summary`) of the same suite."""
    if base["eval_suite_id"] != head["eval_suite_id"]:
        raise InvalidInput(
            f"executions {base['id']} and {head['id']} ran different suites ({base['eval_suite_id']} and"
            f" {head['eval_suite_id']}); compare two executions of one suite",
            errors=[{"path": "$.base", "message": "not an execution of the head execution's suite"}],
        )
    if base["id"] == head["id"]:
        raise InvalidInput(
            "compare two different executions", errors=[{"path": "$.base", "message": "the same as the head"}]
        )
    base_summary, head_summary = _checked(base, "base"), _checked(head, "head")
    base_cases = {_key(c): c for c in base_summary.get("cases", [])}
    head_cases = {_key(c): c for c in head_summary.get("cases", [])}
    names = list(base_cases) + [k for k in head_cases if k not in base_cases]
    changes = [_case_change(k.split(":", 1)[1], base_cases.get(k), head_cases.get(k), tolerance) for k in names]
    by_kind = {kind: [c.to_dict() for c in changes if c.change == kind] for kind in ("regressed", "improved")}
    side = {
        "base": {
            "id": base["id"],
            "target": _target(base),
            "pass_rate": base_summary.get("pass_rate"),
            "passed": base_summary.get("passed"),
        },
        "head": {
            "id": head["id"],
            "target": _target(head),
            "pass_rate": head_summary.get("pass_rate"),
            "passed": head_summary.get("passed"),
        },
    }
    return {
        **side,
        "eval_suite_id": head["eval_suite_id"],
        "tolerance": tolerance,
        "pass_rate_delta": _delta(base_summary.get("pass_rate"), head_summary.get("pass_rate")),
        "regressed": len(by_kind["regressed"]) > 0,
        "regressions": by_kind["regressed"],
        "improvements": by_kind["improved"],
        "cases": [c.to_dict() for c in changes],
        "metrics": _metric_changes(base_summary.get("metrics") or {}, head_summary.get("metrics") or {}),
    }


def _target(row: dict[str, Any]) -> str:
    return f"config {row['config_id']} v{row['config_version']}" if row.get("config_id") else "unsaved config"


def markdown(result: dict[str, Any]) -> str:
    """The comparison as a pull-request comment."""
    base, head = result["base"], result["head"]
    delta = result["pass_rate_delta"]
    lines = [
        f"### Eval comparison: execution {head['id']} ({head['target']}) vs {base['id']} ({base['target']}):"
        f" **{'regressed' if result['regressed'] else 'no regression'}**",
        "",
        f"pass rate {_pct(base['pass_rate'])} → {_pct(head['pass_rate'])}"
        + (f" ({delta:+.0%})" if delta is not None else ""),
        "",
    ]
    changed = [c for c in result["cases"] if c["change"] != "unchanged"]
    if changed:
        lines += ["| case | change | why | significant |", "|---|---|---|---|"]
        for c in changed:
            name = c["name"].replace("|", "\\|")
            lines.append(
                f"| {name} | {c['change']} | {'; '.join(c['reasons'])} | {'yes' if c['significant'] else 'no'} |"
            )
    else:
        lines.append("No case changed.")
    return "\n".join(lines) + "\n"


def _pct(value: float | None) -> str:
    return "none" if value is None else f"{value:.0%}"
