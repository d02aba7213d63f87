"""Knowledge API (seed 001 §17): ingestion jobs, hybrid query, documents, namespaces and FAQs."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import JSONResponse

from chorus.agents.api_deps import DeveloperDep, PrincipalDep
from chorus.agents.errors import InvalidInput, ProviderUnavailable
from chorus.agents.knowledge.faq import faq_input, parse_days
from chorus.agents.knowledge.faq_import import submit_import
from chorus.agents.knowledge.ingestion import IngestRequest
from chorus.agents.knowledge.repository import check_namespace
from chorus.agents.knowledge.schemas import FaqBody, FaqPatch, FaqSearchBody, IngestBody, QueryBody, ReembedBody
from chorus.agents.knowledge.search import parse_filters
from chorus.agents.knowledge.service import KnowledgeBase

router = APIRouter(prefix="/api/v1/rag", tags=["knowledge"])
Limit = Annotated[int, Query(ge=1, le=500)]
Offset = Annotated[int, Query(ge=0)]


def _kb(request: Request) -> KnowledgeBase:
    kb: KnowledgeBase = request.app.state.knowledge
    return kb


def _json_form(value: str | None, name: str) -> dict[str, Any]:
    if not value:
        return {}
    try:
        parsed = json.loads(value)
    except ValueError as exc:
        raise InvalidInput(
            f"{name} must be a JSON object: {exc}", errors=[{"path": name, "message": "bad JSON"}]
        ) from None
    if not isinstance(parsed, dict):
        raise InvalidInput(f"{name} must be a JSON object", errors=[{"path": name, "message": "not an object"}])
    return parsed


async def _read_upload(file: UploadFile, limit: int) -> bytes:
    data = await file.read(limit + 1)
    if len(data) > limit:
        from chorus.agents.errors import PayloadTooLarge

        raise PayloadTooLarge(f"'{file.filename}' is larger than {limit} bytes (CHORUS_UPLOAD_MAX_BYTES)")
    return data


# -- ingestion ------------------------------------------------------------------------------------


@router.post("/ingest", status_code=202, summary="Ingest a text or Markdown document (as a job)")
async def ingest(body: IngestBody, principal: DeveloperDep, request: Request) -> dict[str, Any]:
    req = IngestRequest(
        namespace=check_namespace(body.namespace),
        document_id=body.document_id,
        metadata=body.metadata,
        chunking_strategy=body.chunking_strategy,
        chunk_size=body.chunk_size,
        title=body.title,
    )
    return await _kb(request).ingestion.submit_text(principal.tenant_id, req, body.content)


@router.post("/ingest/file", status_code=202, summary="Ingest a file: .txt .md .html .pdf .docx .csv .xlsx (as a job)")
async def ingest_file(
    principal: DeveloperDep,
    request: Request,
    file: Annotated[UploadFile, File(description="the document")],
    namespace: Annotated[str, Form()],
    document_id: Annotated[str | None, Form(description="defaults to the file name")] = None,
    metadata: Annotated[str | None, Form(description="a JSON object")] = None,
    chunking_strategy: Annotated[str, Form()] = "paragraph",
    chunk_size: Annotated[int, Form()] = 150,
    title: Annotated[str | None, Form()] = None,
) -> dict[str, Any]:
    kb = _kb(request)
    filename = file.filename or "upload"
    req = IngestRequest(
        namespace=check_namespace(namespace),
        document_id=document_id or filename,
        metadata=_json_form(metadata, "metadata"),
        chunking_strategy=chunking_strategy,  # type: ignore[arg-type]  # checked by check_request
        chunk_size=chunk_size,
        title=title,
    )
    data = await _read_upload(file, kb.ingestion.max_file_bytes)
    return await kb.ingestion.submit_file(principal.tenant_id, req, filename, data)


@router.get("/ingest/jobs", summary="Knowledge jobs (ingestion, FAQ import, re-embed), newest first")
async def list_jobs(
    principal: PrincipalDep,
    request: Request,
    namespace: str | None = None,
    status: Annotated[str | None, Query(pattern="^(queued|processing|completed|failed)$")] = None,
    kind: Annotated[str | None, Query(pattern="^(ingest|faq_import|reembed)$")] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> dict[str, Any]:
    jobs = await _kb(request).jobs.list_jobs(
        principal.tenant_id, namespace=namespace, status=status, kind=kind, limit=limit, offset=offset
    )
    return {"jobs": jobs}


@router.get("/ingest/{job_id}", summary="Status and progress of a job")
async def get_job(job_id: str, principal: PrincipalDep, request: Request) -> dict[str, Any]:
    return await _kb(request).jobs.get(principal.tenant_id, job_id)


# -- search, documents, namespaces ----------------------------------------------------------------


@router.post("/query", summary="Hybrid search (vector + full-text + trigram, fused by RRF)")
async def query(body: QueryBody, principal: PrincipalDep, request: Request) -> dict[str, Any]:
    if body.enable_graph_rag:
        raise InvalidInput(
            "enable_graph_rag is not supported; Chorus searches with vectors, full text and trigrams",
            errors=[{"path": "$.enable_graph_rag", "message": "not supported"}],
        )
    return await _kb(request).search(
        principal.tenant_id,
        body.namespace,
        body.query,
        top_k=body.top_k,
        filters=parse_filters(body.filters),
        min_score=body.min_score,
        min_similarity=body.min_similarity,
    )


@router.get("/namespaces", summary="The tenant's knowledge namespaces with model and counts")
async def list_namespaces(principal: PrincipalDep, request: Request) -> dict[str, Any]:
    return {"namespaces": await _kb(request).repo.list_namespaces(principal.tenant_id)}


@router.delete("/namespaces/{namespace}", summary="Delete a namespace with all its documents and FAQs")
async def delete_namespace(namespace: str, principal: DeveloperDep, request: Request) -> dict[str, Any]:
    await _kb(request).repo.delete_namespace(principal.tenant_id, check_namespace(namespace))
    return {"namespace": namespace, "status": "deleted"}


@router.post("/namespaces/{namespace}/reembed", status_code=202, summary="Re-embed a namespace with another model")
async def reembed(namespace: str, body: ReembedBody, principal: DeveloperDep, request: Request) -> dict[str, Any]:
    from chorus.agents.knowledge.embedders import check_model, get_embedder

    try:
        get_embedder(check_model(body.embedding_model))  # missing credentials fail now, not in the job
    except ProviderUnavailable as exc:
        # The request names a model this server cannot use: the caller's choice to change, not an outage.
        raise InvalidInput(
            f"{exc.detail}; choose a model this server can use",
            errors=[{"path": "$.embedding_model", "message": "not available on this server"}],
        ) from None
    return await _kb(request).submit_reembed(principal.tenant_id, check_namespace(namespace), body.embedding_model)


@router.get("/documents", summary="Documents of a namespace")
async def list_documents(
    principal: PrincipalDep, request: Request, namespace: str, limit: Limit = 100, offset: Offset = 0
) -> dict[str, Any]:
    kb = _kb(request)
    await kb.repo.namespace(principal.tenant_id, namespace)
    return {"documents": await kb.repo.list_documents(principal.tenant_id, namespace, limit=limit, offset=offset)}


@router.get("/documents/{document_id}", summary="A document with its chunks and their positions")
async def get_document(document_id: str, namespace: str, principal: PrincipalDep, request: Request) -> dict[str, Any]:
    return await _kb(request).repo.get_document(principal.tenant_id, check_namespace(namespace), document_id)


@router.delete("/documents/{document_id}", summary="Delete a document and its chunks")
async def delete_document(
    document_id: str, namespace: str, principal: DeveloperDep, request: Request
) -> dict[str, Any]:
    await _kb(request).repo.delete_document(principal.tenant_id, check_namespace(namespace), document_id)
    return {"document_id": document_id, "namespace": namespace, "status": "deleted"}


# -- FAQs -----------------------------------------------------------------------------------------


@router.post("/faq", status_code=201, summary="Create an FAQ")
async def create_faq(body: FaqBody, principal: DeveloperDep, request: Request) -> dict[str, Any]:
    faq = faq_input(body.model_dump())
    return await _kb(request).faqs.create(principal.tenant_id, check_namespace(body.namespace), faq, principal.key_id)


@router.get("/faq", summary="FAQs of a namespace")
async def list_faqs(
    principal: PrincipalDep,
    request: Request,
    namespace: str,
    category: str | None = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> dict[str, Any]:
    kb = _kb(request)
    await kb.repo.namespace(principal.tenant_id, namespace)
    faqs = await kb.faqs.list_faqs(principal.tenant_id, namespace, category=category, limit=limit, offset=offset)
    return {"faqs": faqs}


@router.post("/faq/search", summary="Search FAQs; auto_response_enabled when the top match clears the threshold")
async def search_faqs(body: FaqSearchBody, principal: PrincipalDep, request: Request) -> dict[str, Any]:
    return await _kb(request).faqs.search(
        principal.tenant_id,
        check_namespace(body.namespace),
        body.query,
        top_k=body.top_k,
        filters=body.filters,
        confidence_threshold=body.confidence_threshold,
        min_confidence=body.min_confidence,
        conversation_id=body.conversation_id,
    )


@router.post("/faq/import", status_code=202, summary="Bulk import FAQs from CSV or JSON (merge | replace), as a job")
async def import_faqs(
    principal: DeveloperDep,
    request: Request,
    file: Annotated[UploadFile, File()],
    namespace: Annotated[str, Form()],
    import_mode: Annotated[str, Form()] = "merge",
    mapping: Annotated[str | None, Form(description='JSON object, e.g. {"question_column": "Q"}')] = None,
) -> dict[str, Any]:
    kb = _kb(request)
    data = await _read_upload(file, kb.ingestion.max_file_bytes)
    columns = {str(k): str(v) for k, v in _json_form(mapping, "mapping").items()}
    return await submit_import(
        kb.faqs,
        kb.jobs,
        principal.tenant_id,
        check_namespace(namespace),
        file.filename or "upload",
        data,
        mode=import_mode,  # type: ignore[arg-type]  # checked by submit_import
        mapping=columns,
        actor=principal.key_id,
    )


@router.get("/faq/analytics", summary="Hits per FAQ, average confidence, low-confidence queries")
async def faq_analytics(
    principal: PrincipalDep, request: Request, namespace: str, date_range: str = "30d"
) -> dict[str, Any]:
    return await _kb(request).faqs.analytics(principal.tenant_id, check_namespace(namespace), parse_days(date_range))


@router.get("/faq/{faq_id}", summary="An FAQ")
async def get_faq(faq_id: str, principal: PrincipalDep, request: Request) -> dict[str, Any]:
    return await _kb(request).faqs.get(principal.tenant_id, faq_id)


@router.get("/faq/{faq_id}/versions", summary="Every version of an FAQ")
async def faq_versions(faq_id: str, principal: PrincipalDep, request: Request) -> dict[str, Any]:
    return {"faq_id": faq_id, "versions": await _kb(request).faqs.versions(principal.tenant_id, faq_id)}


@router.patch("/faq/{faq_id}", summary="Change an FAQ (a new version)")
async def update_faq(faq_id: str, body: FaqPatch, principal: DeveloperDep, request: Request) -> dict[str, Any]:
    changes = body.model_dump(exclude_unset=True)
    reason = changes.pop("change_reason", None)
    return await _kb(request).faqs.update(principal.tenant_id, faq_id, changes, principal.key_id, reason)


@router.delete("/faq/{faq_id}", summary="Delete an FAQ")
async def delete_faq(faq_id: str, principal: DeveloperDep, request: Request) -> JSONResponse:
    result = await _kb(request).faqs.delete(principal.tenant_id, faq_id)
    return JSONResponse({**result, "deleted_at": result["deleted_at"].isoformat()})
