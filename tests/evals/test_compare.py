"""Comparing two executions of one suite: per-case regressions and improvements over the API and from
`chorus eval compare` (exit 1 on a regression, for CI), and the verdict rules on summaries made by hand."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import httpx
import pytest

from chorus.agents.errors import Conflict, InvalidInput
from chorus.agents.storage.database import Database
from chorus.evals.compare import case_verdict, compare
from tests.conftest import Cli, RunningServer, make_tenant
from tests.evals.conftest import ORDER_CASE, make_suite, wait_done

HELLO_CASE: dict[str, Any] = {"name": "hello", "user_input": "hello", "assertions": [{"type": "not-escalated"}]}


async def _execute(http: httpx.AsyncClient, suite_id: int, target: dict[str, Any]) -> int:
    started = await http.post(f"/api/v1/evaluation/suites/{suite_id}/execute", json=target)
    assert started.status_code == 202, started.text
    done = await wait_done(http, started.json()["id"])
    assert done["status"] == "completed", done
    return int(done["id"])


async def test_a_lost_tool_is_a_regression_and_getting_it_back_an_improvement(
    http: httpx.AsyncClient, assistant_id: str, acme_config: dict[str, Any], cli: Cli, tmp_path: Path
) -> None:
    suite_id = await make_suite(http, [ORDER_CASE, HELLO_CASE])
    good = await _execute(http, suite_id, {"config_id": assistant_id})
    broken_config = copy.deepcopy(acme_config)
    broken_config["tools_available"] = [
        t for t in broken_config["tools_available"] if t["tool_name"] != "fetch_order_status"
    ]
    broken = await _execute(http, suite_id, {"config": broken_config})

    worse = (await http.get(f"/api/v1/evaluation/executions/{broken}/compare", params={"base": good})).json()
    assert worse["regressed"] is True, worse
    assert [c["name"] for c in worse["regressions"]] == ["order status"]
    assert worse["regressions"][0]["reasons"] == ["passed → failed", "mean score 1.00 → 0.33"]
    assert {c["name"]: c["change"] for c in worse["cases"]} == {"order status": "regressed", "hello": "unchanged"}
    assert worse["pass_rate_delta"] == pytest.approx(-0.5)
    assert worse["metrics"]["tool_called"]["pass_rate_delta"] == pytest.approx(-1.0)

    better = (await http.get(f"/api/v1/evaluation/executions/{good}/compare", params={"base": broken})).json()
    assert better["regressed"] is False and [c["name"] for c in better["improvements"]] == ["order status"]

    report = tmp_path / "compare.md"
    flagged = await cli("eval", "compare", str(good), str(broken), "--markdown", str(report))
    assert flagged.code == 1, flagged
    assert "REGRESSED  order status: passed → failed" in flagged.out and "1 regression(s)" in flagged.out
    assert "| order status | regressed | passed → failed; mean score 1.00 → 0.33 | no |" in report.read_text()
    fine = await cli("eval", "compare", str(broken), str(good))
    assert fine.code == 0 and "IMPROVED   order status" in fine.out, fine


async def test_compare_refuses_what_cannot_be_compared(
    http: httpx.AsyncClient,
    assistant_id: str,
    server: RunningServer,
    db: Database,
    cli: Cli,
    client_of: Any,
) -> None:
    suite_id = await make_suite(http, [HELLO_CASE])
    first = await _execute(http, suite_id, {"config_id": assistant_id})
    second = await _execute(http, suite_id, {"config_id": assistant_id})
    other_suite = await make_suite(http, [HELLO_CASE])
    elsewhere = await _execute(http, other_suite, {"config_id": assistant_id})
    path = f"/api/v1/evaluation/executions/{second}/compare"

    same = await http.get(path, params={"base": second})
    assert same.status_code == 422 and "two different executions" in same.json()["detail"]
    different = await http.get(path, params={"base": elsewhere})
    assert different.status_code == 422 and "different suites" in different.json()["detail"]
    unknown = await http.get(path, params={"base": "999999"})
    assert unknown.status_code == 404 and "does not exist" in unknown.json()["detail"]
    for bad in ({"base": str(first), "tolerance": "2"}, {"base": str(first), "tolerance": "nan"}, {}):
        answer = await http.get(path, params=bad)
        assert answer.status_code == 422, (bad, answer.text)
    cli_unknown = await cli("eval", "compare", "999999", str(second))
    assert cli_unknown.code == 2 and "does not exist" in cli_unknown.err

    viewer = await client_of("viewer")
    seen = await viewer.get(path, params={"base": first})
    assert seen.status_code == 200 and seen.json()["regressed"] is False

    other = await make_tenant(db)
    async with httpx.AsyncClient(base_url=server.url, headers={"x-api-key": other.key}) as stranger:
        hidden = await stranger.get(path, params={"base": first})
        assert hidden.status_code == 404 and assistant_id not in hidden.text


def _case(name: str, passed: int, failed: int = 0, *, mean: float | None = None, **extra: Any) -> dict[str, Any]:
    trials = passed + failed + extra.get("unmeasured", 0)
    return {
        "eval_id": hash(name) % 1000,
        "name": name,
        "trials": trials,
        "passed": passed,
        "failed": failed,
        "unmeasured": extra.get("unmeasured", 0),
        "errored": extra.get("errored", 0),
        "pass_rate": passed / trials if trials else None,
        "pass_rate_interval": extra.get("interval"),
        "mean_score": mean,
    }


def _execution(ident: int, cases: list[dict[str, Any]], *, status: str = "completed", suite: int = 1) -> dict[str, Any]:
    summary = {"cases": cases, "pass_rate": 0.5, "passed": False, "metrics": {}}
    return {
        "id": ident,
        "eval_suite_id": suite,
        "status": status,
        "summary": summary if status == "completed" else None,
        "config_id": "bot",
        "config_version": ident,
    }


def test_verdicts_rank_pass_over_flaky_over_fail_and_never_reward_unmeasured() -> None:
    assert case_verdict(_case("a", 3)) == "passed"
    assert case_verdict(_case("a", 2, 1)) == "flaky"
    assert case_verdict(_case("a", 0, 3)) == "failed"
    assert case_verdict(_case("a", 0, unmeasured=2)) == "unmeasured"
    assert case_verdict(_case("a", 0, 1, errored=1)) == "error"
    base = _execution(1, [_case("steady", 5), _case("slips", 5), _case("score", 1, mean=0.9), _case("gone", 1)])
    head = _execution(
        2,
        [
            _case("steady", 5),
            _case("slips", 4, 1),
            _case("score", 1, mean=0.8),
            _case("new", 0, unmeasured=1),
        ],
    )
    result = compare(base, head, tolerance=0.05)
    changes = {c["name"]: (c["change"], c["reasons"]) for c in result["cases"]}
    assert changes == {
        "steady": ("unchanged", []),
        "slips": ("regressed", ["passed → flaky"]),
        "score": ("regressed", ["mean score 0.90 → 0.80"]),
        "gone": ("removed", ["the case is only in the base"]),
        "new": ("added", ["the case is only in the head"]),
    }
    assert compare(base, head, tolerance=0.2)["cases"][2]["change"] == "unchanged"
    passed_to_unmeasured = compare(_execution(1, [_case("x", 1)]), _execution(2, [_case("x", 0, unmeasured=1)]))
    assert passed_to_unmeasured["regressed"] is True


def test_significance_needs_pass_rates_whose_intervals_do_not_overlap() -> None:
    base = _execution(1, [_case("x", 20, interval=[0.84, 1.0])])
    noisy = _execution(2, [_case("x", 18, 2, interval=[0.70, 0.97])])
    clear = _execution(3, [_case("x", 2, 18, interval=[0.03, 0.30])])
    assert compare(base, noisy)["regressions"][0]["significant"] is False
    assert compare(base, clear)["regressions"][0]["significant"] is True


def test_an_unfinished_execution_cannot_be_compared() -> None:
    with pytest.raises(Conflict, match="running, not completed"):
        compare(_execution(1, []), _execution(2, [], status="running"))
    with pytest.raises(InvalidInput, match="different suites"):
        compare(_execution(1, []), _execution(2, [], suite=9))
