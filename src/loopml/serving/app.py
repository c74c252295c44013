"""The online serving app: one ASGI app per served reference, built by :func:`create_app`.

Routes:

- ``POST /predict`` — rows in (see ``bodies``), predictions out, with one prediction id per
  row, the version and variant that answered, and class probabilities for classifiers.
- ``POST /feedback`` — the ground truth for prediction ids, joined to the logged predictions.
- ``GET /health`` (the process answers), ``GET /ready`` (every variant has a model loaded),
  ``GET /metrics`` (Prometheus), ``GET /schema`` (the input columns), ``/openapi.json`` and
  ``/docs`` (whose request schema is the model's input columns).

The request path does only what must be done per request: read the body (counting bytes as
they stream in), decode it, check it (fast path or the full check), predict, and queue the
batch for the prediction log. Loading models, converting them to ONNX and compiling the
check happen at start-up or in the background when a followed alias moves: the new version
is loaded and checked first, and then swapped in with one assignment, so no request fails
or waits during a switch.

``split`` sends a share of requests to challengers (each response and logged row says
which variant answered); ``shadow`` scores every request with another model after the
answer is sent, logging its predictions next to the answered ones (``shadow:REF``), on one
background thread with a bounded backlog so the answered path never waits for it.
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from starlette.responses import JSONResponse, Response

from loopml.errors import InvalidParameterError, LoopmlError
from loopml.serving.asgi import PredictFastPath, TokenGuard, receive_body
from loopml.serving.bodies import (
    Limits,
    Parsed,
    RequestError,
    feedback_items,
    media_type,
    parse,
    short,
)
from loopml.serving.ids import new_ids
from loopml.serving.metrics import ServeMetrics

if TYPE_CHECKING:
    from loopml.serving.logbook import PredictionLog
    from loopml.serving.served import Checked, Outputs, ServedModel
    from loopml.tracking.client import Client

log = logging.getLogger("loopml.serve")


INLINE_ROWS = 2_000  # bigger batches are scored on a worker thread, so /health stays quick
SHADOW_BACKLOG = 64  # shadow batches waiting past this are skipped (and counted)


@dataclass
class Variant:
    """One served reference: the model answering for it now, and its share of traffic."""

    ref: str
    percent: float
    served: ServedModel
    moving: bool  # an alias or "latest": follow it
    switches: int = 0
    follow_error: str | None = None
    failed_number: int | None = None  # a version that would not load: not retried each poll

    @property
    def label(self) -> str:
        return self.ref


@dataclass
class ServeState:
    """Everything the routes share; one per app."""

    variants: list[Variant]
    shadow: Variant | None
    client: Client
    runtime: str
    limits: Limits
    log: PredictionLog | None
    follow_seconds: float
    metrics: Any
    shadow_pool: ThreadPoolExecutor | None = None
    shadow_slots: threading.BoundedSemaphore = field(
        default_factory=lambda: threading.BoundedSemaphore(SHADOW_BACKLOG)
    )
    stopping: asyncio.Event | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @property
    def primary(self) -> Variant:
        return self.variants[0]

    def pick(self) -> Variant:
        if len(self.variants) == 1:
            return self.variants[0]
        roll = random.random() * 100.0
        for variant in self.variants[1:]:
            if roll < variant.percent:
                return variant
            roll -= variant.percent
        return self.variants[0]


def parse_split(values: list[str] | tuple[str, ...]) -> list[tuple[str, float]]:
    """``["churn@staging=10"]`` → ``[("churn@staging", 10.0)]``; the shares sum below 100."""
    out: list[tuple[str, float]] = []
    for value in values:
        ref, sep, pct = str(value).rpartition("=")
        try:
            share = float(pct)
        except ValueError:
            share = -1.0
        if not sep or not ref or not 0 < share < 100:
            raise InvalidParameterError(
                f"--split {value!r}: expected REF=PERCENT with a percent between 0 and 100, "
                "e.g. churn@staging=10 to send 10 % of requests to churn@staging."
            )
        out.append((ref, share))
    if sum(p for _, p in out) >= 100:
        raise InvalidParameterError(
            f"--split: the challengers' shares sum to {sum(p for _, p in out):g} %; they must "
            "leave the served model some traffic (below 100 % in total)."
        )
    return out


def create_app(
    ref: str,
    *,
    split: list[tuple[str, float]] | None = None,
    shadow: str | None = None,
    runtime: str = "auto",
    limits: Limits | None = None,
    log_sample: float = 1.0,
    follow_seconds: float = 2.0,
    token: str | None = None,
    client: Client | None = None,
    docs: bool = True,
) -> FastAPI:
    """The serving app for ``ref`` (``churn@production``), its models loaded now.

    Args:
        ref: the model reference to serve; an alias or ``NAME`` (latest) is followed.
        split: ``[(challenger_ref, percent), ...]``: shares of requests answered by others.
        shadow: a reference scored on every request in the background, never answered.
        runtime: ``auto`` (ONNX Runtime when its answers match), ``onnx`` or ``native``.
        limits: body, row and column limits per request.
        log_sample: the share of requests whose predictions are logged (0 turns it off).
        follow_seconds: how often moving references are checked (0: never).
        token: when set, every route but ``/health`` and ``/ready`` needs
            ``Authorization: Bearer TOKEN``.
        client: the store (default: the project's).
        docs: serve ``/docs`` and ``/openapi.json``.

    Raises:
        NotFoundError / InvalidParameterError: a reference that does not resolve, a model
            without an input schema, a runtime that cannot be had.
    """
    from loopml.tracking.client import given_or_default

    c = given_or_default(client)
    limits = limits or Limits()
    variants = [_variant(ref, 100.0, runtime, c)]
    for other, percent in split or []:
        variants.append(_variant(other, percent, runtime, c))
        variants[0].percent -= percent
    shadow_variant = _variant(shadow, 0.0, runtime, c) if shadow else None
    for v in [*variants, *([shadow_variant] if shadow_variant else [])]:
        if v.served.schema is None:
            raise InvalidParameterError(
                f"{v.served.label} has no input schema, so requests cannot be checked against "
                "it. Register it again with X= (its training frame): loopml.register(name, "
                "model, X=X_train)."
            )
    prediction_log = None
    if log_sample > 0:
        from loopml.serving.logbook import PredictionLog

        prediction_log = PredictionLog(c, sample_rate=log_sample)
    state = ServeState(
        variants=variants,
        shadow=shadow_variant,
        client=c,
        runtime=runtime,
        limits=limits,
        log=prediction_log,
        follow_seconds=follow_seconds,
        metrics=None,
    )
    state.metrics = ServeMetrics(state)
    if shadow_variant is not None:
        state.shadow_pool = ThreadPoolExecutor(1, thread_name_prefix="loopml-shadow")

    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> Any:
        state.stopping = asyncio.Event()
        if follow_seconds > 0 and any(v.moving for v in _all(state)):
            state.tasks.append(asyncio.create_task(_follow(state)))
        try:
            yield
        finally:
            state.stopping.set()
            for task in state.tasks:
                task.cancel()
            if state.shadow_pool is not None:
                await asyncio.to_thread(state.shadow_pool.shutdown, wait=True)
            if state.log is not None:
                await asyncio.to_thread(state.log.close)

    import inspect

    quiet: dict[str, Any] = {}
    if "telemetry" in inspect.signature(FastAPI.__init__).parameters:
        # FastAPI's OpenTelemetry hook asks its providers on every request, which costs a
        # tenth of a one-row prediction; /metrics is this server's telemetry.
        quiet["telemetry"] = {"tracing": False, "metrics": False, "logs": False}
    app = FastAPI(
        **quiet,
        title=f"loopml serve {ref}",
        version=str(variants[0].served.version.number),
        description=f"Predictions of {ref}. POST rows to /predict; see /schema for the columns.",
        lifespan=lifespan,
        docs_url="/docs" if docs else None,
        redoc_url=None,
        openapi_url="/openapi.json" if docs else None,
    )
    app.state.serve = state
    _routes(app, state)
    if token:
        app.add_middleware(TokenGuard, token=token)
    return app


def _variant(ref: str, percent: float, runtime: str, client: Client) -> Variant:
    from loopml.serving.served import load_served

    served = load_served(ref, runtime=runtime, client=client)
    _, _, tail = ref.partition("@")
    return Variant(ref, percent, served, moving=not tail.isdigit())


def _all(state: ServeState) -> list[Variant]:
    return [*state.variants, *([state.shadow] if state.shadow else [])]


# -- the routes ----------------------------------------------------------------------------


def _routes(app: FastAPI, state: ServeState) -> None:
    import orjson

    metrics = state.metrics
    option = orjson.OPT_SERIALIZE_NUMPY

    def refusal(exc: RequestError) -> bytes:
        try:
            return orjson.dumps({"detail": exc.detail})
        except TypeError:  # text orjson refuses (a lone surrogate in a column name): escape it
            import json

            return json.dumps({"detail": exc.detail}, default=str).encode()

    def refuse(exc: RequestError) -> Response:
        return Response(refusal(exc), exc.status, media_type="application/json")

    @app.exception_handler(RequestError)
    async def _refused(_: Request, exc: RequestError) -> Response:
        return refuse(exc)

    @app.post(
        "/predict",
        summary="Predict for rows",
        openapi_extra={"requestBody": {"required": True, "content": {}}},
        responses={
            200: {"description": "One prediction (and id) per row."},
            400: {"description": "The body cannot be decoded."},
            413: {"description": "Over the body or row limit."},
            415: {"description": "An unsupported Content-Type."},
            422: {"description": "Rows that do not fit the model's schema."},
        },
    )
    async def predict(request: Request) -> Response:
        # Reached only when the fast path below is bypassed (the app mounted inside another).
        status, content = await answer(
            request.headers.get("content-type"),
            lambda: read_body(request, state.limits.max_body_bytes),
        )
        return Response(content, status, media_type="application/json")

    async def answer(
        content_type: str | None, read: Callable[[], Awaitable[bytes]]
    ) -> tuple[int, bytes]:
        """``POST /predict``: the status and the JSON body of the answer."""
        started = time.perf_counter()
        try:
            kind = media_type(content_type)
            parsed = parse(kind, await read(), state.limits)
            variant = state.pick()
            served = variant.served
            batch = check(served, parsed)
            outputs = await _predict(served, batch)
        except RequestError as exc:
            metrics.done("predict", exc.status, started)
            return exc.status, refusal(exc)
        ids = new_ids(batch.n)
        version = served.version
        payload: dict[str, Any] = {
            "model": version.name,
            "version": version.number,
            "variant": variant.label,
            "prediction_ids": ids,
            "predictions": _array(outputs.predictions),
        }
        if outputs.probabilities is not None:
            payload["classes"] = outputs.classes
            payload["probabilities"] = outputs.probabilities
        content = orjson.dumps(payload, option=option)
        if state.log is not None and state.log.sampled():
            state.log.submit(
                version.name,
                version.number,
                variant.label,
                ids,
                batch,
                outputs,
                latency_ms=(time.perf_counter() - started) * 1000,
            )
        if state.shadow is not None:
            _shadow(state, parsed, ids)
        metrics.predicted(variant, outputs, batch.n)
        metrics.done("predict", 200, started)
        return 200, content

    app.add_middleware(PredictFastPath, answer=answer, cap=state.limits.max_body_bytes)

    @app.post("/feedback", summary="Attach the ground truth to prediction ids")
    async def feedback(request: Request) -> Response:
        started = time.perf_counter()
        try:
            if media_type(request.headers.get("content-type")) != "json":
                raise RequestError.one(
                    415,
                    ["header", "content-type"],
                    "Send feedback as application/json.",
                    "unsupported_media_type",
                )
            body = await read_body(request, state.limits.max_body_bytes)
            items = feedback_items(body, state.limits)
            await asyncio.to_thread(state.client.open().metadata.predictions.add_feedback, items)
        except RequestError as exc:
            metrics.done("feedback", exc.status, started)
            return refuse(exc)
        metrics.done("feedback", 200, started)
        return JSONResponse({"accepted": len(items)})

    @app.get("/health", summary="The process answers")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/ready", summary="Every variant has its model loaded")
    async def ready() -> Response:
        body = {
            "ready": True,
            "variants": [
                {
                    "ref": v.ref,
                    "version": v.served.version.number,
                    "runtime": v.served.runtime,
                    "percent": v.percent,
                    **({"follow_error": v.follow_error} if v.follow_error else {}),
                }
                for v in _all(state)
            ],
        }
        return JSONResponse(body)

    @app.get("/schema", summary="The model's input columns and outputs")
    async def schema() -> dict[str, Any]:
        served = state.primary.served
        return {
            "model": served.version.name,
            "version": served.version.number,
            "inputs": (served.version.input_schema or {}).get("inputs", []),
            "outputs": served.version.output_schema,
        }

    @app.get("/metrics", summary="Prometheus metrics", include_in_schema=True)
    async def prometheus() -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    original = app.openapi

    def openapi() -> dict[str, Any]:
        doc = original()
        from loopml.serving.openapi import request_body

        doc["paths"]["/predict"]["post"]["requestBody"] = request_body(state.primary.served)
        return doc

    app.openapi = openapi  # type: ignore[method-assign]


async def read_body(request: Request, cap: int) -> bytes:
    """The body, counted as it streams in: over ``cap`` bytes is a 413 before it is kept."""
    declared = request.headers.get("content-length", "")
    return await receive_body(request.receive, int(declared) if declared.isdigit() else -1, cap)


def check(served: ServedModel, parsed: Parsed) -> Checked:
    """The parsed body checked against ``served``'s schema; 422 naming every problem."""
    from loopml.registry.schema_checks import SchemaError

    try:
        if parsed.columns is not None:
            return served.check_columns(parsed.columns, parsed.n)
        if parsed.records is not None:
            records = parsed.records
            names = served.schema.names if served.schema is not None else []
            try:
                columns = {name: [r[name] for r in records] for name in names}
            except KeyError:  # some record lacks a column: the full check names it
                import pandas as pd

                return served.check(
                    pd.DataFrame.from_records(records) if records else pd.DataFrame(index=range(0))
                )
            return served.check_columns(columns, parsed.n)
        return served.check(parsed.frame)
    except SchemaError as exc:
        raise RequestError(422, [_problem(p) for p in exc.problems]) from None
    except InvalidParameterError as exc:
        raise RequestError.one(422, ["body"], short(str(exc), 400), "input") from None


def _problem(p: Any) -> dict[str, Any]:
    loc: list[Any] = ["body"] if p.column is None else ["body", p.column]
    out = {
        "loc": loc,
        "msg": short(p.describe(), 600),
        "type": p.rule,
        "expected": short(p.expected, 200),
        "got": short(p.got, 300),
    }
    if p.rows:
        out["rows"] = list(p.rows)
    return out


async def _predict(served: ServedModel, batch: Checked) -> Outputs:
    if batch.n == 0:  # a valid empty batch; most models refuse zero rows
        import numpy as np

        from loopml.serving.served import Outputs

        classes = served.classes
        probabilities = np.empty((0, len(classes))) if classes is not None else None
        return Outputs(np.empty(0), probabilities, classes)
    try:
        if batch.n > INLINE_ROWS:
            return await asyncio.to_thread(served.predict, batch)
        return served.predict(batch)
    except LoopmlError as exc:
        raise RequestError.one(422, ["body"], short(str(exc), 400), "input") from None
    except (
        ValueError,
        ArithmeticError,
        RuntimeWarning,
    ) as exc:  # refused rows that passed the check
        log.warning("%s could not score a batch: %s", served.label, short(str(exc), 300))
        raise RequestError(422, _unscorable(batch, exc)) from None
    except Exception as exc:  # the model itself failed on checked input: a server fault
        log.exception("%s failed on a checked batch of %d rows", served.label, batch.n)
        raise RequestError.one(
            500,
            ["model"],
            f"{served.label} failed on this input ({type(exc).__name__}); the server log has "
            "the details.",
            "model_error",
        ) from None


def _unscorable(batch: Checked, exc: Exception) -> list[dict[str, Any]]:
    """Name the float columns holding numbers beyond float32 (what tree models compute in,
    and the usual reason a checked, finite batch is refused); else the model's words."""
    import numpy as np

    limit = float(np.finfo(np.float32).max)
    out = []
    for name, values in batch.columns().items():
        if values.dtype.kind == "f":
            with np.errstate(invalid="ignore"):
                rows = np.flatnonzero(np.abs(values) > limit)
            if len(rows):
                out.append(
                    {
                        "loc": ["body", name],
                        "msg": f"column {short(name, 80)}: got numbers beyond ±{limit:.3g} at "
                        f"rows {rows[:5].tolist()}; expected numbers this model can compute in "
                        "(32-bit floats).",
                        "type": "out_of_range",
                        "rows": rows[:5].tolist(),
                    }
                )
    if out:
        return out
    return [
        {
            "loc": ["body"],
            "msg": f"The model cannot score these rows: {short(str(exc), 300)}",
            "type": "model_refused",
        }
    ]


def _array(values: Any) -> Any:
    """numpy predictions as orjson serializes them (object arrays as lists)."""
    if values.dtype.kind == "O" or values.dtype.kind == "U":
        from loopml.serving.jsonable import column_values

        return column_values(values)
    return values


# -- shadow and following ------------------------------------------------------------------


def _shadow(state: ServeState, parsed: Parsed, ids: list[str]) -> None:
    pool, shadow = state.shadow_pool, state.shadow
    assert pool is not None and shadow is not None
    if not state.shadow_slots.acquire(blocking=False):
        state.metrics.shadow_skipped.inc(len(ids))
        return

    def score() -> None:
        try:
            served = shadow.served
            batch = check(served, parsed)
            outputs = served.predict(batch)
            if state.log is not None:
                version = served.version
                state.log.submit(
                    version.name,
                    version.number,
                    f"shadow:{shadow.ref}",
                    [f"{i}.s" for i in ids],
                    batch,
                    outputs,
                    shadow_of=ids,
                )
        except Exception as exc:  # a failing challenger must never touch the answered path
            state.metrics.shadow_failed.inc(len(ids))
            log.warning("shadow %s failed: %s", shadow.ref, exc)
        finally:
            state.shadow_slots.release()

    pool.submit(score)


async def _follow(state: ServeState) -> None:
    """Check moving references every ``follow_seconds``; load a new version, then swap."""
    from loopml.serving.served import serve_version

    stopping = state.stopping
    assert stopping is not None
    while not stopping.is_set():
        try:
            await asyncio.wait_for(stopping.wait(), state.follow_seconds)
            return
        except TimeoutError:
            pass
        for variant in _all(state):
            if not variant.moving:
                continue
            version = None
            try:
                version = await asyncio.to_thread(state.client.model_version, variant.ref)
                if version.number == variant.served.version.number:
                    variant.follow_error = None
                    continue
                if version.number == variant.failed_number:
                    continue  # tried and failed; wait for the alias to move again
                model = await asyncio.to_thread(state.client.load_artifact, version.digest)
                served = await asyncio.to_thread(
                    serve_version, version, model, runtime=state.runtime, client=state.client
                )
                if served.schema is None:
                    raise InvalidParameterError(f"{version.label} has no input schema")
            except Exception as exc:  # keep answering with the loaded version
                if version is not None:
                    variant.failed_number = version.number
                variant.follow_error = f"{type(exc).__name__}: {short(str(exc), 300)}"
                log.warning("following %s: %s", variant.ref, variant.follow_error)
                continue
            old = variant.served.version.number
            variant.served = served  # one assignment: requests see the old or the new model
            variant.switches += 1
            variant.follow_error = None
            state.metrics.switched(variant)
            log.warning("%s moved from version %s to %s", variant.ref, old, version.number)
