"""Seeded, reproducible splits: which rows of a frame a suite trains, validates and tests on.

A suite is only fair if every model is judged on exactly the same test rows, today and in a
year, on a laptop or in CI. So a split here is a pure function of three things: the frame's
contents and row order, the ``SplitSpec`` (kind, options, seed) and, for a stratified split,
the target column. It never depends on ``hash()``, dict order, the process, the platform or
the thread count, and ``digest(parts)`` fingerprints the resulting row positions so a suite
can store it and notice when "the same split" stopped giving the same rows.

A split is written as text, as on the command line (``--split stratified:test=0.2,seed=7``):
the kind, a colon, then ``key=value`` options separated by commas. ``SplitSpec.parse`` reads
it and ``str(spec)`` writes it back in canonical form (every option, defaults filled in, in
a fixed order), so ``SplitSpec.parse(str(spec)) == spec``. ``split(spec, frame)`` returns a
list of ``Part``: row positions (0-based, int64, sorted ascending, read-only) into the frame,
never index labels.

Kinds
-----

``random:test=0.2[,validation=0.1][,seed=7]``
    Rows drawn uniformly at random. The test part has exactly ``round(test × n)`` rows and
    the validation part ``round(validation × n)`` (Python's ``round``: halves go to the even
    number), the train part the rest.

``stratified:test=0.2[,validation=0.1][,seed=7]``
    As random, but within each class of the target column (``split(..., target="y")``), so
    the test part holds every class in proportion. Per class, the test count is
    ``test × class size`` apportioned by largest remainder so the counts add up to
    ``round(test × n)``, with two bounds that win over the total: every class with at least
    2 rows gets at least 1 test row and keeps at least 1 train row; a class with a single
    row goes to train (it cannot be both learned and tested). With validation, every class
    of at least 3 rows also gets at least 1 validation row. Missing target values (NaN,
    None) form one class of their own. A target with mostly single-row classes (a
    continuous target) cannot be stratified; use ``random`` for regression.

``group:column=customer_id,test=0.2[,validation=0.1][,seed=7]``
    No group (value of ``column``) ever has rows in two parts. The groups are shuffled
    and taken in that order: test gets the first groups, validation the next, train the
    rest; each cut is placed where the part's row count comes nearest to
    ``round(share × n)``, so the test part is within half a group (the group at the cut)
    of the asked row count, except that every part gets at least one group. Missing
    values in the group column are an error, as is a column with fewer groups than parts.

``time:column=date,cutoff=2024-01-01[,validation_from=2023-10-01]``
    Train is every row strictly before ``validation_from`` (or before ``cutoff`` without
    it), validation the rows in ``[validation_from, cutoff)``, test the rows at or after
    ``cutoff``. The cut-off (and ``validation_from``) must fall inside the data: after the
    first time and not after the last.

``time:column=date,test=0.2[,validation=0.1]``
    Test is the last ``round(test × n)`` rows by time, validation the rows just before.
    Rows sharing a time are never split across parts: each cut goes between two distinct
    times, where the part's row count comes nearest to the asked count (so with many rows
    per time the part is within half of the boundary time's rows of it). Without
    ``column``, row order is time order and the counts are exact.

``rolling:[column=date,]horizon=12,folds=5[,step=12][,min_train=1]``
    Rolling-origin backtesting for forecasting. Periods are the distinct values of
    ``column`` in ascending order (several rows may share one: a panel of series), or the
    rows themselves when ``column`` is omitted (row order is time order). Fold ``i`` of
    ``folds`` has origin ``o_i = P - horizon - (folds - i) × step`` (0-based period
    index, ``P`` periods): it trains on every period before ``o_i`` (an expanding window)
    and tests on the ``horizon`` periods from ``o_i``. The last fold's test window ends at
    the last period; ``step`` defaults to ``horizon`` (test windows side by side); fold 1
    must keep at least ``min_train`` periods (default 1) to train on. Rows after a fold's
    test window are in neither of its parts, and there is no validation part. Gaps in
    time are not filled in: a period is the next time present in the data.

Time columns may hold datetimes (time-zone aware ones are compared in UTC), ISO 8601
strings, or numbers (a year, a day index). A ``column`` matching no column but the frame's
index name uses the index. ``cutoff`` and ``validation_from`` are written as ISO 8601
dates (``2024-01-01``, ``2024-01-01T12:00``) or numbers, matching the column.

Guarantees
----------

- For every kind but ``rolling``, the parts are disjoint and together hold every row; no
  part is ever empty (a split that would leave one empty raises ``SplitError`` naming the
  share, the row count and the fix). In ``rolling``, each fold's test rows all come after
  its train rows in time.
- ``seed`` defaults to 0. Randomness comes from ``numpy.random.default_rng(seed)``, and only
  from its bit generator's raw 64-bit stream (``bit_generator.random_raw``), which numpy
  keeps fixed across versions and platforms, unlike the algorithms behind ``permutation``
  or ``choice``. Row (or group) ``i`` gets key ``i`` of that stream; rows are ranked by
  (key, position), and each part takes the lowest-ranked rows (per class for
  ``stratified``). Groups are numbered in sorted order of their values (order of first
  appearance if the values cannot be sorted), classes likewise.
- Splitting a million rows takes a fraction of a second: everything is vectorised numpy.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import TYPE_CHECKING, Any

from loopml.errors import InvalidParameterError, did_you_mean

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

__all__ = ["Part", "SplitError", "SplitSpec", "digest", "split"]

# The options each kind takes, in the canonical order ``str(spec)`` writes them.
KINDS: dict[str, tuple[str, ...]] = {
    "random": ("test", "validation", "seed"),
    "stratified": ("test", "validation", "seed"),
    "group": ("column", "test", "validation", "seed"),
    "time": ("column", "cutoff", "validation_from", "test", "validation"),
    "rolling": ("column", "horizon", "folds", "step", "min_train"),
}
_SHARES = ("test", "validation")
_INTS = ("seed", "horizon", "folds", "step", "min_train")
_TEXTS = ("column", "cutoff", "validation_from")


class SplitError(InvalidParameterError):
    """A split spec that cannot be read, or a frame it cannot split; the message says the fix."""


@dataclass(frozen=True, slots=True)
class SplitSpec:
    """How to split a frame: the kind and its options (see the module docstring).

    Build one with ``SplitSpec.parse("random:test=0.2,seed=7")`` or the constructor;
    both check every option and fill in defaults (``seed=0``, ``step=horizon``,
    ``min_train=1``), so equal splits compare equal.

    Raises:
        SplitError: an unknown kind, an option the kind does not take, a missing one, or a
            value out of range.

    Example:
        >>> spec = SplitSpec.parse("stratified: test=0.2, seed=7")
        >>> str(spec)
        'stratified:test=0.2,seed=7'
        >>> SplitSpec.parse(str(spec)) == spec
        True
    """

    kind: str
    test: float | None = None
    validation: float | None = None
    seed: int | None = None
    column: str | None = None
    cutoff: str | None = None
    validation_from: str | None = None
    horizon: int | None = None
    folds: int | None = None
    step: int | None = None
    min_train: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise SplitError(
                f"Unknown split kind {self.kind!r}; expected one of {sorted(KINDS)}."
                f"{did_you_mean(str(self.kind), KINDS)} Example: random:test=0.2,seed=7"
            )
        allowed = KINDS[self.kind]
        for name in _SHARES + _INTS + _TEXTS:
            value = getattr(self, name)
            if value is None:
                continue
            if name not in allowed:
                raise SplitError(
                    f"A {self.kind} split takes no option {name!r}; its options are "
                    f"{', '.join(allowed)}."
                )
            object.__setattr__(self, name, _checked(self.kind, name, value))
        if self.kind in ("random", "stratified", "group") and self.seed is None:
            object.__setattr__(self, "seed", 0)
        if self.kind == "rolling":
            if self.step is None and self.horizon is not None:
                object.__setattr__(self, "step", self.horizon)
            if self.min_train is None:
                object.__setattr__(self, "min_train", 1)
        _check_combination(self)

    @classmethod
    def parse(cls, text: str) -> SplitSpec:
        """Read ``kind:key=value,...`` text, as given to ``--split``.

        Raises:
            SplitError: the text is malformed, or names an unknown kind or option (with the
                closest valid one), or a value is not a number or out of range.
        """
        if not isinstance(text, str) or not text.strip():
            raise SplitError(
                f"Split {text!r}: expected text like 'random:test=0.2,seed=7'; kinds are "
                f"{', '.join(KINDS)}."
            )
        kind, _, rest = text.strip().partition(":")
        kind = kind.strip()
        if kind not in KINDS:
            cls(kind=kind)  # raises the unknown-kind error
        values: dict[str, Any] = {}
        for item in (i.strip() for i in rest.split(",")):
            if not item:
                continue
            key, eq, raw = (p.strip() for p in item.partition("="))
            if key not in KINDS[kind]:
                others = [k for k, opts in KINDS.items() if key in opts]
                elsewhere = f" ({key!r} belongs to {', '.join(others)} splits.)" if others else ""
                raise SplitError(
                    f"Unknown option {key!r} in {kind} split {text!r}; its options are "
                    f"{', '.join(KINDS[kind])}.{did_you_mean(key, KINDS[kind])}{elsewhere}"
                )
            if not eq or not raw:
                raise SplitError(
                    f"Option {key!r} in split {text!r} has no value; write {key}=VALUE, "
                    f"e.g. {_EXAMPLES[key]}."
                )
            if key in values:
                raise SplitError(f"Option {key!r} appears twice in split {text!r}; keep one.")
            values[key] = _from_text(key, raw)
        return cls(kind=kind, **values)

    def __str__(self) -> str:
        options = []
        for name in KINDS[self.kind]:
            value = getattr(self, name)
            if value is not None:
                options.append(
                    f"{name}={value!r}" if isinstance(value, float) else f"{name}={value}"
                )
        return f"{self.kind}:{','.join(options)}"

    def to_dict(self) -> dict[str, Any]:
        """The kind and every set option, JSON-ready; ``from_dict`` reads it back."""
        out: dict[str, Any] = {"kind": self.kind}
        out.update({name: getattr(self, name) for name in KINDS[self.kind]})
        return {k: v for k, v in out.items() if v is not None}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SplitSpec:
        """Rebuild a spec from ``to_dict()`` output (e.g. read back from the database).

        Raises:
            SplitError: no kind, an unknown key, or a value of the wrong type or range.
        """
        names = [f.name for f in fields(cls)]
        unknown = sorted(set(data) - set(names))
        if unknown:
            raise SplitError(
                f"Unknown split keys {unknown}; expected some of {names}."
                f"{did_you_mean(unknown[0], names)}"
            )
        if "kind" not in data:
            raise SplitError(f"Split {dict(data)!r} has no 'kind'; expected one of {list(KINDS)}.")
        return cls(**dict(data))


_EXAMPLES = {
    "test": "test=0.2",
    "validation": "validation=0.1",
    "seed": "seed=7",
    "column": "column=date",
    "cutoff": "cutoff=2024-01-01",
    "validation_from": "validation_from=2023-10-01",
    "horizon": "horizon=12",
    "folds": "folds=5",
    "step": "step=12",
    "min_train": "min_train=24",
}


def _from_text(key: str, raw: str) -> Any:
    if key in _SHARES:
        try:
            return float(raw)
        except ValueError:
            raise SplitError(
                f"Option {key}={raw!r} is not a number; give a fraction of the rows, e.g. "
                f"{_EXAMPLES[key]}."
            ) from None
    if key in _INTS:
        try:
            return int(raw)
        except ValueError:
            raise SplitError(
                f"Option {key}={raw!r} is not a whole number; e.g. {_EXAMPLES[key]}."
            ) from None
    return raw


def _checked(kind: str, name: str, value: Any) -> Any:
    """``value`` for option ``name``, type- and range-checked (shares become float)."""
    if name in _SHARES:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise SplitError(f"Option {name}={value!r}: expected a number, e.g. {_EXAMPLES[name]}.")
        if not 0.0 < value < 1.0:  # also rejects NaN
            raise SplitError(
                f"Option {name}={value!r} of the {kind} split is outside (0, 1); give the share "
                f"of rows as a fraction, e.g. {_EXAMPLES[name]}"
                + (" (omit it for no validation part)." if name == "validation" else ".")
            )
        return float(value)
    if name in _INTS:
        if isinstance(value, bool) or not isinstance(value, int):
            raise SplitError(
                f"Option {name}={value!r}: expected a whole number, e.g. {_EXAMPLES[name]}."
            )
        low = 0 if name == "seed" else 1
        if value < low:
            raise SplitError(
                f"Option {name}={value} must be at least {low}; e.g. {_EXAMPLES[name]}."
            )
        return value
    if not isinstance(value, str) or not value.strip():
        raise SplitError(
            f"Option {name}={value!r}: expected non-empty text, e.g. {_EXAMPLES[name]}."
        )
    if "," in value or value != value.strip():
        raise SplitError(
            f"Option {name}={value!r} has a comma or surrounding spaces, which split text "
            "cannot carry; rename the column or fix the value."
        )
    if name != "column" and _as_number_or_date(value) is None:
        raise SplitError(
            f"Option {name}={value!r} is neither a number nor an ISO 8601 date; write it as "
            f"e.g. {_EXAMPLES[name]} (or a number, for a numeric time column)."
        )
    return value


def _as_number_or_date(text: str) -> float | datetime | None:
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def _check_combination(spec: SplitSpec) -> None:
    kind = spec.kind
    if kind in ("random", "stratified", "group") and spec.test is None:
        raise SplitError(f"A {kind} split needs a test share, e.g. {kind}:test=0.2,seed=7.")
    if kind == "group" and spec.column is None:
        raise SplitError(
            "A group split needs the group column, e.g. group:column=customer_id,test=0.2."
        )
    if spec.test is not None and spec.validation is not None and spec.test + spec.validation >= 1:
        raise SplitError(
            f"test={spec.test!r} plus validation={spec.validation!r} leaves no rows to train on; "
            "make their sum less than 1, e.g. test=0.2,validation=0.1."
        )
    if kind == "time":
        if (spec.cutoff is None) == (spec.test is None):
            raise SplitError(
                "A time split needs either cutoff= or test= (not both), e.g. "
                "time:column=date,cutoff=2024-01-01 or time:column=date,test=0.2."
            )
        if spec.cutoff is not None and spec.column is None:
            raise SplitError(
                "A time split with a cutoff needs column=, e.g. time:column=date,cutoff=2024-01-01."
            )
        if spec.validation_from is not None and spec.cutoff is None:
            raise SplitError(
                "validation_from= needs a cutoff=; with test= use validation= instead."
            )
        if spec.validation is not None and spec.test is None:
            raise SplitError("validation= needs test=; with cutoff= use validation_from= instead.")
        if spec.cutoff is not None and spec.validation_from is not None:
            start, end = _as_number_or_date(spec.validation_from), _as_number_or_date(spec.cutoff)
            try:
                backwards = start >= end  # type: ignore[operator]
            except TypeError:  # a number and a date, or naive and aware: judged on the column
                backwards = False
            if backwards:
                raise SplitError(
                    f"validation_from={spec.validation_from} is not before cutoff={spec.cutoff}; "
                    "the validation window is [validation_from, cutoff), so start it earlier."
                )
    if kind == "rolling" and (spec.horizon is None or spec.folds is None):
        raise SplitError(
            "A rolling split needs horizon= and folds=, e.g. rolling:column=date,horizon=12,folds=5."
        )


@dataclass(frozen=True, eq=False)
class Part:
    """One split: row positions (int64, sorted ascending, read-only) into the frame."""

    train: np.ndarray
    test: np.ndarray
    validation: np.ndarray | None = None
    name: str = ""

    def __eq__(self, other: object) -> bool:
        import numpy as np

        if not isinstance(other, Part):
            return NotImplemented
        same_validation = (self.validation is None and other.validation is None) or (
            self.validation is not None
            and other.validation is not None
            and np.array_equal(self.validation, other.validation)
        )
        return (
            self.name == other.name
            and same_validation
            and np.array_equal(self.train, other.train)
            and np.array_equal(self.test, other.test)
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        sizes = [f"train={len(self.train)} rows", f"test={len(self.test)} rows"]
        if self.validation is not None:
            sizes.insert(1, f"validation={len(self.validation)} rows")
        return f"Part({self.name!r}, {', '.join(sizes)})"


def digest(parts: Sequence[Part]) -> str:
    """SHA-256 (hex) of the row positions of ``parts``, to store with a suite and compare later.

    The bytes hashed: ``b"loopml-split-v1\\n"``, the number of parts, then per part its name
    (length, then UTF-8) and its train, validation and test arrays, each as its length
    followed by the positions; every number is int64 little-endian, and a missing
    validation part has length -1 (so it differs from an empty one).
    """
    import numpy as np

    h = hashlib.sha256(b"loopml-split-v1\n")
    h.update(struct.pack("<q", len(parts)))
    for part in parts:
        name = part.name.encode("utf-8")
        h.update(struct.pack("<q", len(name)) + name)
        for rows in (part.train, part.validation, part.test):
            if rows is None:
                h.update(struct.pack("<q", -1))
                continue
            h.update(struct.pack("<q", len(rows)))
            h.update(np.ascontiguousarray(rows, dtype="<i8").tobytes())
    return h.hexdigest()


def split(spec: SplitSpec, frame: pd.DataFrame, *, target: str | None = None) -> list[Part]:
    """Split ``frame`` as ``spec`` says: one ``Part``, or one per fold for ``rolling``.

    Args:
        spec: the split, e.g. ``SplitSpec.parse("stratified:test=0.2,seed=7")``.
        frame: a pandas DataFrame; parts hold row positions into it, not index labels.
        target: the column a ``stratified`` split keeps in proportion (ignored otherwise).

    Returns:
        The parts; every array is int64, sorted ascending and read-only.

    Raises:
        SplitError: a part would be empty, a column is missing or unusable (missing values,
            not a time), a cut-off is outside the data, or too few groups or periods.

    Example:
        >>> import pandas as pd
        >>> frame = pd.DataFrame({"x": range(10)})
        >>> [part] = split(SplitSpec.parse("random:test=0.3,seed=7"), frame)
        >>> len(part.train), len(part.test)
        (7, 3)
    """
    import pandas as pd

    if not isinstance(spec, SplitSpec):
        raise SplitError(
            f"split() needs a SplitSpec; got {type(spec).__name__}. Use SplitSpec.parse(text)."
        )
    if not isinstance(frame, pd.DataFrame):
        raise SplitError(
            f"split() needs a pandas DataFrame; got {type(frame).__name__}. "
            "Convert it first (polars: frame.to_pandas())."
        )
    if len(frame) == 0:
        raise SplitError("The frame has no rows, so there is nothing to split; check the dataset.")
    from loopml.evaluation import _split_kinds as kinds

    run: dict[str, Callable[[SplitSpec, pd.DataFrame, str | None], list[Part]]] = {
        "random": kinds.random_split,
        "stratified": kinds.stratified_split,
        "group": kinds.group_split,
        "time": kinds.time_split,
        "rolling": kinds.rolling_split,
    }
    return run[spec.kind](spec, frame, target)
