"""Found by the security review of the client-parity work; each failed before its fix:
- a viewer could cancel any run by joining its stream with `cancel_on_disconnect=true` and leaving;
- a `Last-Event-ID` of non-ASCII digits, a cron date that never comes, an over-long time zone and a
  non-string `before.checkpoint_id` answered 500;
- LangGraph's internal `__pregel_*` keys were accepted in a run's `config.configurable`."""

from __future__ import annotations

import httpx
import pytest
from langgraph_sdk.client import LangGraphClient

from tests.conftest import RunningServer

HELLO = {"messages": [{"role": "user", "content": "hello"}]}


async def test_a_viewer_cannot_cancel_by_leaving_a_stream(
    server: RunningServer, http: httpx.AsyncClient, assistant_id: str
) -> None:
    thread = (await http.post("/threads", json={})).json()["thread_id"]
    run = (await http.post(f"/threads/{thread}/runs", json={"assistant_id": assistant_id, "input": HELLO})).json()
    # A viewer key of the same tenant, made by its admin key.
    key = (await http.post("/api/v1/keys", json={"role": "viewer"})).json()["key"]
    async with httpx.AsyncClient(base_url=server.url, headers={"x-api-key": key}) as as_viewer:
        resp = await as_viewer.get(f"/threads/{thread}/runs/{run['run_id']}/stream?cancel_on_disconnect=true")
        assert resp.status_code == 403, resp.text
        assert (await as_viewer.get(f"/threads/{thread}/runs/{run['run_id']}/stream")).status_code == 200


@pytest.mark.parametrize("value", ["\u00b2-1", "1-" + "9" * 5000, "1-\u00b9"])
async def test_odd_last_event_ids_are_422s(http: httpx.AsyncClient, assistant_id: str, value: str) -> None:
    thread = (await http.post("/threads", json={})).json()["thread_id"]
    run = (await http.post(f"/threads/{thread}/runs", json={"assistant_id": assistant_id, "input": HELLO})).json()
    resp = await http.get(
        f"/threads/{thread}/runs/{run['run_id']}/stream", headers={"Last-Event-ID": value.encode("latin-1")}
    )
    assert resp.status_code == 422, resp.text


async def test_bad_crons_and_history_are_422s_not_500s(
    http: httpx.AsyncClient, sdk: LangGraphClient, assistant_id: str
) -> None:
    for body in [
        {"schedule": "0 0 31 2 *", "assistant_id": assistant_id, "input": HELLO},
        {"schedule": "0 9 * * *", "timezone": "x" * 300, "assistant_id": assistant_id, "input": HELLO},
    ]:
        resp = await http.post("/runs/crons", json=body)
        assert resp.status_code == 422, resp.text
    thread = (await sdk.threads.create())["thread_id"]
    await sdk.runs.wait(thread, assistant_id, input=HELLO)
    for before in (5, {}, [], {"checkpoint_id": 5}):
        resp = await http.post(f"/threads/{thread}/history", json={"before": before})
        assert resp.status_code in (200, 422), (before, resp.text)


async def test_langgraph_internal_config_keys_are_refused(http: httpx.AsyncClient, assistant_id: str) -> None:
    thread = (await http.post("/threads", json={})).json()["thread_id"]
    body = {"assistant_id": assistant_id, "input": HELLO, "config": {"configurable": {"__pregel_checkpointer": "x"}}}
    resp = await http.post(f"/threads/{thread}/runs", json=body)
    assert resp.status_code == 422 and "__pregel_checkpointer" in resp.text
