"""`chorus kb`: ingest files and folders, search, import FAQs, re-embed a namespace (straight to the database)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from chorus.agents.settings import load_settings
from chorus.cli_tenant import DEFAULT_TENANT, TenantOption

kb_app = typer.Typer(help="Knowledge base: documents, search, FAQs.", no_args_is_help=True)
faq_app = typer.Typer(help="FAQs.", no_args_is_help=True)
kb_app.add_typer(faq_app, name="faq")

T = TypeVar("T")
NamespaceOpt = Annotated[str, typer.Option("--namespace", "-n", help="Knowledge namespace.")]


def _run(work: Callable[[Any, str], Awaitable[T]], tenant: str) -> T:
    """Open the database and the knowledge base (with a job worker), resolve the tenant, run `work(kb, tenant_id)`."""
    from chorus.agents.errors import ChorusError
    from chorus.agents.knowledge.service import standalone_knowledge_base
    from chorus.agents.storage.database import open_database
    from chorus.agents.tenancy.keys import ensure_tenant

    async def main() -> T:
        settings = load_settings()
        db = await open_database(settings)
        try:
            # Jobs go through the job queue as from the API; this process is a worker until it exits.
            async with standalone_knowledge_base(db, max_file_bytes=settings.upload_max_bytes) as kb:
                return await work(kb, await ensure_tenant(db, tenant))
        finally:
            await db.close()

    try:
        return asyncio.run(main())
    except ChorusError as exc:
        typer.secho(exc.detail, fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from None


def _result(job: dict[str, Any], what: str) -> dict[str, Any]:
    """A finished job's result, or exit 1 with its error."""
    if job["status"] != "completed":
        typer.secho(f"{what} failed: {job['error']}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1)
    result: dict[str, Any] = job["result"]
    return result


@kb_app.command("ingest")
def ingest(
    path: Annotated[Path, typer.Argument(help="A file or a folder (every supported file under it).")],
    namespace: NamespaceOpt,
    tenant: TenantOption = DEFAULT_TENANT,
    strategy: Annotated[str, typer.Option(help="paragraph, fixed_size or semantic.")] = "paragraph",
    chunk_size: Annotated[int, typer.Option(help="Target chunk size in words.")] = 150,
    force: Annotated[bool, typer.Option(help="Ingest again even if a file is unchanged.")] = False,
) -> None:
    """Ingest documents; each file's document_id is its path relative to PATH."""
    from chorus.agents.knowledge.local_files import ingest_path

    if not path.exists():
        typer.secho(f"{path} does not exist", fg=typer.colors.RED, err=True)
        raise typer.Exit(2)

    async def work(kb: Any, tenant_id: str) -> list[Any]:
        return await ingest_path(
            kb,
            tenant_id,
            path,
            namespace=namespace,
            chunking_strategy=strategy,
            chunk_size=chunk_size,
            skip_unchanged=not force,
        )

    outcomes = _run(work, tenant)
    colors = {"completed": typer.colors.GREEN, "unchanged": None, "skipped": typer.colors.YELLOW}
    for o in outcomes:
        typer.secho(f"{o.status:<10} {o.path}  {o.detail}", fg=colors.get(o.status, typer.colors.RED))
    counts = {s: sum(o.status == s for o in outcomes) for s in ("completed", "unchanged", "skipped", "failed")}
    failed = counts["failed"]
    typer.echo(
        f"'{namespace}': {counts['completed']} ingested, {counts['unchanged']} unchanged, "
        f"{counts['skipped']} skipped, {failed} failed"
    )
    if failed:
        raise typer.Exit(1)


@kb_app.command("search")
def search(
    query: Annotated[str, typer.Argument(help="The question.")],
    namespace: NamespaceOpt,
    tenant: TenantOption = DEFAULT_TENANT,
    top_k: Annotated[int, typer.Option(help="How many results.")] = 5,
    as_json: Annotated[bool, typer.Option("--json", help="Print the API's JSON response.")] = False,
) -> None:
    """Hybrid search of a namespace, as POST /api/v1/rag/query does it."""

    async def work(kb: Any, tenant_id: str) -> dict[str, Any]:
        result: dict[str, Any] = await kb.search(tenant_id, namespace, query, top_k=top_k)
        return result

    found = _run(work, tenant)
    if as_json:
        typer.echo(json.dumps(found, indent=2, default=str))
        return
    for i, r in enumerate(found["results"], start=1):
        typer.secho(f"{i}. [{r['citation']}]  score {r['score']:.3f}  similarity {r['similarity']:.3f}", bold=True)
        typer.echo("   " + " ".join(r["content"].split())[:300])
    typer.echo(f"{found['total_results']} result(s) in {found['latency_ms']} ms")


@faq_app.command("import")
def faq_import(
    file: Annotated[Path, typer.Argument(help="A .csv or .json file of FAQs.")],
    namespace: NamespaceOpt,
    tenant: TenantOption = DEFAULT_TENANT,
    mode: Annotated[str, typer.Option(help="merge or replace.")] = "merge",
) -> None:
    """Import FAQs (merge updates by question; replace also deletes FAQs the file lacks)."""
    from chorus.agents.knowledge.faq_import import submit_import

    if not file.is_file():
        typer.secho(f"{file} is not a file", fg=typer.colors.RED, err=True)
        raise typer.Exit(2)

    async def work(kb: Any, tenant_id: str) -> dict[str, Any]:
        data = await asyncio.to_thread(file.read_bytes)
        job = await submit_import(
            kb.faqs,
            kb.jobs,
            tenant_id,
            namespace,
            file.name,
            data,
            mode=mode,  # type: ignore[arg-type]  # submit_import checks it
            mapping=None,
            actor=None,
        )
        done: dict[str, Any] = await kb.jobs.finished(tenant_id, job["job_id"])
        return done

    r = _result(_run(work, tenant), "import")
    typer.echo(
        f"{r['created']} created, {r['updated']} updated, {r['unchanged']} unchanged, {r['deleted']} deleted "
        f"in '{namespace}'"
    )


@kb_app.command("reembed")
def reembed(
    namespace: NamespaceOpt,
    model: Annotated[str, typer.Option(help="all-MiniLM-L6-v2 (offline) or text-embedding-3-small.")],
    tenant: TenantOption = DEFAULT_TENANT,
) -> None:
    """Re-embed every chunk and FAQ of a namespace with another model (one switch, no mixed vectors)."""
    from chorus.agents.knowledge.embedders import check_model, get_embedder

    async def work(kb: Any, tenant_id: str) -> dict[str, Any]:
        get_embedder(check_model(model))
        job = await kb.submit_reembed(tenant_id, namespace, model)
        done: dict[str, Any] = await kb.jobs.finished(tenant_id, job["job_id"])
        return done

    r = _result(_run(work, tenant), "re-embed")
    typer.echo(
        f"'{namespace}': {r['chunks']} chunks and {r['faq_phrasings']} FAQ phrasings re-embedded with "
        f"{r['embedding_model']} ({r['dimension']} dimensions; was {r['from_model']})"
    )
