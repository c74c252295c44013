"""Confidence intervals by bootstrap, and the paired bootstrap that compares two models.

Speed is the point: 1,000 resamples of a 1,000,000-row test set are 10⁹ row draws, far too
many to copy rows and call scikit-learn per resample. So a resample is a vector of per-row
*counts* and every built-in metric is evaluated from weighted sums (``_weighted.py``),
many resamples per pass, on two threads (numpy releases the GIL in these loops).

**Poisson bootstrap.** Each row's count is drawn independently from Poisson(1) instead of
from one Multinomial(n, 1/n) per resample (Hanley & MacGibbon 2006; Chamandy et al. 2012,
"Estimating uncertainty for massive data streams"). Independent counts can be generated
block by block without ever materialising n indices, which is what makes it fast; the
multinomial counts converge to independent Poisson(1) as n grows, and every metric here
is a ratio normalised by the resample's own weight, so the varying resample size (n ± √n)
does not widen the intervals to first order. Counts come from 16 random bits through a
table of the Poisson(1) CDF, so each count's probability is within 2⁻¹⁶ of Poisson(1)
(counts above 7, probability 1e-5, are folded into 7): far below the Monte-Carlo error
of 1,000 resamples. Resample ``r`` of row block ``q`` draws from its own generator keyed
by ``(seed, r // 8, q)``, so the same seed gives the same intervals whatever the chunking
or thread count. Counts are indexed in the metrics' work order (rows sorted by score for
ranked metrics); :func:`resample_counts` reproduces them for checking.

**Undefined resamples.** A metric that is undefined on a resample (AUC with one class
drawn, F1 with nothing positive…) is NaN there; it is left out of the percentiles and
counted in ``Estimate.undefined`` / ``Difference.undefined``. If every resample is
undefined the interval is NaN.

**Paired comparison.** Both models are evaluated on the SAME counts in every resample, so
``diff = a - b`` is the difference in the metric's own units (positive = A scores
higher; for a lower-is-better metric such as log_loss, negative means A is better —
``Difference.better`` says which model is better when the interval excludes 0). The
two-sided p-value is ``min(1, 2 · (k + 1) / (B + 1))`` where ``k`` is the number of
resamples whose difference lies on the other side of 0 from the observed one (ties at 0
count against) and ``B`` the number of defined resamples: identical models give 1,
a model better in every resample gives ``2 / (B + 1)``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from loopml.evaluation.errors import EvaluationError
from loopml.evaluation.metrics import Metric, Predictions, call_custom, check, compute

if TYPE_CHECKING:
    import numpy as np


_GROUP = 8  # resamples per generator
_ROWS = 1 << 16  # rows per generator
_CHUNK = 16  # resamples per task handed to a thread (a multiple of _GROUP)


@dataclass(frozen=True)
class Estimate:
    """A metric's point estimate and its bootstrap percentile interval."""

    value: float
    low: float
    high: float
    undefined: int = 0  # resamples where the metric was undefined (left out of the interval)


@dataclass(frozen=True)
class Difference:
    """Model A versus model B on one metric: ``diff = a - b``, its interval and p-value."""

    a: float
    b: float
    diff: float
    low: float
    high: float
    p_value: float
    undefined: int = 0
    higher_is_better: bool = True

    @property
    def better(self) -> Literal["a", "b"] | None:
        """The better model when the interval excludes 0, else None."""
        if not (self.low > 0 or self.high < 0):
            return None
        return "a" if (self.low > 0) == self.higher_is_better else "b"


def bootstrap(
    metrics: Sequence[Metric],
    y_true: np.ndarray,
    pred: Predictions,
    *,
    resamples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Estimate]:
    """Each metric's point estimate with a percentile bootstrap interval.

    Raises:
        EvaluationError: unusable inputs (see ``metrics.check``) or bad settings.

    Example:
        >>> import numpy as np
        >>> from loopml.evaluation.metrics import default_metrics
        >>> y = np.array([0.0, 1.0, 2.0, 3.0]); p = Predictions(values=y + 0.5)
        >>> bootstrap(default_metrics("regression")[:1], y, p, resamples=50)["rmse"].value
        0.5
    """
    import numpy as np

    _settings(resamples, confidence)
    point = compute(metrics, y_true, pred)
    y, clean = check(metrics, y_true, pred)
    values = _resampled(metrics, y, [clean], resamples, seed, progress)[0]
    out = {}
    for m in metrics:
        v = values[m.name]
        ok = v[np.isfinite(v)]
        low, high = _interval(ok, confidence)
        out[m.name] = Estimate(point[m.name], low, high, int(len(v) - len(ok)))
    return out


def paired_bootstrap(
    metrics: Sequence[Metric],
    y_true: np.ndarray,
    pred_a: Predictions,
    pred_b: Predictions,
    *,
    resamples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Difference]:
    """Model A minus model B on the same resampled rows (see the module doc for ``p_value``)."""
    import numpy as np

    _settings(resamples, confidence)
    point_a, point_b = compute(metrics, y_true, pred_a), compute(metrics, y_true, pred_b)
    y, clean_a = check(metrics, y_true, pred_a)
    _, clean_b = check(metrics, y_true, pred_b)
    va, vb = _resampled(metrics, y, [clean_a, clean_b], resamples, seed, progress)
    out = {}
    for m in metrics:
        d = va[m.name] - vb[m.name]
        ok = d[np.isfinite(d)]
        low, high = _interval(ok, confidence)
        observed = point_a[m.name] - point_b[m.name]
        if len(ok) == 0 or not np.isfinite(observed):
            p = float("nan")
        else:
            other = np.count_nonzero(ok <= 0) if observed > 0 else np.count_nonzero(ok >= 0)
            if observed == 0:
                other = min(np.count_nonzero(ok <= 0), np.count_nonzero(ok >= 0))
            p = min(1.0, 2 * (other + 1) / (len(ok) + 1))
        out[m.name] = Difference(
            point_a[m.name], point_b[m.name], observed, low, high, p,
            int(len(d) - len(ok)), m.higher_is_better,
        )  # fmt: skip
    return out


def resample_counts(n: int, *, resamples: int, seed: int = 0, first: int = 0) -> np.ndarray:
    """The Poisson(1) counts of resamples ``first .. first+resamples-1`` (uint8, resamples × n).

    Column ``j`` is the ``j``-th row in the metrics' work order (for binary scores: rows
    sorted by descending score, stable); exposed so tests can replay a bootstrap naively.
    """
    import numpy as np

    g0, g1 = first // _GROUP, -(-(first + resamples) // _GROUP)
    out = np.empty(((g1 - g0) * _GROUP, n), dtype=np.uint8)
    table = _poisson_table()
    for g in range(g0, g1):
        for q0 in range(0, n, _ROWS):
            rows = min(_ROWS, n - q0)
            gen = np.random.SFC64(np.random.SeedSequence(seed, spawn_key=(g, q0 // _ROWS)))
            raw = gen.random_raw(-(-_GROUP * rows // 4)).view(np.uint16)[: _GROUP * rows]
            r = (g - g0) * _GROUP
            np.take(table, raw.reshape(_GROUP, rows), out=out[r : r + _GROUP, q0 : q0 + rows])
    skip = first - g0 * _GROUP
    return out[skip : skip + resamples]


def _poisson_table() -> np.ndarray:
    import math

    import numpy as np

    cdf = np.cumsum([math.exp(-1) / math.factorial(k) for k in range(8)])
    cdf[-1] = 1.0  # counts of 7 and more are one bin
    return np.searchsorted(np.round(cdf * 65536), np.arange(65536), side="right").astype(np.uint8)


def _settings(resamples: int, confidence: float) -> None:
    if not (isinstance(resamples, int) and resamples >= 1):
        raise EvaluationError(
            f"resamples: got {resamples!r}; expected an integer >= 1 (e.g. 1000)."
        )
    if not 0 < confidence < 1:
        raise EvaluationError(
            f"confidence: got {confidence!r}; expected a level in (0, 1), e.g. 0.95."
        )


def _interval(values: np.ndarray, confidence: float) -> tuple[float, float]:
    import numpy as np

    if len(values) == 0:
        return float("nan"), float("nan")
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


def _resampled(
    metrics: Sequence[Metric],
    y: np.ndarray,
    preds: list[Predictions],
    resamples: int,
    seed: int,
    progress: Callable[[int], None] | None,
) -> list[dict[str, np.ndarray]]:
    """Each metric's value on every resample, for each prediction set (same counts for all)."""
    import numpy as np

    from loopml.evaluation._weighted import Plan

    builtin = [m for m in metrics if m.fn is None]
    plans = [Plan(builtin, y, p) for p in preds]
    base = plans[0].order
    rows = np.arange(len(y)) if base is None else base  # work-order position -> row
    inverse = None if base is None else np.argsort(base)
    perms = [_perm(inverse, p.order, len(y)) for p in plans]
    values = [{m.name: np.empty(resamples) for m in metrics} for _ in preds]

    def chunk(r0: int) -> None:
        b = min(_CHUNK, resamples - r0)
        counts = resample_counts(len(y), resamples=b, seed=seed, first=r0)
        for plan, perm, pred, out in zip(plans, perms, preds, values, strict=True):
            mine = counts if perm is None else np.take(counts, perm, axis=1)
            if builtin:
                sums = plan.sums(mine)
                for m in builtin:
                    assert m.finish is not None
                    out[m.name][r0 : r0 + b] = m.finish(sums)
            _custom(metrics, y, pred, rows, counts, out, r0)

    workers = min(2, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="loopml-bootstrap") as pool:
        futures = {pool.submit(chunk, r0): r0 for r0 in range(0, resamples, _CHUNK)}
        done = 0
        for future in as_completed(futures):
            future.result()
            done += min(_CHUNK, resamples - futures[future])
            if progress is not None:
                progress(done)
    return values


def _custom(
    metrics: Sequence[Metric],
    y: np.ndarray,
    pred: Predictions,
    rows: np.ndarray,
    counts: np.ndarray,
    out: dict[str, np.ndarray],
    r0: int,
) -> None:
    import numpy as np

    custom = [m for m in metrics if m.fn is not None]
    for i in range(len(counts) if custom else 0):
        picked = np.repeat(rows, counts[i])
        for m in custom:
            arr = {"scores": pred.scores, "labels": pred.labels, "values": pred.values}[m.needs]
            assert arr is not None
            out[m.name][r0 + i] = call_custom(m, y[picked], arr[picked])


def _perm(inverse: np.ndarray | None, order: np.ndarray | None, n: int) -> np.ndarray | None:
    """Columns of the base work order that make up ``order`` (None when they are the same)."""
    import numpy as np

    if order is None:
        return inverse  # the plan works in row order; base may not
    if inverse is None:
        return order
    perm = inverse[order]
    return None if np.array_equal(perm, np.arange(n)) else perm
