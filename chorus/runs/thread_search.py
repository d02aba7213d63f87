"""SQL of thread search and count: filters, sort order, columns and extracted paths. Every identifier in a
statement comes from a table here (whitelists); everything a client sends travels as a parameter."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from chorus.runs.thread_extract import ROOTS, ExtractPath

SORT_COLUMNS = {
    "thread_id": "thread_id",
    "status": "status",
    "created_at": "created_at",
    "updated_at": "updated_at",
    "state_updated_at": "state_updated_at",
}
ORDERS = {"asc": "ASC", "desc": "DESC"}


@dataclass(frozen=True)
class ThreadFilter:
    metadata: dict[str, Any] | None = None
    values: dict[str, Any] | None = None
    status: str | None = None
    ids: Sequence[str] | None = None

    def where(self, tenant_id: str) -> tuple[str, list[Any]]:
        sql = "tenant_id = %s"
        params: list[Any] = [tenant_id]
        if self.metadata:
            sql += " AND metadata @> %s"
            params.append(json.dumps(self.metadata))
        if self.values:
            sql += ' AND "values" @> %s'
            params.append(json.dumps(self.values))
        if self.status:
            sql += " AND status = %s"
            params.append(self.status)
        if self.ids is not None:
            sql += " AND thread_id = ANY(%s::uuid[])"
            params.append(list(self.ids))
        return sql, params


@dataclass(frozen=True)
class ThreadPage:
    limit: int
    offset: int
    sort_by: str = "updated_at"
    sort_order: str = "desc"
    with_values: bool = True  # False when neither the response nor an extract needs them (they can be large)
    extract: Sequence[ExtractPath] = field(default_factory=tuple)


def search_sql(columns: Sequence[str], tenant_id: str, where: ThreadFilter, page: ThreadPage) -> tuple[str, list[Any]]:
    """One row more than the page, so the caller knows whether another page follows."""
    selected = [c if c != '"values"' or page.with_values else 'NULL::jsonb AS "values"' for c in columns]
    params: list[Any] = []
    for i, path in enumerate(page.extract):
        selected.append(f"{ROOTS[path.root]} #> %s::text[] AS extracted_{i}")
        params.append(list(path.steps))
    condition, where_params = where.where(tenant_id)
    order = ORDERS[page.sort_order]
    sql = (
        f"SELECT {', '.join(selected)} FROM threads WHERE {condition}"
        f" ORDER BY {SORT_COLUMNS[page.sort_by]} {order}, thread_id {order} LIMIT %s OFFSET %s"
    )
    return sql, [*params, *where_params, page.limit + 1, page.offset]


def count_sql(tenant_id: str, where: ThreadFilter) -> tuple[str, list[Any]]:
    condition, params = where.where(tenant_id)
    return f"SELECT count(*) AS n FROM threads WHERE {condition}", params


def extracted(row: dict[str, Any], paths: Sequence[ExtractPath]) -> dict[str, Any]:
    return {path.alias: row[f"extracted_{i}"] for i, path in enumerate(paths)}
