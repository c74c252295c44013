"""A model that is cheap to serve, for tests that send thousands of requests.

The scikit-learn pipeline of ``serve_server.register_classifier`` costs about 15 ms a row
natively on this shared 2-core machine (a ``ColumnTransformer`` on a one-row frame); a
logistic regression on two numeric columns, fitted on an array, costs about 1 ms, so load
tests measure serving rather than scikit-learn.
"""

from __future__ import annotations

from typing import Any

import orjson

import loopml
from serve_server import churn_frame


def register_lean(name: str = "churn", *, C: float = 1.0, client: Any = None) -> Any:
    """A logistic regression on ``age`` and ``income`` (fitted on an array), registered;
    versions registered with another ``C`` give other probabilities."""
    from sklearn.linear_model import LogisticRegression

    X, y = churn_frame()
    X = X[["age", "income"]]
    model = LogisticRegression(C=C).fit(X.to_numpy(), y)
    version, _ = loopml.register(name, model, X=X, client=client)
    return version


def body(i: int, rows: int = 1) -> bytes:
    """A JSON records body of ``rows`` rows for ``register_lean``'s model (varies with i)."""
    records = [{"age": 18 + (i + r) % 60, "income": 40.0 + (i * 7 + r) % 30} for r in range(rows)]
    return orjson.dumps({"records": records})
