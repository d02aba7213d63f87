"""FAQs over HTTP: CRUD with versions, search (matched_via, confidence, auto-response), import, analytics."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import RunningServer, make_tenant
from tests.knowledge.conftest import FAQ_FILE
from tests.knowledge.test_ingestion_api import wait_job

PAYMENT = {
    "namespace": "faq",
    "category": "billing",
    "question": "How do I update my payment method?",
    "alternate_questions": ["Change payment method", "Update credit card", "Modify billing information"],
    "answer": "Go to Account Settings, then Billing & Payments, then Update Payment Method.",
    "tags": ["billing", "payment"],
    "metadata": {"language": "en", "visibility": "public"},
}
PASSWORD = {
    "namespace": "faq",
    "category": "account",
    "question": "How do I reset my password?",
    "answer": "Choose Forgot password on the sign-in page and follow the emailed link.",
}


async def create(http: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    response = await http.post("/api/v1/rag/faq", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def search(http: httpx.AsyncClient, query: str, **extra: Any) -> dict[str, Any]:
    response = await http.post("/api/v1/rag/faq/search", json={"query": query, "namespace": "faq", **extra})
    assert response.status_code == 200, response.text
    return dict(response.json())


async def test_patch_to_a_question_already_in_the_namespace_is_a_conflict(http: httpx.AsyncClient) -> None:
    await create(http, PAYMENT)
    other = await create(http, PASSWORD)
    clash = await http.patch(f"/api/v1/rag/faq/{other['faq_id']}", json={"question": PAYMENT["question"].lower()})
    assert clash.status_code == 409, clash.text
    assert "already exists in namespace 'faq'" in clash.json()["detail"]
    unchanged = (await http.get(f"/api/v1/rag/faq/{other['faq_id']}")).json()
    assert unchanged["question"] == PASSWORD["question"] and unchanged["version"] == 1


async def test_crud_with_versions(http: httpx.AsyncClient) -> None:
    created = await create(http, PAYMENT)
    assert created["version"] == 1 and created["vector_embedding_status"] == "generated"
    faq_id = created["faq_id"]
    patched = await http.patch(
        f"/api/v1/rag/faq/{faq_id}",
        json={
            "answer": "Open Settings > Billing and choose Update Payment Method.",
            "tags": ["billing", "self_service"],
            "change_reason": "new settings page",
        },
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["version"] == 2 and patched.json()["updated_fields"] == ["answer", "tags"]
    assert patched.json()["vector_embedding_status"] == "regenerated"
    same = await http.patch(f"/api/v1/rag/faq/{faq_id}", json={"tags": ["billing", "self_service"]})
    assert same.json()["updated_fields"] == [] and same.json()["version"] == 2
    versions = (await http.get(f"/api/v1/rag/faq/{faq_id}/versions")).json()["versions"]
    assert [v["version"] for v in versions] == [1, 2]
    assert versions[0]["answer"] == PAYMENT["answer"] and versions[1]["change_reason"] == "new settings page"
    duplicate = await http.post("/api/v1/rag/faq", json={**PAYMENT, "question": PAYMENT["question"].upper()})
    assert duplicate.status_code == 409 and "already exists" in duplicate.json()["detail"]
    listed = (await http.get("/api/v1/rag/faq", params={"namespace": "faq"})).json()["faqs"]
    assert [f["faq_id"] for f in listed] == [faq_id]
    deleted = await http.delete(f"/api/v1/rag/faq/{faq_id}")
    assert deleted.status_code == 200 and deleted.json()["status"] == "deleted"
    assert (await http.get(f"/api/v1/rag/faq/{faq_id}")).status_code == 404
    assert (await http.patch("/api/v1/rag/faq/nope", json={"answer": "x"})).status_code == 404
    assert (await http.post("/api/v1/rag/faq", json={**PAYMENT, "answer": ""})).status_code == 422


async def test_search_matched_via_confidence_and_auto_response(http: httpx.AsyncClient) -> None:
    payment = await create(http, PAYMENT)
    await create(http, PASSWORD)
    exact = await search(http, "how do I update my payment method")
    assert exact["results"][0]["faq_id"] == payment["faq_id"]
    assert exact["results"][0]["matched_via"] == "question" and exact["results"][0]["confidence_score"] > 0.95
    assert exact["auto_response_enabled"] and exact["recommended_answer"] == PAYMENT["answer"]
    alternate = await search(http, "update my credit card")
    assert alternate["results"][0]["matched_via"] == "alternate_question"
    typo = await search(http, "how do i resett my pasword")
    assert typo["results"][0]["question"] == PASSWORD["question"]
    vague = await search(http, "where do I type the new digits of my visa", confidence_threshold=0.99)
    assert vague["results"][0]["faq_id"] == payment["faq_id"] and not vague["auto_response_enabled"]
    assert vague["recommended_answer"] is None
    unrelated = await search(http, "what is the capital of peru", min_confidence=0.5)
    assert unrelated["results"] == [] and not unrelated["auto_response_enabled"]
    filtered = await search(http, "update my credit card", filters={"category": "account"})
    assert all(r["category"] == "account" for r in filtered["results"])
    by_meta = await search(http, "update my credit card", filters={"visibility": "internal"})
    assert by_meta["results"] == []


async def test_import_merge_replace_and_bad_rows(http: httpx.AsyncClient) -> None:
    async def upload(name: str, data: bytes, **form: str) -> httpx.Response:
        return await http.post(
            "/api/v1/rag/faq/import", files={"file": (name, data)}, data={"namespace": "faq", **form}
        )

    response = await upload("faq.csv", FAQ_FILE.read_bytes())
    assert response.status_code == 202, response.text
    assert response.json()["total_rows"] == 10
    job = await wait_job(http, response.json()["import_job_id"])
    assert job["status"] == "completed" and job["result"]["created"] == 10, job
    top = (await search(http, "when will I get my money back"))["results"][0]
    assert top["question"] == "How long does a refund take?" and top["matched_via"] == "alternate_question"

    changed = (
        b'[{"question": "Do gift cards expire?", "answer": "Never.", "category": "gift_cards"},'
        b' {"question": "Do you price match?", "answer": "Yes, within 14 days."}]'
    )
    merged = await wait_job(http, (await upload("more.json", changed)).json()["job_id"])
    assert merged["result"] == {"created": 1, "updated": 1, "unchanged": 0, "deleted": 0, "mode": "merge"}
    replaced = await wait_job(http, (await upload("more.json", changed, import_mode="replace")).json()["job_id"])
    assert replaced["result"]["deleted"] == 9 and replaced["result"]["unchanged"] == 2
    assert len((await http.get("/api/v1/rag/faq", params={"namespace": "faq"})).json()["faqs"]) == 2

    mapped = b"Q,A\nWhere are you based?,Columbus Ohio\n"
    ok = await upload("m.csv", mapped, mapping='{"question_column": "Q", "answer_column": "A"}')
    assert (await wait_job(http, ok.json()["job_id"]))["status"] == "completed"

    bad_rows = b"Question,Answer\nFirst?,yes\n,missing question\nFirst?,again\n"
    refused = await upload("bad.csv", bad_rows)
    assert refused.status_code == 422
    detail = refused.json()["detail"]
    assert "row 3" in detail and "row 4" in detail and "nothing was imported" in detail
    assert (await upload("x.pdf", b"%PDF")).status_code == 415
    assert (await upload("e.json", b"{}")).status_code == 422
    assert (await upload("m.csv", mapped, mapping='{"question_column": "Nope"}')).status_code == 422
    assert (await upload("m.csv", mapped, import_mode="append")).status_code == 422
    assert len((await http.get("/api/v1/rag/faq", params={"namespace": "faq"})).json()["faqs"]) == 3


async def test_analytics(http: httpx.AsyncClient) -> None:
    payment = await create(http, PAYMENT)
    await create(http, PASSWORD)
    for _ in range(3):
        await search(http, "change payment method")
    await search(http, "refund policy for cancelled orders")
    await search(http, "Refund policy for cancelled orders ")
    report = (await http.get("/api/v1/rag/faq/analytics", params={"namespace": "faq", "date_range": "7d"})).json()
    assert report["total_faqs"] == 2 and report["total_searches"] == 5
    assert report["top_faqs"][0]["faq_id"] == payment["faq_id"] and report["top_faqs"][0]["hit_count"] == 3
    low = report["low_confidence_queries"][0]
    assert low["search_count"] == 2 and low["avg_confidence"] < 0.6 and low["suggestion"].startswith("Create an FAQ")
    assert report["category_breakdown"] == {"account": 1, "billing": 1}
    bad = await http.get("/api/v1/rag/faq/analytics", params={"namespace": "faq", "date_range": "forever"})
    assert bad.status_code == 422


async def test_viewer_can_search_but_not_write(server: RunningServer, db: Any, http: httpx.AsyncClient) -> None:
    await create(http, PASSWORD)
    viewer = await make_tenant(db, role="viewer")
    async with httpx.AsyncClient(base_url=server.url, headers={"x-api-key": viewer.key}) as client:
        refused = await client.post("/api/v1/rag/faq", json=PASSWORD)
        assert refused.status_code == 403
        assert (
            await client.post("/api/v1/rag/ingest", json={"document_id": "a", "namespace": "n", "content": "x"})
        ).status_code == 403
