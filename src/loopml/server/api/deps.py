"""What routes take as arguments: the store's ``Client`` and the caller."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request

from loopml.server.auth import Principal

if TYPE_CHECKING:
    from loopml.tracking.client import Client as ClientType


def _client(request: Request) -> ClientType:
    return request.app.state.loopml.client  # type: ignore[no-any-return]


def _principal(request: Request) -> Principal:
    return request.state.principal  # type: ignore[no-any-return]


Client = Annotated["ClientType", Depends(_client)]
Caller = Annotated[Principal, Depends(_principal)]
