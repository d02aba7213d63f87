"""The FastAPI app: one OpenAPI document for the chat API (LangGraph-compatible) and the /api/v1 APIs."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg
import psycopg.errors
import psycopg_pool
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from chorus import openapi_doc
from chorus.agents.configs.changes_router import router as config_changes_router
from chorus.agents.configs.config_events import ConfigEvents
from chorus.agents.configs.deploy_gate import DeployGate
from chorus.agents.configs.deployments import CONFIG_CHANNEL, Deployments
from chorus.agents.configs.deployments_router import router as deployments_router
from chorus.agents.configs.permissions_router import router as config_permissions_router
from chorus.agents.configs.repository import ConfigRepository
from chorus.agents.configs.rollout_monitor import RolloutMonitor
from chorus.agents.configs.router import router as configs_router
from chorus.agents.configs.service import ConfigService
from chorus.agents.errors import ChorusError, DatabaseUnavailable
from chorus.agents.knowledge.router import router as knowledge_router
from chorus.agents.knowledge.service import KnowledgeBase
from chorus.agents.observability.logs import configure_logging, request_id_var
from chorus.agents.observability.router import router as ops_router
from chorus.agents.queue import JobQueue, Notifications, Worker
from chorus.agents.secrets.master_key import load_vault_key
from chorus.agents.secrets.repository import SecretRepository
from chorus.agents.secrets.router import router as secrets_router
from chorus.agents.secrets.service import SecretVault
from chorus.agents.settings import Settings, load_settings
from chorus.agents.storage.database import Database, open_database
from chorus.agents.storage.outage import describe as describe_database_error
from chorus.agents.tenancy.keys import KeyResolver
from chorus.agents.tenancy.publishable_keys import PublishableKeyResolver
from chorus.agents.tenancy.publishable_keys_router import router as publishable_keys_router
from chorus.agents.tenancy.rate_limits import RateLimiter
from chorus.agents.tenancy.router import router as keys_router
from chorus.agents.tools.builtins import build_registry
from chorus.agents.tools.router import router as tools_router
from chorus.cors import install_cors, parse_origins
from chorus.evals.deploy_results import ExecutionSuiteResults
from chorus.evals.repository import EVAL_KIND, EvalRepository
from chorus.evals.router import router as evals_router
from chorus.evals.runner import EvalExecutor
from chorus.evals.service import EvalService
from chorus.graphs.checkpointer import ChorusCheckpointer
from chorus.graphs.compiler import GraphCache, GraphDeps
from chorus.http_errors import status_of
from chorus.request_context import RequestContextMiddleware
from chorus.runs.assistants_router import router as assistants_router
from chorus.runs.config_chat_router import router as config_chat_router
from chorus.runs.cron_firer import CronFirer
from chorus.runs.crons_repository import CRON_KIND, CronRepository
from chorus.runs.crons_router import router as crons_router
from chorus.runs.engine import RunEngine
from chorus.runs.expiry import delete_expired_threads
from chorus.runs.runs_router import router as runs_router
from chorus.runs.threads_repository import ThreadRepository
from chorus.runs.threads_router import router as threads_router
from chorus.runs.webhook_sender import WebhookSender
from chorus.runs.webhook_signing import WebhookSigner
from chorus.runs.webhooks_repository import WEBHOOK_KIND, WebhookDeliveries, prune_deliveries
from chorus.runs.webhooks_router import router as webhooks_router
from chorus.store.router import router as store_router
from chorus.store.service import ItemStore
from chorus.voice.call_records import CALL_ANALYSIS_KIND, CallRecords, close_stale_calls
from chorus.voice.calls_router import router as calls_router
from chorus.voice.outbound_router import router as outbound_calls_router
from chorus.voice.post_call_analysis import PostCallJob
from chorus.voice.recording import configured_store, sweep_expired_recordings
from chorus.webchat.router import STATIC_DIR
from chorus.webchat.router import router as webchat_router
from chorus.webchat.visitor_tokens import VisitorTokens
from chorus.webchat.widget_bundle import router as widget_bundle_router
from chorus.webchat.widget_cors import WidgetCors
from chorus.webchat.widget_router import router as widget_router

log = logging.getLogger(__name__)
_SWEEP_SECONDS = 60
UPLOAD_PATHS = frozenset({"/api/v1/rag/ingest/file", "/api/v1/rag/faq/import"})


async def _housekeeping(threads: ThreadRepository, checkpointer: ChorusCheckpointer, engine: RunEngine) -> None:
    """Every minute: delete expired threads (never one with a queued or running run), webhook deliveries and
    call recordings past their retention; close the records of calls whose voice worker died."""
    while True:
        await asyncio.sleep(_SWEEP_SECONDS)
        try:
            await delete_expired_threads(threads, checkpointer, on_deleted=engine.forget_thread)
            await prune_deliveries(threads.db)
            await sweep_expired_recordings(threads.db, configured_store())
            await close_stale_calls(threads.db)
        except Exception:
            log.exception("housekeeping failed")


def _error(status: int, code: str, detail: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": code, "detail": detail, **extra}, status_code=status)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ChorusError)
    async def chorus_error(request: Request, exc: ChorusError) -> JSONResponse:
        return JSONResponse(exc.to_dict(), status_code=status_of(exc), headers=dict(exc.headers))

    @app.exception_handler(psycopg.OperationalError)
    async def database_unavailable(request: Request, exc: Exception) -> JSONResponse:
        # A lost connection, a refused connect: the database is down, which the caller can only wait out.
        log.warning("database unavailable: %s: %s", type(exc).__name__, exc)
        db: Database = request.app.state.db
        return await chorus_error(request, DatabaseUnavailable(describe_database_error(exc, timeout_s=db.timeout_s)))

    @app.exception_handler(psycopg_pool.PoolTimeout)
    async def no_connection_in_time(request: Request, exc: psycopg_pool.PoolTimeout) -> JSONResponse:
        # From code that uses the pool directly (the checkpointer): overloaded, or the database is down.
        db: Database = request.app.state.db
        error = db.unavailable(exc)
        log.warning("no database connection in time: %s", error.code)
        return await chorus_error(request, error)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = []
        for e in exc.errors():
            loc = [str(p) for p in e["loc"] if p != "body"]
            path = "$" + "".join(f"[{p}]" if p.isdigit() else f".{p}" for p in loc)
            message = e["msg"]
            if e["type"] == "json_invalid":
                message = f"malformed JSON: {e.get('ctx', {}).get('error', 'could not parse the body')}"
            errors.append({"path": path, "message": message})
        summary = "; ".join(f"{x['path']}: {x['message']}" for x in errors[:5])
        return _error(422, "invalid_input", f"the request is invalid: {summary}", errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"no route {request.method} {request.url.path}; see /docs"
        if exc.status_code == 405:
            detail = f"{request.method} is not allowed on {request.url.path}; see /docs"
        return _error(exc.status_code, "http_error", detail)

    @app.exception_handler(UnicodeEncodeError)
    async def unencodable(request: Request, exc: UnicodeEncodeError) -> JSONResponse:
        return _error(
            422,
            "invalid_input",
            "the request contains text that cannot be stored (for example an "
            "unpaired UTF-16 surrogate); send valid UTF-8",
        )

    @app.exception_handler(RecursionError)
    async def too_deep(request: Request, exc: RecursionError) -> JSONResponse:
        # A safety net for JSON nested deeper than any code path here follows (configs refuse it earlier).
        return _error(422, "invalid_input", "the request's JSON is nested too deeply; flatten it")

    @app.exception_handler(psycopg.errors.UniqueViolation)
    async def duplicate(request: Request, exc: psycopg.errors.UniqueViolation) -> JSONResponse:
        # A safety net: repositories that know the resource answer a Conflict with a better message. This
        # one names no table, key or value, so it cannot tell whether another tenant holds the value.
        log.warning("unique violation reached the API", extra={"constraint": exc.diag.constraint_name})
        return _error(409, "conflict", "this conflicts with something that already exists (a duplicate id or name)")

    @app.exception_handler(psycopg.DataError)
    async def bad_value(request: Request, exc: psycopg.DataError) -> JSONResponse:
        return _error(
            422, "invalid_input", f"a value in the request cannot be stored: {exc.diag.message_primary or exc}"
        )

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return _error(
            500,
            "internal_error",
            "an unexpected error occurred; the request id is in the logs",
            request_id=request_id_var.get(),
        )


def create_app(settings: Settings | None = None, *, database: Database | None = None) -> FastAPI:
    """Build the app. With `database`, the caller owns it (tests share one pool across apps). Without
    `settings` (a worker process of `chorus serve --workers N`), they come from the environment."""
    if settings is None:
        settings = load_settings()
        configure_logging(settings.log_level)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        vault_key = load_vault_key(settings)  # before the database: a bad key stops the start at once
        db = database or await open_database(settings)
        secrets = SecretVault(SecretRepository(db), vault_key)
        checkpointer = ChorusCheckpointer(db.pool)
        await checkpointer.setup()
        store = await ItemStore.open(db)
        registry = build_registry()
        configs = ConfigRepository(db)
        threads = ThreadRepository(db, ttl_days=settings.thread_ttl_days)
        cache = GraphCache(
            GraphDeps(db=db, registry=registry, checkpointer=checkpointer, offline=settings.offline, secrets=secrets)
        )
        notifications = Notifications(db.url)
        worker = Worker(JobQueue(db), notifications)
        engine = RunEngine(
            db=db,
            configs=configs,
            threads=threads,
            cache=cache,
            worker=worker,
            notifications=notifications,
            run_timeout_s=settings.run_timeout_s,
            max_runs=settings.max_runs,
        )
        app.state.settings = settings
        app.state.db = db
        app.state.registry = registry
        app.state.secrets = secrets
        app.state.config_service = ConfigService(configs, registry)
        app.state.threads = threads
        app.state.key_resolver = KeyResolver(db)
        app.state.rate_limiter = RateLimiter(db)
        app.state.publishable_keys = PublishableKeyResolver(db)
        app.state.visitor_tokens = VisitorTokens.from_vault_key(vault_key)
        app.state.run_engine = engine
        app.state.store = store
        app.state.worker = worker
        app.state.crons = CronRepository(db)
        worker.register(
            CRON_KIND, CronFirer(db=db, crons=app.state.crons, engine=engine, threads=threads), concurrency=4
        )
        # Run webhooks: deliveries queued with their runs' final status, sent (and retried) by any process.
        app.state.webhook_deliveries = WebhookDeliveries(db)
        app.state.webhooks = WebhookSender(
            deliveries=app.state.webhook_deliveries,
            queue=worker.queue,
            signer=WebhookSigner.from_vault_key(vault_key),
            wake_after=worker.wake_after,
        )
        worker.register(WEBHOOK_KIND, app.state.webhooks, concurrency=16)
        # Call records (written by the voice workers): post-call analysis, then the call.ended webhook.
        app.state.calls = CallRecords(db)
        post_call = PostCallJob(records=app.state.calls, queue=worker.queue, offline=settings.offline)
        worker.register(CALL_ANALYSIS_KIND, post_call, concurrency=4)
        # Environments and deploys: every process hears of a deploy anywhere (hot reload) and judges rollouts.
        # Eval executions: jobs of the same queue (another process resumes them after a crash); they gate deploys.
        evals = EvalRepository(db)
        app.state.evals = EvalService(evals, app.state.config_service)
        worker.register(EVAL_KIND, EvalExecutor(repo=evals, engine=engine, queue=worker.queue), concurrency=2)
        app.state.deploy_gate = DeployGate(ExecutionSuiteResults(evals))
        app.state.config_events = ConfigEvents(configs, warm=engine.graph_for)
        notifications.on(CONFIG_CHANNEL, app.state.config_events.on_notification)
        rollouts = RolloutMonitor(Deployments(app.state.config_service, app.state.deploy_gate))
        # Knowledge jobs run on the same worker as runs (their own kind, one at a time per process).
        app.state.knowledge = KnowledgeBase(db, max_file_bytes=settings.upload_max_bytes, worker=worker)
        background = [
            asyncio.create_task(notifications.run_forever(), name="notifications"),
            asyncio.create_task(engine.relay.run_forever(), name="event-relay"),
            asyncio.create_task(_housekeeping(threads, checkpointer, engine)),
            asyncio.create_task(rollouts.run_forever(), name="rollout-monitor"),
        ]
        if not await notifications.wait_listening(10):
            log.warning("not yet listening for notifications; runs are still picked up by polling")
        worker.start()
        try:
            yield
        finally:
            # Stop taking jobs; running runs and knowledge jobs get the grace period, then go back to the queue.
            await engine.drain(settings.drain_seconds)
            await checkpointer.aflush()
            await app.state.webhooks.aclose()
            for task in background:
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(*background)
            await notifications.close()
            await store.close()
            if database is None:
                await db.close()

    app = FastAPI(
        title="Chorus",
        version="0.1.0",
        summary="Self-hosted runtime for customer-facing AI agents",
        description="Chat API compatible with the LangGraph Agent Server (assistants, threads, runs), plus "
        "the config and tool APIs under /api/v1. Authenticate with `X-Api-Key`.",
        lifespan=lifespan,
    )
    _install_error_handlers(app)
    app.add_middleware(
        RequestContextMiddleware,
        max_body_bytes=settings.max_body_bytes,
        upload_paths=UPLOAD_PATHS,
        max_upload_bytes=settings.upload_max_bytes,
    )
    install_cors(app, parse_origins(settings.cors_origins))  # preflights never reach auth
    app.add_middleware(WidgetCors)  # outermost: /widget paths answer with the publishable key's origins only
    for router in (
        ops_router,
        config_permissions_router,  # before configs_router: /permissions is not a {config_id}
        deployments_router,  # before configs_router too: /events is not a {config_id}
        config_chat_router,  # the same: /chat is not a {config_id}
        configs_router,
        config_changes_router,
        tools_router,
        knowledge_router,
        evals_router,
        secrets_router,
        keys_router,
        publishable_keys_router,
        assistants_router,
        threads_router,
        crons_router,
        runs_router,
        webhooks_router,
        calls_router,
        store_router,
        webchat_router,
        widget_router,
        widget_bundle_router,
        outbound_calls_router,
    ):
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    openapi_doc.install(app)
    return app
