"""One column's profile, and its compact JSON form.

Kept apart from the statistics (``profile_stats.py``) so that reading a stored profile back
(``from_dict``) needs neither numpy nor pyarrow: ``loopml data show`` can print a stored
profile without loading the table libraries.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
KINDS = ("numeric", "categorical", "boolean", "datetime", "text", "other")

Scalar = int | float | str


@dataclass(frozen=True, slots=True)
class Histogram:
    """Counts of the finite values in ``len(counts)`` equal-width bins between ``edges``.

    The last bin includes its right edge (numpy's convention). A constant column has one
    bin whose two edges are equal.
    """

    edges: tuple[float, ...]
    counts: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class ColumnProfile:
    """Statistics of one column; the fields that do not apply to its ``kind`` are None.

    ``missing`` counts nulls and floating-point NaN (pandas' view of missing), so a table
    profiles the same whether it comes from pandas (NaN becomes null) or polars (NaN stays).
    ``count`` is the number of values that are not missing. Numeric statistics are taken
    over the finite values; ``infinite`` counts +inf and -inf. ``std`` is the sample
    standard deviation (ddof=1, as pandas); quantiles use linear interpolation (numpy's and
    pandas' default). ``distinct`` is exact and counts each infinity once.
    """

    name: str
    dtype: str
    kind: str
    count: int
    missing: int
    distinct: int | None = None
    min: Scalar | None = None
    max: Scalar | None = None
    mean: float | None = None
    std: float | None = None
    quantiles: dict[float, float] = field(default_factory=dict)
    histogram: Histogram | None = None
    infinite: int | None = None
    zeros: int | None = None
    negatives: int | None = None
    top: tuple[tuple[str, int], ...] = ()
    other: int | None = None
    min_length: int | None = None
    max_length: int | None = None

    @property
    def missing_share(self) -> float:
        """Missing values as a share of the rows (0.0 for an empty table)."""
        total = self.count + self.missing
        return self.missing / total if total else 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict without the empty fields; non-finite floats become strings."""
        out: dict[str, Any] = {
            "name": self.name,
            "dtype": self.dtype,
            "kind": self.kind,
            "count": self.count,
            "missing": self.missing,
        }
        for key in ("distinct", "infinite", "zeros", "negatives", "other"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        for key in ("min", "max", "mean", "std"):
            value = getattr(self, key)
            if value is not None:
                out[key] = _encode(value)
        if self.quantiles:
            out["quantiles"] = {repr(q): _encode(v) for q, v in self.quantiles.items()}
        if self.histogram is not None:
            out["histogram"] = {
                "edges": [_encode(e) for e in self.histogram.edges],
                "counts": list(self.histogram.counts),
            }
        if self.top:
            out["top"] = [[value, n] for value, n in self.top]
        if self.min_length is not None:
            out["length"] = [self.min_length, self.max_length]
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ColumnProfile:
        """The inverse of ``to_dict``."""
        histogram = data.get("histogram")
        length = data.get("length") or [None, None]
        return cls(
            name=data["name"],
            dtype=data["dtype"],
            kind=data["kind"],
            count=data["count"],
            missing=data["missing"],
            distinct=data.get("distinct"),
            min=_decode(data.get("min")),
            max=_decode(data.get("max")),
            mean=_decode_float(data.get("mean")),
            std=_decode_float(data.get("std")),
            quantiles={float(q): float(_decode(v)) for q, v in data.get("quantiles", {}).items()},
            histogram=(
                Histogram(
                    edges=tuple(float(_decode(e)) for e in histogram["edges"]),
                    counts=tuple(histogram["counts"]),
                )
                if histogram
                else None
            ),
            infinite=data.get("infinite"),
            zeros=data.get("zeros"),
            negatives=data.get("negatives"),
            top=tuple((str(v), int(n)) for v, n in data.get("top", [])),
            other=data.get("other"),
            min_length=length[0],
            max_length=length[1],
        )


# JSON has no NaN or infinity; these markers keep them exact without ``allow_nan``.
_NON_FINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


def _encode(value: Scalar) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return {"float": "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")}
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        return _NON_FINITE[value["float"]]
    return value


def _decode_float(value: Any) -> float | None:
    return None if value is None else float(_decode(value))
