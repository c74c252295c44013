"""Serving test helpers: registered models to serve, and a real uvicorn server on loopback.

``running(app)`` starts the app on uvicorn (httptools, uvloop) in a thread of the test
process, on a free port of 127.0.0.1, and yields its base URL once it accepts connections
(an event, not a sleep); leaving the block shuts it down cleanly (lifespan shutdown runs,
so the prediction log is drained).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pandas as pd


def churn_frame(n: int = 400, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    """A small mixed-type table: integer, float and a text category, and a binary target."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {
            "age": rng.integers(18, 80, n),
            "income": rng.normal(50.0, 10.0, n),
            "plan": rng.choice(["basic", "pro", "team"], n),
        }
    )
    y = ((X["age"] > 45) ^ (X["plan"] == "pro")).astype(int)
    return X, y


def register_classifier(name: str = "churn", *, C: float = 1.0, client: Any = None) -> Any:
    """A scikit-learn pipeline (scaler + one-hot + logistic regression), registered."""
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    import loopml

    X, y = churn_frame()
    model = make_pipeline(
        ColumnTransformer(
            [("num", StandardScaler(), ["age", "income"]), ("cat", OneHotEncoder(), ["plan"])]
        ),
        LogisticRegression(C=C, max_iter=500),
    ).fit(X, y)
    version, _ = loopml.register(name, model, X=X, client=client)
    return version, model


def register_regressor(name: str = "price", *, client: Any = None) -> Any:
    """A numeric-only regressor (gradient boosting on the diabetes data), registered."""
    from sklearn.datasets import load_diabetes
    from sklearn.ensemble import GradientBoostingRegressor

    import loopml

    data = load_diabetes(as_frame=True)
    X = data.data
    model = GradientBoostingRegressor(n_estimators=20, random_state=0).fit(X, data.target)
    version, _ = loopml.register(name, model, X=X, client=client)
    return version, model


@contextmanager
def running(app: Any) -> Iterator[str]:
    """Serve ``app`` on a free loopback port; yields ``http://127.0.0.1:PORT``."""
    from loopml.serving.server import serve_background

    with serve_background(app) as server:
        yield server.url
