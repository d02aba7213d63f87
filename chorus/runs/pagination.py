"""The Agent Server's pagination headers on search responses (thread and assistant search)."""

from __future__ import annotations

from fastapi import Response


def pagination_headers(response: Response, *, offset: int, returned: int, next_offset: int | None) -> None:
    """X-Pagination-Next: the offset of the next page, only when there is one. X-Pagination-Total:
    offset + returned on the last page, else one more than the next offset, i.e. "at least" (as the
    Agent Server sends it; the count endpoints give the exact number)."""
    if next_offset is None:
        response.headers["X-Pagination-Total"] = str(offset + returned)
    else:
        response.headers["X-Pagination-Total"] = str(next_offset + 1)
        response.headers["X-Pagination-Next"] = str(next_offset)
