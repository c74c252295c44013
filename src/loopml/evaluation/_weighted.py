"""Every built-in metric as weighted sums over the rows, for many weight vectors at once.

Why hand-written rather than scikit-learn's functions: the bootstrap evaluates each metric
on 1,000 resamples of up to millions of rows. Calling ``roc_auc_score`` 1,000 times sorts
the scores 1,000 times and copies the rows each time; here a resample is a vector of
per-row counts (how often each row was drawn), and every metric is a ratio of weighted
sums, so one pass over the rows serves all metrics and many resamples together:

- *linear terms* (log loss, Brier, squared and absolute errors, per-class hits…) are one
  matrix product ``counts @ terms``;
- *ranked terms* (ROC AUC, average precision, and TP/FP at the decision threshold) need
  the rows sorted by score, which is done ONCE; under weights they are cumulative sums
  along the sorted order. Tied scores form groups (weights summed per group), exactly
  as scikit-learn's curves place one point per distinct score.

Rows are processed in blocks of a few tens of thousands, so the arrays of a block
(resamples × rows) stay in cache and memory is bounded whatever ``n`` is. Counts are
small integers, so the cumulative sums are exact in float64, and a weight vector of
ones reproduces scikit-learn's values (checked to 1e-9 in the tests).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

    from loopml.evaluation.metrics import Metric, Predictions

RANKED = frozenset({"auc2", "ap"})
# About 64k float64 cells per array of a block: 512 KiB, inside one core's L2 cache.
_BLOCK_CELLS = 1 << 16
# A tie group larger than a block is processed whole; resamples are then taken a few at a
# time so one array stays under ~64 MB.
_MAX_CELLS = 1 << 23


@dataclass
class _Ranked:
    """The sorted view of binary scores, shared by AUC, AP and the threshold counts."""

    y8: np.ndarray  # labels in sorted order, uint8
    starts: np.ndarray | None  # first row of each tie group; None when no scores tie
    bounds: list[int]  # block boundaries (row indices), on tie-group starts
    positives: list[
        np.ndarray
    ]  # per block: local indices of the units (rows or tie groups) with a positive
    cut: dict[float, int]  # threshold -> number of groups (or rows) scored >= threshold


class Plan:
    """What the weighted sums of ``metrics`` need from ``y``/``pred``, prepared once.

    ``order`` is the work order of the rows (rows sorted by descending score when a
    ranked metric is asked for, else ``None`` = as given): counts passed to :meth:`sums`
    are indexed in that order.
    """

    def __init__(self, metrics: Sequence[Metric], y: np.ndarray, pred: Predictions) -> None:
        import numpy as np

        self.n = len(y)
        terms: list[str] = sorted({t for m in metrics for t in m.terms})
        has_scores = pred.scores is not None and pred.scores.ndim == 1
        self.ranked_terms = [
            t
            for t in terms
            if t in RANKED or (has_scores and (t in ("w", "pos") or t.startswith(("tp@", "pp@"))))
        ]
        if not any(t in RANKED or t.startswith(("tp@", "pp@")) for t in self.ranked_terms):
            self.ranked_terms = []  # only "w"/"pos": cheaper as linear terms
        self.linear_terms = [t for t in terms if t not in self.ranked_terms]
        self.order: np.ndarray | None = None
        self.ranked: _Ranked | None = None
        if self.ranked_terms:
            assert pred.scores is not None
            self.order = np.argsort(-pred.scores, kind="stable")
            self.ranked = _prepare_ranked(pred.scores[self.order], y[self.order], self.ranked_terms)
        columns = [_column(t, y, pred) for t in self.linear_terms]
        self.widths = [1 if c.ndim == 1 else c.shape[1] for c in columns]
        matrix = (
            np.column_stack([c.reshape(self.n, -1) for c in columns])
            if columns
            else np.zeros((self.n, 0))
        )
        self.matrix = np.asfortranarray(matrix if self.order is None else matrix[self.order])

    def sums(self, counts: np.ndarray) -> dict[str, np.ndarray]:
        """Every term's weighted sum for each row of ``counts`` (resamples × rows, work order)."""
        import numpy as np

        b = counts.shape[0]
        linear = np.zeros((b, self.matrix.shape[1]))
        ranked: dict[str, np.ndarray] = {}
        bounds = self.ranked.bounds if self.ranked else _even_bounds(self.n, b)
        widest = max(j1 - j0 for j0, j1 in zip(bounds[:-1], bounds[1:], strict=True))
        step = max(1, min(b, _MAX_CELLS // max(widest, 1)))
        for r0 in range(0, b, step):
            part = counts[r0 : r0 + step]
            carry = np.zeros((len(part), 2))  # running (TP, W) at the end of the last block
            out: dict[str, np.ndarray] = {}
            for k, (j0, j1) in enumerate(zip(bounds[:-1], bounds[1:], strict=True)):
                block = part[:, j0:j1]
                if self.matrix.shape[1]:  # one matrix-vector product per column (F order)
                    floats = block.astype(np.float64)
                    for c in range(self.matrix.shape[1]):
                        linear[r0 : r0 + step, c] += floats @ self.matrix[j0:j1, c]
                if self.ranked is not None:
                    self._ranked_block(block, j0, j1, k, carry, out)
            if self.ranked is not None:
                out["pos"], out["w"] = carry[:, 0], carry[:, 1]
                for name, value in out.items():
                    ranked.setdefault(name, np.zeros(b))[r0 : r0 + step] = value
        result: dict[str, np.ndarray] = {t: ranked[t] for t in self.ranked_terms}
        col = 0
        for name, width in zip(self.linear_terms, self.widths, strict=True):
            result[name] = linear[:, col] if width == 1 else linear[:, col : col + width]
            col += width
        return result

    def _ranked_block(
        self,
        block: np.ndarray,
        j0: int,
        j1: int,
        k: int,
        carry: np.ndarray,
        out: dict[str, np.ndarray],
    ) -> None:
        """Add one block's share of AUC/AP, with ``carry`` = (TP, W) of the rows before it.

        Counts stay integers (int32 cumulative sums are exact and several times faster
        than float64 ones); the carry is added algebraically instead of to every cell.
        """
        import numpy as np

        ranked = self.ranked
        assert ranked is not None
        pos = block * ranked.y8[j0:j1]
        if ranked.starts is not None:  # tie groups: sum the weights per group first
            lo, hi = np.searchsorted(ranked.starts, [j0, j1])
            local = ranked.starts[lo:hi] - j0
            pos = np.add.reduceat(pos, local, axis=1, dtype=np.int64)
            block = np.add.reduceat(block, local, axis=1, dtype=np.int64)
            g0 = int(lo)
        else:
            g0 = j0
        wide = np.int64 if ranked.starts is not None else np.int32
        # with ``out`` numpy accumulates in place; without it, it buffers casts (~10x slower)
        tp = np.cumsum(pos, axis=1, dtype=wide, out=np.empty(pos.shape, wide))
        wt = np.cumsum(block, axis=1, dtype=wide, out=np.empty(block.shape, wide))
        neg = (block - pos).astype(wide)
        tp_end, w_end = tp[:, -1].astype(np.float64), wt[:, -1].astype(np.float64)
        if "auc2" in self.ranked_terms:  # sum over groups of N_g * (TP before + TP after)
            acc = 2.0 * np.einsum("ij,ij->i", neg, tp) + 2.0 * carry[:, 0] * (w_end - tp_end)
            if ranked.starts is not None:  # TP before = TP after - P_g
                acc -= np.einsum("ij,ij->i", neg, pos)
            out["auc2"] = out.get("auc2", 0.0) + acc
        if "ap" in self.ranked_terms:  # over units with positives: P_u * precision at u's end
            idx = ranked.positives[k]
            # np.take: fancy indexing along axis 1 is several times slower
            precision = np.take(tp, idx, axis=1).astype(np.float64)
            precision += carry[:, :1]
            w = np.take(wt, idx, axis=1).astype(np.float64)
            w += carry[:, 1:]
            precision /= np.maximum(w, 1e-300, out=w)
            p = np.take(pos, idx, axis=1).astype(np.float64)
            out["ap"] = out.get("ap", 0.0) + np.einsum("ij,ij->i", p, precision)
        for threshold, cut in ranked.cut.items():
            if g0 <= cut <= g0 + tp.shape[1] and (cut > g0 or g0 == 0):
                m = cut - g0
                out[f"tp@{threshold:g}"] = carry[:, 0] + (tp[:, m - 1] if m else 0)
                out[f"pp@{threshold:g}"] = carry[:, 1] + (wt[:, m - 1] if m else 0)
        carry[:, 0] += tp_end
        carry[:, 1] += w_end


def _even_bounds(n: int, b: int) -> list[int]:
    step = max(1024, _BLOCK_CELLS // max(b, 1))
    return [*range(0, n, step), n] if n else [0, 0]


def _prepare_ranked(scores: np.ndarray, y: np.ndarray, terms: list[str]) -> _Ranked:
    import numpy as np

    n = len(scores)
    change = np.flatnonzero(scores[1:] != scores[:-1]) + 1
    ties = len(change) < n - 1
    starts = np.concatenate([[0], change]) if ties else None
    bounds = _even_bounds(n, 16)
    if starts is not None:  # move each boundary to the next tie-group start
        bounds = sorted({0, n, *(int(x) for x in starts[np.searchsorted(starts, bounds[1:-1])])})
    y8 = y.astype(np.uint8)
    positives = []
    for a, b in zip(bounds, bounds[1:], strict=False):
        if starts is None:
            positives.append(np.flatnonzero(y8[a:b]))
        else:
            lo, hi = np.searchsorted(starts, [a, b])
            per_group = np.add.reduceat(y8[a:b].astype(np.int64), starts[lo:hi] - a)
            positives.append(np.flatnonzero(per_group))
    cut: dict[float, int] = {}
    for t in terms:
        if t.startswith("tp@"):
            threshold = float(t[3:])
            rows = int(np.count_nonzero(scores >= threshold))  # scores are sorted descending
            cut[threshold] = int(np.searchsorted(starts, rows)) if starts is not None else rows
    return _Ranked(y8, starts, bounds, positives, cut)


def _column(term: str, y: np.ndarray, pred: Predictions) -> np.ndarray:
    """The per-row values whose weighted sum is ``term`` (one column, or one per class/horizon)."""
    import numpy as np

    return np.asarray(_values(term, y, pred), dtype=np.float64)


def _values(term: str, y: np.ndarray, pred: Predictions) -> Any:
    import numpy as np

    eps = np.finfo(np.float64).eps
    if term == "w":
        return np.ones(len(y))
    if term == "pos":
        return y.astype(np.float64)
    if term.startswith(("tp@", "pp@")):  # binary model with labels only
        assert pred.labels is not None
        hit = pred.labels == 1
        return (hit & (y == 1)).astype(np.float64) if term[0] == "t" else hit.astype(np.float64)
    if term in ("logloss", "brier"):
        assert pred.scores is not None
        p = pred.scores
        if p.ndim == 1:
            if term == "brier":
                return (p - y) ** 2
            # as scikit-learn: clip each class's probability, then take the true class's
            return -np.log(np.where(y == 1, np.clip(p, eps, 1 - eps), np.clip(1 - p, eps, 1 - eps)))
        return -np.log(np.clip(p[np.arange(len(y)), y], eps, 1 - eps))
    if term == "correct":
        assert pred.labels is not None
        return (pred.labels == y).astype(np.float64)
    if term in ("class_tp", "class_pp", "class_yy"):
        assert pred.labels is not None
        k = int(max(y.max(initial=0), pred.labels.max(initial=0))) + 1
        if pred.scores is not None and pred.scores.ndim == 2:
            k = max(k, pred.scores.shape[1])
        truth, guess = np.eye(k)[y], np.eye(k)[pred.labels]
        return {"class_tp": truth * guess, "class_pp": guess, "class_yy": truth}[term]
    assert pred.values is not None
    err = pred.values - y
    if term == "se":
        return err**2
    if term == "ae":
        return np.abs(err)
    if term == "ape":  # scikit-learn floors |y| at machine epsilon
        return np.abs(err) / np.maximum(np.abs(y), eps)
    if term == "yc":  # centred once, so the weighted variance does not cancel catastrophically
        return y - y.mean()
    if term == "yc2":
        return (y - y.mean()) ** 2
    if term == "sape":
        denom = np.abs(y) + np.abs(pred.values)
        return np.divide(2 * np.abs(err), denom, out=np.zeros(len(y)), where=denom > 0)
    if term == "ae_scaled":
        assert pred.scale is not None
        return np.abs(err) / pred.scale
    if term in ("se_h", "w_h"):
        assert pred.horizon is not None
        steps = int(pred.horizon.max())
        onehot = np.eye(steps)[pred.horizon.astype(np.int64) - 1]
        return onehot * (err**2)[:, None] if term == "se_h" else onehot
    raise AssertionError(f"unknown term {term!r}")
