"""An execution's summary as files for CI: JUnit XML (one test case per eval case; a failed or unmeasured
case is a failure, an errored one an error) and a markdown table fit for a pull-request comment."""

from __future__ import annotations

from typing import Any
from xml.etree import ElementTree as ET


def _trials(summary: dict[str, Any]) -> dict[int, list[dict[str, Any]]]:
    out: dict[int, list[dict[str, Any]]] = {}
    for row in summary.get("results", []):
        out.setdefault(row["eval_id"], []).append(row["result"] or {})
    return out


def _verdict(case: dict[str, Any]) -> str:
    if case["trials"] and case["passed"] == case["trials"]:
        return "passed"
    if case["errored"]:
        return "error"
    if case["unmeasured"] and not case["failed"]:
        return "unmeasured"
    return "failed"


def junit_xml(summary: dict[str, Any]) -> str:
    cases = (summary.get("summary") or {}).get("cases", [])
    trials = _trials(summary)
    verdicts = [_verdict(c) for c in cases]
    suite = ET.Element(
        "testsuite",
        name=str(summary.get("name") or "eval suite"),
        tests=str(len(cases)),
        failures=str(sum(v in ("failed", "unmeasured") for v in verdicts)),
        errors=str(verdicts.count("error")),
    )
    for case, verdict in zip(cases, verdicts, strict=True):
        latency = [t.get("latency_ms") or 0.0 for t in trials.get(case["eval_id"], [])]
        element = ET.SubElement(
            suite,
            "testcase",
            classname=str(summary.get("name") or "eval"),
            name=str(case.get("name") or f"case {case['eval_id']}"),
            time=f"{sum(latency) / 1000:.3f}",
        )
        reasons = "\n".join(
            str(t.get("reasoning")) for t in trials.get(case["eval_id"], []) if t.get("passed") is not True
        )
        if verdict == "error":
            ET.SubElement(element, "error", message=reasons.splitlines()[0] if reasons else "error").text = reasons
        elif verdict != "passed":
            message = f"{case['passed']}/{case['trials']} trials passed" + (
                " (unmeasured)" if verdict == "unmeasured" else ""
            )
            ET.SubElement(element, "failure", message=message).text = reasons
    return ET.tostring(suite, encoding="unicode", xml_declaration=True) + "\n"


def markdown(summary: dict[str, Any]) -> str:
    s = summary.get("summary") or {}
    rate = s.get("pass_rate")
    head = (
        f"### Eval suite `{summary.get('name')}` on {summary.get('target')}: "
        f"**{'passed' if summary.get('passed') else 'failed'}**\n\n"
        f"{s.get('passed_trials', 0)}/{s.get('total_trials', 0)} trials passed"
        + (f" ({rate:.0%}, required {s.get('min_pass_rate', 1.0):.0%})" if rate is not None else "")
        + "\n\n| case | result | trials passed | pass rate (95% CI) |\n|---|---|---|---|\n"
    )
    rows = []
    for case in s.get("cases", []):
        interval = case.get("pass_rate_interval")
        ci = f"{case['pass_rate']:.0%} ({interval[0]:.0%} to {interval[1]:.0%})" if interval else "none"
        verdict = _verdict(case) + (" (flaky)" if case.get("flaky") else "")
        name = str(case.get("name") or case["eval_id"]).replace("|", "\\|")
        rows.append(f"| {name} | {verdict} | {case['passed']}/{case['trials']} | {ci} |")
    return head + "\n".join(rows) + "\n"
