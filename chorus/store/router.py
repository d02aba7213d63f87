"""The Agent Server store API (`client.store.*` of the official SDKs): put, get, delete, search, namespaces."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from chorus.agents.api_deps import DeveloperDep, ViewerDep
from chorus.agents.errors import InvalidInput, NotFound
from chorus.store.schemas import (
    MAX_DEPTH,
    MAX_KEY,
    DeleteItemBody,
    Item,
    ListNamespacesBody,
    ListNamespacesResponse,
    PutItemBody,
    SearchItem,
    SearchItemsBody,
    SearchItemsResponse,
    label_problem,
)
from chorus.store.service import Item as StoredItem
from chorus.store.service import ItemStore

router = APIRouter(prefix="/store", tags=["store"])


def _store(request: Request) -> ItemStore:
    store: ItemStore = request.app.state.store
    return store


StoreDep = Annotated[ItemStore, Depends(_store)]


def _dotted(namespace: str) -> list[str]:
    """`GET /store/items` gets the namespace joined with dots, as both SDKs send it."""
    labels = namespace.split(".")
    problem = next((p for p in map(label_problem, labels) if p), None)
    if problem is None and len(labels) > MAX_DEPTH:
        problem = f"a namespace has at most {MAX_DEPTH} labels"
    if problem:
        raise InvalidInput(
            f"namespace '{namespace[:200]}': {problem} (send the labels joined with '.', e.g. users.u-123)",
            errors=[{"path": "$.query.namespace", "message": problem}],
        )
    return labels


def _item(item: StoredItem) -> Item:
    return Item(
        namespace=list(item.namespace),
        key=item.key,
        value=item.value,
        created_at=item.created_at,
        updated_at=item.updated_at,
    )


@router.put("/items", status_code=204, summary="Store or replace an item (optionally indexed for search, with a TTL)")
async def put_item(body: PutItemBody, principal: DeveloperDep, store: StoreDep) -> Response:
    await store.put(principal.tenant_id, body.namespace, body.key, body.value, index=body.index, ttl=body.ttl)
    return Response(status_code=204)


@router.get("/items", summary="Get an item", responses={404: {"description": "no such item (or it expired)"}})
async def get_item(
    principal: ViewerDep,
    store: StoreDep,
    namespace: Annotated[str, Query(description="the labels joined with '.', e.g. users.u-123")],
    key: Annotated[str, Query(min_length=1, max_length=MAX_KEY)],
    refresh_ttl: Annotated[bool | None, Query(description="restart the item's TTL (default: yes)")] = None,
) -> Item:
    labels = _dotted(namespace)
    if "\x00" in key:
        raise InvalidInput("a key cannot contain NUL characters", errors=[{"path": "$.query.key", "message": "NUL"}])
    found = await store.get(principal.tenant_id, labels, key, refresh_ttl=refresh_ttl)
    if found is None:
        raise NotFound(f"no item '{key[:200]}' in namespace '{namespace}'")
    return _item(found)


@router.delete("/items", status_code=204, summary="Delete an item (204 whether or not it existed)")
async def delete_item(body: DeleteItemBody, principal: DeveloperDep, store: StoreDep) -> Response:
    await store.delete(principal.tenant_id, body.namespace, body.key)
    return Response(status_code=204)


@router.post("/items/search", summary="Search items under a namespace prefix: by filter, or by meaning with `query`")
async def search_items(body: SearchItemsBody, principal: ViewerDep, store: StoreDep) -> SearchItemsResponse:
    found = await store.search(
        principal.tenant_id,
        body.namespace_prefix,
        query=body.query,
        filter=body.filter,
        limit=body.limit,
        offset=body.offset,
        refresh_ttl=body.refresh_ttl,
    )
    return SearchItemsResponse(items=[SearchItem(**_item(i).model_dump(), score=i.score) for i in found])


@router.post("/namespaces", summary="List the namespaces that hold items (prefix, suffix, max_depth)")
async def list_namespaces(body: ListNamespacesBody, principal: ViewerDep, store: StoreDep) -> ListNamespacesResponse:
    found = await store.list_namespaces(
        principal.tenant_id,
        prefix=body.prefix,
        suffix=body.suffix,
        max_depth=body.max_depth,
        limit=body.limit,
        offset=body.offset,
    )
    return ListNamespacesResponse(namespaces=[list(ns) for ns in found])
