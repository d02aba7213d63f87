"""Bulk FAQ import from CSV or JSON, as a job. Every row is checked before anything is written; the
import is one transaction, so a failed import changes nothing.

- merge: rows update the FAQ with the same question (case-insensitive; a new version if it changed)
  and create the others;
- replace: as merge, then FAQs of the namespace that the file does not contain are deleted.
CSV columns come from `mapping` (question_column, answer_column, category_column, tags_column,
alternate_questions_column); without it the headers Question, Answer, Category, Tags and
Alternate Questions are used (any case). Tags are split on , ; or |, alternate questions on | or ;.
JSON is a list of FAQ objects (or {"faqs": [...]}) with the fields of POST /api/v1/rag/faq.
"""

from __future__ import annotations

import csv
import io
import json
import re
from typing import Any, Literal

from chorus.agents.errors import InvalidInput
from chorus.agents.knowledge.faq import FaqInput, FaqService, check_faq, faq_input
from chorus.agents.knowledge.jobs import JobInput, JobProgress, KnowledgeJobs
from chorus.agents.knowledge.parsers import UnreadableDocument, UnsupportedFileType

ImportMode = Literal["merge", "replace"]
MAX_ROWS = 20_000
_DEFAULT_COLUMNS = {
    "question_column": "question",
    "answer_column": "answer",
    "category_column": "category",
    "tags_column": "tags",
    "alternate_questions_column": "alternate questions",
}


def _split(value: str, separators: str) -> list[str]:
    return [part.strip() for part in re.split(f"[{re.escape(separators)}]", value or "") if part.strip()]


def _rows_from_csv(text: str, mapping: dict[str, str]) -> list[tuple[int, dict[str, Any]]]:
    unknown = set(mapping) - set(_DEFAULT_COLUMNS)
    if unknown:
        raise InvalidInput(
            f"unknown mapping keys: {', '.join(sorted(unknown))}; use {', '.join(_DEFAULT_COLUMNS)}",
            errors=[{"path": f"$.mapping.{k}", "message": "unknown key"} for k in sorted(unknown)],
        )
    reader = csv.DictReader(io.StringIO(text))
    headers = {h.strip().lower(): h for h in reader.fieldnames or []}
    columns: dict[str, str | None] = {}
    for key, default in _DEFAULT_COLUMNS.items():
        wanted = mapping.get(key, default)
        columns[key] = headers.get(wanted.strip().lower()) or headers.get(wanted.strip().lower().replace(" ", "_"))
        if columns[key] is None and key in mapping:
            raise InvalidInput(f"column '{wanted}' ({key}) is not in the CSV header: {', '.join(headers.values())}")
    for key in ("question_column", "answer_column"):
        if columns[key] is None:
            raise InvalidInput(
                f"the CSV has no '{mapping.get(key, _DEFAULT_COLUMNS[key])}' column; "
                f"name it in mapping.{key} (header: {', '.join(headers.values())})"
            )

    def cell(row: dict[str, Any], key: str) -> str:
        name = columns[key]
        return str(row.get(name) or "").strip() if name else ""

    rows = []
    for number, row in enumerate(reader, start=2):
        rows.append(
            (
                number,
                {
                    "question": cell(row, "question_column"),
                    "answer": cell(row, "answer_column"),
                    "category": cell(row, "category_column") or None,
                    "tags": _split(cell(row, "tags_column"), ",;|"),
                    "alternate_questions": _split(cell(row, "alternate_questions_column"), "|;"),
                },
            )
        )
    return rows


def parse_import(filename: str, data: bytes, mapping: dict[str, str] | None) -> list[FaqInput]:
    """Every row checked; all problems reported at once with their row numbers."""
    suffix = filename.lower().rsplit(".", 1)[-1] if "." in filename else ""
    if suffix not in ("csv", "json"):
        raise UnsupportedFileType(f"'{filename}': FAQ imports are .csv or .json files")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise UnreadableDocument(f"'{filename}' is not UTF-8 text") from None
    if not text.strip():
        raise UnreadableDocument(f"'{filename}' is empty")
    if suffix == "json":
        try:
            loaded = json.loads(text)
        except ValueError as exc:
            raise UnreadableDocument(f"'{filename}' is not valid JSON: {exc}") from None
        items = loaded.get("faqs") if isinstance(loaded, dict) else loaded
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise UnreadableDocument(f"'{filename}' must hold a list of FAQ objects (or {{\"faqs\": [...]}})")
        rows = list(enumerate(items, start=1))
    else:
        try:
            rows = _rows_from_csv(text, mapping or {})
        except csv.Error as exc:
            raise UnreadableDocument(f"'{filename}' is not valid CSV: {exc}") from None
    if not rows:
        raise UnreadableDocument(f"'{filename}' has no FAQ rows")
    if len(rows) > MAX_ROWS:
        raise InvalidInput(f"'{filename}' has {len(rows)} rows; the limit is {MAX_ROWS} per import")
    faqs: list[FaqInput] = []
    errors: list[dict[str, str]] = []
    seen: dict[str, int] = {}
    for number, row in rows:
        faq = faq_input(row)
        label = f"row {number}"
        errors.extend({"path": label + e["path"][1:], "message": e["message"]} for e in check_faq(faq))
        key = faq.question.strip().lower()
        if key and key in seen:
            errors.append({"path": label, "message": f"same question as row {seen[key]}"})
        seen.setdefault(key, number)
        faqs.append(faq)
    if errors:
        shown = "; ".join(f"{e['path']}: {e['message']}" for e in errors[:10])
        raise InvalidInput(f"{len(errors)} problem(s) in '{filename}', nothing was imported: {shown}", errors=errors)
    return faqs


async def submit_import(
    service: FaqService,
    jobs: KnowledgeJobs,
    tenant_id: str,
    namespace: str,
    filename: str,
    data: bytes,
    *,
    mode: ImportMode,
    mapping: dict[str, str] | None,
    actor: str | None,
) -> dict[str, Any]:
    if mode not in ("merge", "replace"):
        raise InvalidInput(
            "import_mode must be 'merge' or 'replace'", errors=[{"path": "import_mode", "message": mode}]
        )
    faqs = parse_import(filename, data, mapping)  # a file that cannot be read is refused before a job exists
    ns = await service.namespace_for_write(tenant_id, namespace)
    params = {"filename": filename, "mode": mode, "mapping": mapping, "actor": actor}
    job = await jobs.submit(
        tenant_id,
        ns.namespace,
        "faq_import",
        params=params,
        data=data,
        filename=filename,
        total_rows=len(faqs),
        chunks_total=len(faqs),
    )
    return {**job, "import_job_id": job["job_id"], "total_rows": len(faqs)}


async def run_import(service: FaqService, job: JobInput, progress: JobProgress) -> dict[str, Any]:
    """The job's work, from its stored input: every FAQ written, and the job ended, in one transaction."""
    filename: str = job.params["filename"]
    mode: ImportMode = job.params["mode"]
    actor: str | None = job.params.get("actor")
    faqs = parse_import(filename, job.data, job.params.get("mapping"))
    ns = await service.namespace_for_write(job.tenant_id, job.namespace)
    vectors = await service.vectors(ns, faqs)
    await progress.update(embeddings_generated=sum(len(v) for v in vectors))
    created = updated = unchanged = 0
    async with service.db.connection() as conn, conn.transaction():
        cur = await conn.execute(
            "SELECT faq_id::text, lower(question) AS key, question, answer, category, alternate_questions, tags,"
            " metadata FROM faqs WHERE tenant_id = %s AND namespace = %s FOR UPDATE",
            (ns.tenant_id, ns.namespace),
        )
        existing = {r["key"]: dict(r) for r in await cur.fetchall()}
        for i, (faq, vecs) in enumerate(zip(faqs, vectors, strict=True), start=1):
            current = existing.pop(faq.question.strip().lower(), None)
            if current is None:
                await service.insert(conn, ns, faq, vecs, actor=actor, reason=f"imported from {filename}")
                created += 1
            elif faq_input(current) == faq:
                unchanged += 1
            else:
                await service.apply_update(
                    conn, ns, current["faq_id"], faq, vecs, actor=actor, reason=f"imported from {filename}"
                )
                updated += 1
            if i % 100 == 0:
                await progress.update(chunks_processed=i)
        deleted = 0
        if mode == "replace" and existing:
            cur = await conn.execute(
                "DELETE FROM faqs WHERE faq_id = ANY(%s::uuid[])", ([r["faq_id"] for r in existing.values()],)
            )
            deleted = cur.rowcount
        result = {"created": created, "updated": updated, "unchanged": unchanged, "deleted": deleted, "mode": mode}
        await conn.execute("UPDATE kb_jobs SET chunks_processed = %s WHERE job_id = %s", (len(faqs), progress.job_id))
        await progress.complete(conn, result)
    return result
