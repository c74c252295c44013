"""The data behind the evaluation charts: ROC, precision-recall, calibration, confusion, samples.

A test set may hold millions of rows, and a chart of a million points is a report nobody can
open. Every curve here is computed vectorised (one sort, one cumulative sum) and then thinned
to at most ``max_points`` points. Thinning keeps *exact* points of the full curve, picked at
even steps of arc length, never an interpolation: the thinned polyline joins points that are
on the curve, so it cannot cross it, and it strays from it by at most half an arc-length step
(a fraction of a pixel at 200 points on a few hundred pixels). Points agree with
scikit-learn's ``roc_curve`` and ``precision_recall_curve`` at the thresholds kept.

numpy is imported inside the functions, so ``import loopml`` stays lean.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from loopml.errors import InvalidParameterError

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import ArrayLike, NDArray

    Floats = NDArray[np.float64]


def roc_curve(
    y_true: ArrayLike, score: ArrayLike, max_points: int = 200, *, pos_label: Any = 1
) -> tuple[Floats, Floats]:
    """False and true positive rates over thresholds, from ``(0, 0)`` to ``(1, 1)``.

    Args:
        y_true: the labels; ``pos_label`` marks the positive class.
        score: higher means more likely positive (probability or decision function).
        max_points: at most this many points are returned (at least 2).
        pos_label: the label of the positive class.

    Returns:
        ``(fpr, tpr)``, increasing. With at most ``max_points`` points left after
        scikit-learn's ``drop_intermediate``, they are exactly ``sklearn.metrics.roc_curve``'s;
        otherwise a subset of them. With no negatives (positives) the rates are NaN, as there.

    Raises:
        InvalidParameterError: lengths differ, a score is NaN, or ``max_points < 2``.
    """
    import numpy as np

    fps, tps = _counts_at_thresholds(y_true, score, max_points, pos_label)
    if fps.size == 0:
        return fps, tps
    if fps.size > 2:
        # scikit-learn's drop_intermediate: a point evenly between its neighbours adds nothing
        keep = np.r_[True, (np.diff(fps, 2) != 0) | (np.diff(tps, 2) != 0), True]
        fps, tps = fps[keep], tps[keep]
    fps, tps = np.r_[0.0, fps], np.r_[0.0, tps]
    fpr = fps / fps[-1] if fps[-1] > 0 else np.full(fps.shape, np.nan)
    tpr = tps / tps[-1] if tps[-1] > 0 else np.full(tps.shape, np.nan)
    kept = _thin(fpr, tpr, max_points)
    return fpr[kept], tpr[kept]


def pr_curve(
    y_true: ArrayLike, score: ArrayLike, max_points: int = 200, *, pos_label: Any = 1
) -> tuple[Floats, Floats]:
    """Recall and precision over thresholds, in scikit-learn's order (recall decreasing to 0).

    Returns:
        ``(recall, precision)``, ending at ``(0, 1)``. With at most ``max_points`` distinct
        thresholds they are exactly ``sklearn.metrics.precision_recall_curve``'s (default
        ``drop_intermediate=False``); otherwise a subset of them. With no positives recall is 1
        everywhere, as there.

    Raises:
        InvalidParameterError: lengths differ, a score is NaN, or ``max_points < 2``.
    """
    import numpy as np

    fps, tps = _counts_at_thresholds(y_true, score, max_points, pos_label)
    if fps.size == 0:
        return fps, tps
    if fps.size + 1 > max_points and fps.size > 2:
        # points between the first and last of a run with the same tps lie on one vertical
        # segment (same recall): dropping them loses nothing and shortens what is thinned
        keep = np.r_[True, (np.diff(tps[:-1]) != 0) | (np.diff(tps[1:]) != 0), True]
        fps, tps = fps[keep], tps[keep]
    predicted = tps + fps
    precision = np.divide(tps, predicted, out=np.zeros_like(tps), where=predicted != 0)
    recall = tps / tps[-1] if tps.size and tps[-1] > 0 else np.ones_like(tps)
    recall, precision = np.r_[recall[::-1], 0.0], np.r_[precision[::-1], 1.0]
    kept = _thin(recall, precision, max_points)
    return recall[kept], precision[kept]


def calibration(
    y_true: ArrayLike, score: ArrayLike, bins: int = 10, *, pos_label: Any = 1
) -> tuple[Floats, Floats, NDArray[np.int64]]:
    """Reliability of probabilities: ``bins`` equal-width bins over ``[0, 1]``.

    Returns:
        ``(mean_predicted, fraction_positive, count)`` for the non-empty bins, in bin order;
        the first two equal ``sklearn.calibration.calibration_curve(strategy="uniform")``'s
        ``prob_pred`` and ``prob_true``.

    Raises:
        InvalidParameterError: lengths differ, ``bins < 1``, or a score is outside ``[0, 1]``
        (or NaN).
    """
    import numpy as np

    positive, values = _checked(y_true, score, pos_label)
    if bins < 1:
        raise InvalidParameterError(f"calibration: bins={bins!r}; expected an integer >= 1.")
    outside = int(np.count_nonzero(~((values >= 0) & (values <= 1))))
    if outside:
        raise InvalidParameterError(
            f"calibration: {outside} scores are outside [0, 1] or NaN; expected probabilities. "
            "Pass predict_proba's column for the positive class."
        )
    edges = np.linspace(0.0, 1.0, bins + 1)
    # the same bin of each score as scikit-learn: a score on an inner edge goes to the left bin
    ids = np.searchsorted(edges[1:-1], values)
    total = np.bincount(ids, minlength=bins)
    sums = np.bincount(ids, weights=values, minlength=bins)
    hits = np.bincount(ids, weights=positive.astype(np.float64), minlength=bins)
    full = total != 0
    return sums[full] / total[full], hits[full] / total[full], total[full].astype(np.int64)


def confusion(y_true_codes: ArrayLike, y_pred_codes: ArrayLike, k: int) -> NDArray[np.int64]:
    """``k × k`` counts: row = true class code, column = predicted class code (``0 … k-1``).

    Raises:
        InvalidParameterError: lengths differ, or a code is outside ``0 … k-1`` (e.g. ``-1``,
        pandas' code for a missing category).
    """
    import numpy as np

    true = np.asarray(y_true_codes).ravel()
    pred = np.asarray(y_pred_codes).ravel()
    if true.shape != pred.shape:
        raise InvalidParameterError(
            f"confusion: {true.size} true codes and {pred.size} predicted codes; "
            "expected one of each per row."
        )
    if k < 1:
        raise InvalidParameterError(f"confusion: k={k!r}; expected at least one class.")
    for name, codes in (("true", true), ("predicted", pred)):
        bad = (codes < 0) | (codes >= k) | (codes != np.floor(codes))
        if np.any(bad):
            raise InvalidParameterError(
                f"confusion: {int(np.count_nonzero(bad))} {name} codes are not integers in "
                f"0..{k - 1} (first: {codes[bad][0]!r}); encode the classes as 0..k-1 and "
                "drop or label the missing ones first."
            )
    cells = true.astype(np.int64) * k + pred.astype(np.int64)
    return np.bincount(cells, minlength=k * k).reshape(k, k).astype(np.int64)


def sample_points(
    x: ArrayLike, y: ArrayLike, max_points: int = 2000, seed: int = 0
) -> tuple[Floats, Floats]:
    """At most ``max_points`` of the finite ``(x, y)`` pairs, the same ones on every call.

    A seeded uniform sample, in the original order, that always keeps the pairs holding the
    smallest and largest ``x`` and ``y``, so a scatter plot of the sample spans the same ranges
    as the full data. Pairs with a NaN or infinite coordinate are dropped first.
    """
    import numpy as np

    xs = np.asarray(x, dtype=np.float64).ravel()
    ys = np.asarray(y, dtype=np.float64).ravel()
    if xs.shape != ys.shape:
        raise InvalidParameterError(
            f"sample_points: {xs.size} x values and {ys.size} y values; expected pairs."
        )
    finite = np.isfinite(xs) & np.isfinite(ys)
    if not finite.all():
        xs, ys = xs[finite], ys[finite]
    if xs.size <= max_points:
        return xs, ys
    extremes = np.unique([xs.argmin(), xs.argmax(), ys.argmin(), ys.argmax()])
    rng = np.random.default_rng(seed)
    chosen = rng.choice(xs.size, size=max(max_points - extremes.size, 0), replace=False)
    kept = np.union1d(chosen, extremes)[:max_points]
    return xs[kept], ys[kept]


def _checked(y_true: ArrayLike, score: ArrayLike, pos_label: Any) -> tuple[Any, Floats]:
    import numpy as np

    labels = np.asarray(y_true).ravel()
    values = np.asarray(score, dtype=np.float64).ravel()
    if labels.shape != values.shape:
        raise InvalidParameterError(
            f"{labels.size} labels and {values.size} scores; expected one score per row."
        )
    return labels == pos_label, values


def _counts_at_thresholds(
    y_true: ArrayLike, score: ArrayLike, max_points: int, pos_label: Any
) -> tuple[Floats, Floats]:
    """False and true positives at each distinct score, highest first (sklearn's algorithm)."""
    import numpy as np

    if max_points < 2:
        raise InvalidParameterError(f"max_points={max_points!r}; expected at least 2.")
    positive, values = _checked(y_true, score, pos_label)
    nans = int(np.count_nonzero(np.isnan(values)))
    if nans:
        raise InvalidParameterError(
            f"{nans} scores are NaN; expected a number per row. Drop those rows or fill them."
        )
    # no stable sort needed: only the counts at the end of each run of equal scores are kept,
    # and those do not depend on the order inside the run
    order = np.argsort(-values)
    values, positive = values[order], positive[order]
    # the last row of each run of equal scores: one threshold per distinct score
    ends = np.r_[np.flatnonzero(np.diff(values)), values.size - 1] if values.size else order
    tps = np.cumsum(positive, dtype=np.float64)[ends]
    fps = 1.0 + ends - tps
    return fps, tps


def _thin(xs: Floats, ys: Floats, max_points: int) -> NDArray[np.intp]:
    """Indices of at most ``max_points`` points at even steps of arc length, ends included."""
    import numpy as np

    if xs.size <= max_points:
        return np.arange(xs.size)
    step = np.hypot(np.diff(xs), np.diff(ys))
    step[~np.isfinite(step)] = 0.0  # NaN curves (one class only) keep evenly spaced indices
    along = np.r_[0.0, np.cumsum(step)]
    if along[-1] <= 0:
        return np.unique(np.linspace(0, xs.size - 1, max_points).round().astype(np.intp))
    # long straight segments take many targets to one point: ask for more targets while
    # the points found leave room, never returning more than max_points
    best = np.r_[0, xs.size - 1]
    wanted = max_points
    for _ in range(4):
        targets = np.linspace(0.0, along[-1], wanted)
        picked = np.unique(np.r_[np.searchsorted(along, targets[:-1], side="left"), xs.size - 1])
        if picked.size > max_points:
            break
        best = picked
        if picked.size > 0.9 * max_points:
            break
        wanted = int(wanted * max_points / picked.size) + 1
    indices: NDArray[np.intp] = best.astype(np.intp)
    return indices
