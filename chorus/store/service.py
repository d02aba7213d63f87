"""Each tenant's key-value store with semantic search, kept by LangGraph's own AsyncPostgresStore.

Tenancy is a namespace prefix: a tenant's item `("users", "u1")` is stored under `("t", <tenant id>, "users",
"u1")`, added here on the way in and stripped on the way out; every search and namespace listing is
anchored at the tenant's prefix (the store matches prefixes label by label, and tenant ids are UUIDs,
so no tenant's prefix is a prefix of another's).

Each request runs its own `abatch` on its own pooled connection instead of the store's shared queue,
which would put concurrent requests of different tenants in one transaction (one bad value would fail
them all). Expired items are left out of every read at once (`omit_expired`); the store's sweeper
deletes them every minute in each server process.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, cast

import psycopg
from langgraph.store.base import GetOp, ListNamespacesOp, MatchCondition, PutOp, Result, SearchOp, TTLConfig
from langgraph.store.base import Item as StoreItem
from langgraph.store.base.embed import get_text_at_path, tokenize_path
from langgraph.store.postgres.aio import AsyncPostgresStore
from langgraph.store.postgres.base import PostgresIndexConfig
from psycopg_pool import PoolTimeout

from chorus.agents.errors import DatabaseUnavailable, InvalidInput, ServerMisconfigured
from chorus.agents.knowledge.embedders import MODELS, configured_model, embed, get_embedder
from chorus.agents.storage.database import Database
from chorus.agents.storage.outage import describe

log = logging.getLogger(__name__)

TENANT_ROOT = "t"
SETUP_LOCK = 0x43485354  # "CHST": one process at a time creates LangGraph's store tables
SWEEP_MINUTES = 1
TTL: TTLConfig = {"refresh_on_read": True, "omit_expired": True, "sweep_interval_minutes": SWEEP_MINUTES}


@dataclass(frozen=True)
class Item:
    namespace: tuple[str, ...]
    key: str
    value: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    score: float | None = None


class ItemStore:
    def __init__(self, db: Database, store: AsyncPostgresStore, *, model: str) -> None:
        self._db = db
        self._store = store
        self.model = model

    @classmethod
    async def open(cls, db: Database, *, model: str | None = None) -> ItemStore:
        """The store on the app's pool: its tables made (once, under a lock) and its TTL sweeper started."""
        model = model or configured_model()

        async def embed_texts(texts: Sequence[str]) -> list[list[float]]:
            # Resolved per call: a model that needs credentials fails the request (503), not the server start.
            vectors = await embed(get_embedder(model), list(texts))
            return cast(list[list[float]], vectors.tolist())

        index: PostgresIndexConfig = {"dims": MODELS[model], "embed": embed_texts, "fields": ["$"]}
        store = AsyncPostgresStore(db.pool, index=index, ttl=TTL)
        await _setup(store, db)
        await _check_dimension(db, MODELS[model], model)
        await store.start_ttl_sweeper()
        return cls(db, store, model=model)

    async def close(self) -> None:
        await self._store.stop_ttl_sweeper(timeout=1)
        if self._store._task is not None:  # the store's own batching queue, which Chorus does not use
            self._store._task.cancel()

    async def put(
        self,
        tenant_id: str,
        namespace: Sequence[str],
        key: str,
        value: dict[str, Any],
        *,
        index: Literal[False] | list[str] | None = None,
        ttl: int | None = None,
    ) -> None:
        if index:
            _check_fields(value, index)
        inside = _inside(tenant_id, namespace)
        await self._run(PutOp(inside, key, value, index, ttl=ttl))
        # LangGraph's store upserts the vectors of the fields it embeds now and keeps the others: an item put
        # again with `index: false` or other fields would still be found by its old text. The vectors this
        # put wrote are as new as the item; older ones are of a previous value.
        async with self._reach(), self._db.connection() as conn:
            await conn.execute(
                "DELETE FROM store_vectors v USING store s WHERE s.prefix = %s AND s.key = %s"
                " AND v.prefix = s.prefix AND v.key = s.key AND v.updated_at < s.updated_at",
                (".".join(inside), key),
            )

    async def get(self, tenant_id: str, namespace: Sequence[str], key: str, *, refresh_ttl: bool | None) -> Item | None:
        op = GetOp(_inside(tenant_id, namespace), key, refresh_ttl=_refresh(refresh_ttl))
        found = cast(StoreItem | None, await self._run(op))
        return _outside(found) if found is not None else None

    async def delete(self, tenant_id: str, namespace: Sequence[str], key: str) -> None:
        await self._run(PutOp(_inside(tenant_id, namespace), key, None))

    async def search(
        self,
        tenant_id: str,
        namespace_prefix: Sequence[str],
        *,
        query: str | None,
        filter: dict[str, Any] | None,
        limit: int,
        offset: int,
        refresh_ttl: bool | None,
    ) -> list[Item]:
        op = SearchOp(
            _inside(tenant_id, namespace_prefix), filter, limit, offset, query, refresh_ttl=_refresh(refresh_ttl)
        )
        return [_outside(item) for item in cast(list[StoreItem], await self._run(op))]

    async def list_namespaces(
        self,
        tenant_id: str,
        *,
        prefix: Sequence[str] | None,
        suffix: Sequence[str] | None,
        max_depth: int | None,
        limit: int,
        offset: int,
    ) -> list[tuple[str, ...]]:
        conditions = [MatchCondition(match_type="prefix", path=_inside(tenant_id, prefix or ()))]
        if suffix:
            conditions.append(MatchCondition(match_type="suffix", path=tuple(suffix)))
        depth = None if max_depth is None else max_depth + 2  # the tenant's two labels come first
        op = ListNamespacesOp(match_conditions=tuple(conditions), max_depth=depth, limit=limit, offset=offset)
        found = cast(list[tuple[str, ...]], await self._run(op))
        return [namespace[2:] for namespace in found if _belongs(namespace, tenant_id) and len(namespace) > 2]

    async def sweep(self) -> int:
        """Delete expired items now (the sweeper does this every minute)."""
        async with self._reach():
            return await self._store.sweep_ttl()

    async def _run(self, op: GetOp | PutOp | SearchOp | ListNamespacesOp) -> Result:
        async with self._reach():
            return (await self._store.abatch([op]))[0]

    @asynccontextmanager
    async def _reach(self) -> AsyncIterator[None]:
        """The store takes connections from the pool itself: a known outage fails at once, and the pool's
        and the driver's errors become the same 503 as everywhere else."""
        if (reason := self._db.watch.outage) is not None:
            raise DatabaseUnavailable(reason)
        try:
            yield
        except PoolTimeout as exc:
            raise self._db.unavailable(exc) from exc
        except psycopg.OperationalError as exc:
            self._db.watch.suspect()
            raise DatabaseUnavailable(describe(exc, timeout_s=self._db.timeout_s)) from exc


def _inside(tenant_id: str, namespace: Sequence[str]) -> tuple[str, ...]:
    return (TENANT_ROOT, tenant_id, *namespace)


def _belongs(namespace: tuple[str, ...], tenant_id: str) -> bool:
    return namespace[:2] == (TENANT_ROOT, tenant_id)


def _outside(item: StoreItem) -> Item:
    return Item(
        namespace=item.namespace[2:],
        key=item.key,
        value=item.value,
        created_at=item.created_at,
        updated_at=item.updated_at,
        score=getattr(item, "score", None),
    )


def _refresh(refresh_ttl: bool | None) -> bool:
    return TTL["refresh_on_read"] if refresh_ttl is None else refresh_ttl


def _check_fields(value: dict[str, Any], fields: list[str]) -> None:
    """Field paths the store would fail on while embedding (e.g. '[x]' on a list) are a 422 before any write."""
    for i, path in enumerate(fields):
        if path == "$":
            continue
        try:
            get_text_at_path(value, tokenize_path(path))
        except Exception as exc:
            raise InvalidInput(
                f"index field '{path}' cannot be read from the value: {exc}",
                errors=[{"path": f"$.index[{i}]", "message": "not a readable field path of the value"}],
            ) from None


async def _setup(store: AsyncPostgresStore, db: Database) -> None:
    """LangGraph's store tables and pgvector index, under an advisory lock so that processes starting
    together on a new database take turns. Polled, not a waiting pg_advisory_lock: the store creates its
    indexes CONCURRENTLY, which waits for every open statement, a blocked lock request included (as in
    chorus/graphs/checkpointer.py)."""
    async with db.pool.connection() as conn:
        while True:
            row = await (await conn.execute("SELECT pg_try_advisory_lock(%s) AS got", (SETUP_LOCK,))).fetchone()
            if row and row["got"]:
                break
            await asyncio.sleep(0.05)  # the holder is another process
        try:
            await store.setup()
        finally:
            await conn.execute("SELECT pg_advisory_unlock(%s)", (SETUP_LOCK,))


async def _check_dimension(db: Database, dims: int, model: str) -> None:
    """The vector column's width is fixed when the table is made; another model's vectors would not fit."""
    async with db.connection() as conn:
        cur = await conn.execute(
            "SELECT atttypmod AS dims FROM pg_attribute WHERE attrelid = 'store_vectors'::regclass"
            " AND attname = 'embedding'"
        )
        row = await cur.fetchone()
    if row is not None and row["dims"] != dims:
        raise ServerMisconfigured(
            f"the store's vectors have {row['dims']} dimensions but CHORUS_EMBEDDING_MODEL '{model}' makes {dims}; "
            "set CHORUS_EMBEDDING_MODEL back to the model the store was made with"
        )
