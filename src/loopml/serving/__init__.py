"""Serving registered models: online over HTTP, in batches from files, and exported.

- ``served`` — a model version made ready to answer: its input check compiled once, its
  runtime chosen once (ONNX Runtime when the export matches the native model, the native
  model otherwise).
- ``onnx`` — converting scikit-learn, XGBoost and LightGBM models to ONNX, the parity check,
  int8 quantization.
- ``bodies`` — request bodies (JSON records or columns, CSV, Parquet) to columns, with limits.
- ``app`` — the ASGI app: ``/predict``, ``/feedback``, ``/health``, ``/ready``, ``/metrics``,
  ``/schema``, following an alias, splitting and shadowing traffic; ``asgi`` (the token
  guard and the ``/predict`` fast path), ``metrics`` (Prometheus), ``openapi`` (the request
  schema from the model's columns), ``server`` (uvicorn, safe binding, ``serve_background``).
- ``logbook`` — predictions logged in batches off the request path, feedback joined to them;
  ``ids`` the prediction ids, ``jsonable`` numpy values as JSON.
- ``batch`` — scoring a CSV or Parquet file in chunks, memory flat in the input size
  (``chunks`` reads, ``sinks`` writes).
- ``export`` — ONNX files and Docker build contexts.
"""

from __future__ import annotations

import importlib
from typing import Any

# The entry points, loaded on first use (FastAPI and uvicorn only when serving).
_EXPORTS = {
    "create_app": "loopml.serving.app",
    "serve_background": "loopml.serving.server",
    "load_served": "loopml.serving.served",
    "ServedModel": "loopml.serving.served",
    "predictions": "loopml.serving.logbook",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'loopml.serving' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
