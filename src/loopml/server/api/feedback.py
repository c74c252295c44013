"""Feedback: the ground truth for logged predictions, as the serving app's ``/feedback`` takes it.

Same body (``{"prediction_id", "label"}``, a list of them, or ``{"feedback": [...]}``), same
limits and the same store table, read by the same ``feedback_items``: a label sent here or
to ``loopml serve`` is one and the same thing to monitoring.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from loopml.server.api.deps import Client
from loopml.server.api.limits import MAX_BODY_BYTES, capped_router
from loopml.server.errors import ErrorBody
from loopml.serving.bodies import Limits
from loopml.store.predictions import PREDICTION_ID

router = capped_router(tags=["predictions"])
_MAX_ITEMS = Limits().max_rows


class FeedbackItem(BaseModel):
    """One label; what ``feedback_items`` checks, stated for clients."""

    model_config = ConfigDict(extra="forbid")

    prediction_id: str = Field(
        pattern=f"^{PREDICTION_ID.pattern}$",
        max_length=64,
        description="An id answered by /predict.",
    )
    label: Annotated[str, Field(max_length=1000)] | int | float | bool = Field(
        description="The true value: a number, text (at most 1,000 characters) or true/false."
    )


_ITEM = FeedbackItem.model_json_schema()
_ITEMS = {"type": "array", "items": _ITEM, "maxItems": _MAX_ITEMS}
_BODY = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "oneOf": [
                    _ITEM,
                    _ITEMS,
                    {
                        "type": "object",
                        "properties": {"feedback": _ITEMS},
                        "required": ["feedback"],
                        "additionalProperties": False,
                    },
                ]
            },
            "example": {"prediction_id": "p-1a2b", "label": 1},
        }
    },
}


class FeedbackOut(BaseModel):
    accepted: int


@router.post(
    "/predictions/feedback",
    summary="Attach the ground truth to prediction ids",
    openapi_extra={"requestBody": _BODY},
    responses={
        200: {"model": FeedbackOut},
        415: {"model": ErrorBody, "description": "The body is not application/json."},
    },
)
async def feedback(request: Request, client: Client) -> Response:
    """Store one label per prediction id (a later label replaces an earlier one)."""
    from loopml.serving.bodies import Limits, RequestError, feedback_items, media_type

    try:
        if media_type(request.headers.get("content-type")) != "json":
            raise RequestError.one(
                415, ["header", "content-type"], "Send feedback as application/json.", "media"
            )
        items = feedback_items(await request.body(), Limits(max_body_bytes=MAX_BODY_BYTES))
    except RequestError as exc:
        return JSONResponse({"detail": exc.detail}, exc.status)
    await asyncio.to_thread(client.metadata.predictions.add_feedback, items)
    return JSONResponse({"accepted": len(items)})
