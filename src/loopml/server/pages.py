"""Pagination, the same on every list: ``limit`` (at most ``MAX_LIMIT``) and ``offset``.

A list answers ``{"items": [...], "limit": L, "offset": O, "next_offset": N | null}``; the
route fetches one item more than asked to know whether a next page exists, so no count of
the whole table is needed (that would cost more than the page on 100,000 runs).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Generic, TypeVar

from fastapi import Depends, Query
from pydantic import BaseModel

from loopml.server.api.limits import MAX_INDEX

MAX_LIMIT = 1000
DEFAULT_LIMIT = 100

T = TypeVar("T")


class PageParams(BaseModel):
    limit: int
    offset: int

    @property
    def fetch(self) -> int:
        """How many rows to read: one more than the page, to see whether there is a next."""
        return self.limit + 1


def page_params(
    limit: Annotated[
        int, Query(ge=1, le=MAX_LIMIT, description=f"Items per page (1 to {MAX_LIMIT}).")
    ] = DEFAULT_LIMIT,
    offset: Annotated[
        int, Query(ge=0, le=MAX_INDEX, description="Items to skip (from `next_offset`).")
    ] = 0,
) -> PageParams:
    return PageParams(limit=limit, offset=offset)


Paging = Annotated[PageParams, Depends(page_params)]


class Page(BaseModel, Generic[T]):
    items: list[T]
    limit: int
    offset: int
    next_offset: int | None


def page(rows: Sequence[T], params: PageParams) -> Page[T]:
    """A page from ``rows``, read with ``limit = params.fetch``."""
    more = len(rows) > params.limit
    return Page[T](
        items=list(rows[: params.limit]),
        limit=params.limit,
        offset=params.offset,
        next_offset=params.offset + params.limit if more else None,
    )


def window(rows: Sequence[T], params: PageParams) -> Page[T]:
    """A page of an in-memory list (for stores that return whole lists)."""
    return page(rows[params.offset : params.offset + params.fetch], params)
