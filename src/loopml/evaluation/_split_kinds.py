"""How each kind of split picks its rows; ``splits.py`` holds the spec, the API and the docs.

Kept apart so the spec (parsing, canonical text, storage) reads on its own, and so this
module, which imports numpy and pandas in every function, is loaded only by ``split()``.
The algorithms are described, as guarantees, in the ``splits`` module docstring.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from loopml.errors import did_you_mean
from loopml.evaluation.splits import _EXAMPLES, Part, SplitError, SplitSpec

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

_TRAIN, _VALIDATION, _TEST = 0, 1, 2

# --- random, stratified, group -------------------------------------------------------------


def _keys(seed: int, n: int) -> np.ndarray:
    """``n`` raw 64-bit PCG64 outputs: fixed by numpy for a seed, unlike ``permutation``."""
    import numpy as np

    keys: np.ndarray = np.random.default_rng(seed).bit_generator.random_raw(n)
    return keys


def _rank_order(keys: np.ndarray) -> np.ndarray:
    """Positions ordered by (key, position): a quicksort, or a stable sort if two keys tie."""
    import numpy as np

    order = np.argsort(keys)
    ranked = keys[order]
    if len(keys) > 1 and bool((ranked[1:] == ranked[:-1]).any()):
        order = np.argsort(keys, kind="stable")
    return order


def _asked(share: float, n: int) -> int:
    return round(share * n)


def _check_counts(spec: SplitSpec, n: int, counts: Sequence[int], hint: str = "") -> None:
    train, validation, test = counts
    if test == 0:
        raise SplitError(
            f"test={spec.test!r} of {n} rows leaves the test part empty; use a larger test "
            f"share or more data.{hint}"
        )
    if spec.validation is not None and validation == 0:
        raise SplitError(
            f"validation={spec.validation!r} of {n} rows leaves the validation part empty; use "
            f"a larger validation share, more data, or no validation part.{hint}"
        )
    if train == 0:
        shares = f"test={spec.test!r}" + (
            f", validation={spec.validation!r}" if spec.validation is not None else ""
        )
        raise SplitError(
            f"{shares} of {n} rows leave the train part empty; use smaller shares or more data."
        )


def random_split(spec: SplitSpec, frame: pd.DataFrame, target: str | None) -> list[Part]:
    import numpy as np

    n = len(frame)
    n_test = _asked(spec.test or 0.0, n)
    n_val = _asked(spec.validation, n) if spec.validation is not None else 0
    _check_counts(spec, n, (n - n_test - n_val, n_val, n_test))
    keys = _keys(spec.seed or 0, n)
    labels = np.full(n, _TRAIN, dtype=np.int8)
    labels[_lowest(keys, n_test + n_val)] = _VALIDATION
    labels[_lowest(keys, n_test)] = _TEST
    return [_part(labels, spec.validation is not None)]


def _lowest(keys: np.ndarray, k: int) -> np.ndarray:
    """Mask of the ``k`` rows first in (key, position) order, in linear time (no full sort)."""
    import numpy as np

    mask: np.ndarray = np.zeros(len(keys), dtype=bool)
    if k == 0:
        return mask
    kth = np.partition(keys, k - 1)[k - 1]
    mask[keys < kth] = True
    ties = np.flatnonzero(keys == kth)
    mask[ties[: k - int(mask.sum())]] = True
    return mask


def stratified_split(spec: SplitSpec, frame: pd.DataFrame, target: str | None) -> list[Part]:
    import numpy as np

    if target is None:
        raise SplitError(
            "A stratified split needs the target column to stratify on: split(spec, frame, "
            "target='label'); or use a random split."
        )
    codes, _ = _codes(_column(frame, target, "target"), allow_missing=True)
    n = len(frame)
    sizes = np.bincount(codes)
    big = sizes >= 2
    n_test = _apportion(
        sizes * (spec.test or 0.0),
        _asked(spec.test or 0.0, n),
        big * 1,
        np.where(big, sizes - 1, 0),
    )
    n_val = np.zeros_like(sizes)
    if spec.validation is not None:
        room = np.where(big, sizes - n_test - 1, 0)
        n_val = _apportion(
            sizes * spec.validation, _asked(spec.validation, n), np.minimum(room, sizes >= 3), room
        )
    hint = ""
    if int(n_test.sum()) == 0 and (sizes == 1).all():
        hint = f" Every value of target {target!r} occurs once: stratify a classification target, or split at random."
    _check_counts(
        spec,
        n,
        (n - int(n_test.sum()) - int(n_val.sum()), int(n_val.sum()), int(n_test.sum())),
        hint,
    )
    # Rows by key, then (stably) by class: each class's rows, lowest key first.
    order = _rank_order(_keys(spec.seed or 0, n))
    small = codes.astype(np.int16) if len(sizes) <= 32767 else codes  # int16 sorts by radix
    order = order[np.argsort(small[order], kind="stable")]
    ordered_codes = codes[order]
    starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    rank = np.arange(n) - starts[ordered_codes]
    ranked = np.where(
        rank < n_test[ordered_codes],
        _TEST,
        np.where(rank < (n_test + n_val)[ordered_codes], _VALIDATION, _TRAIN),
    )
    labels = np.empty(n, dtype=np.int8)
    labels[order] = ranked
    return [_part(labels, spec.validation is not None)]


def _apportion(quota: np.ndarray, total: int, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Whole counts near ``quota`` within [low, high], adding up to ``total`` where the bounds
    allow: floors first, then the largest remainders (ties to the lower class) get one more."""
    import numpy as np

    count = np.clip(np.floor(quota).astype(np.int64), low, high)
    left = total - int(count.sum())
    index = np.arange(len(count))
    if left > 0:
        order = np.lexsort((index, -(quota - count)))
        room = (high - count)[order]
        count[order] += np.clip(left - (np.cumsum(room) - room), 0, room)
    elif left < 0:
        order = np.lexsort((index, quota - count))
        room = (count - low)[order]
        count[order] -= np.clip(-left - (np.cumsum(room) - room), 0, room)
    result: np.ndarray = count
    return result


def group_split(spec: SplitSpec, frame: pd.DataFrame, target: str | None) -> list[Part]:
    import numpy as np

    column = spec.column or ""
    codes, uniques = _codes(_column(frame, column, "group column"), allow_missing=False)
    n, groups = len(frame), len(uniques)
    wanted = 3 if spec.validation is not None else 2
    if groups < wanted:
        raise SplitError(
            f"A group split on column {column!r} needs at least {wanted} groups (one per part); "
            f"the frame has {groups}: {list(uniques)[:5]}. Group by a finer column, or "
            + ("drop validation." if wanted == 3 else "use a random split.")
        )
    n_test = _asked(spec.test or 0.0, n)
    n_val = _asked(spec.validation, n) if spec.validation is not None else 0
    _check_counts(spec, n, (n - n_test - n_val, n_val, n_test))
    order = _rank_order(_keys(spec.seed or 0, groups))
    rows = np.cumsum(np.bincount(codes, minlength=groups)[order])
    # Cut after k groups where the row count is nearest the asked one; leave one group per later part.
    k_test = 1 + int(np.argmin(np.abs(rows[: groups - wanted + 1] - n_test)))
    k_end = k_test
    if n_val:
        taken = rows[k_test - 1]
        k_end = k_test + 1 + int(np.argmin(np.abs(rows[k_test : groups - 1] - taken - n_val)))
    label_of_group = np.full(groups, _TRAIN, dtype=np.int8)
    label_of_group[order[:k_test]] = _TEST
    label_of_group[order[k_test:k_end]] = _VALIDATION
    return [_part(label_of_group[codes], spec.validation is not None)]


# --- time and rolling ----------------------------------------------------------------------


def time_split(spec: SplitSpec, frame: pd.DataFrame, target: str | None) -> list[Part]:
    import numpy as np

    n = len(frame)
    has_val = spec.validation is not None or spec.validation_from is not None
    labels = np.full(n, _TRAIN, dtype=np.int8)
    if spec.cutoff is not None:
        column = spec.column or ""
        times = _times(frame, column)
        cutoff = _time_value(times, spec.cutoff, column, "cutoff")
        first, last = times.min(), times.max()
        if not first < cutoff <= last:
            raise SplitError(
                f"cutoff={spec.cutoff} is outside the data range of column {column!r}, "
                f"{_show(first)} to {_show(last)}: the "
                + ("train" if cutoff <= first else "test")
                + f" part would be empty. Choose a cut-off after {_show(first)} and not after {_show(last)}."
            )
        labels[times >= cutoff] = _TEST
        if spec.validation_from is not None:
            start = _time_value(times, spec.validation_from, column, "validation_from")
            if not first < start < cutoff:
                raise SplitError(
                    f"validation_from={spec.validation_from} must be after the first time "
                    f"{_show(first)} of column {column!r} and before cutoff={spec.cutoff}, so "
                    "train and validation both get rows; move it."
                )
            labels[(times >= start) & (times < cutoff)] = _VALIDATION
        return [_part(labels, has_val)]
    if spec.column is None:
        times = np.arange(n)
        ordered = times
    else:
        times = _times(frame, spec.column)
        ordered = np.sort(times)
    # Cuts may fall only where the time changes; starts[j] is the first sorted row of time j.
    starts = np.concatenate(([0], np.flatnonzero(ordered[1:] != ordered[:-1]) + 1))
    n_test = _asked(spec.test or 0.0, n)
    n_val = _asked(spec.validation, n) if spec.validation is not None else 0
    _check_counts(spec, n, (n - n_test - n_val, n_val, n_test))
    wanted = 3 if has_val else 2
    if len(starts) < wanted:
        raise SplitError(
            f"Column {spec.column!r} has {len(starts)} distinct time(s); a time split needs at "
            f"least {wanted}, since rows of one time stay together. Use a random split instead."
        )
    after = n - starts  # rows at or after each distinct time
    j_test = wanted - 1 + int(np.argmin(np.abs(after[wanted - 1 :] - n_test)))
    labels[times >= ordered[starts[j_test]]] = _TEST
    if has_val:
        j_val = 1 + int(np.argmin(np.abs(after[1:j_test] - after[j_test] - n_val)))
        labels[(times >= ordered[starts[j_val]]) & (labels == _TRAIN)] = _VALIDATION
    return [_part(labels, has_val)]


def rolling_split(spec: SplitSpec, frame: pd.DataFrame, target: str | None) -> list[Part]:
    import numpy as np

    horizon, folds, step = spec.horizon or 1, spec.folds or 1, spec.step or 1
    min_train = spec.min_train or 1
    if spec.column is None:
        times, periods = None, np.arange(0)
        count = len(frame)
        have = f"the frame has {count} rows"
    else:
        times = _times(frame, spec.column)
        periods = np.unique(times)
        count = len(periods)
        have = f"column {spec.column!r} has {count} distinct times"
    need = min_train + horizon + (folds - 1) * step
    if count < need:
        fit = max(0, (count - horizon - min_train) // step + 1)
        raise SplitError(
            f"A rolling split with horizon={horizon}, folds={folds}, step={step}, "
            f"min_train={min_train} needs at least {need} periods (min_train + horizon + "
            f"(folds - 1) × step); {have}, enough for {fit} fold(s). Use fewer "
            "folds, a smaller horizon, step or min_train, or more data."
        )
    parts = []
    for i in range(1, folds + 1):
        origin = count - horizon - (folds - i) * step
        if times is None:
            train, test = np.arange(origin), np.arange(origin, origin + horizon)
        else:
            start = periods[origin]
            in_window = times >= start
            if origin + horizon < count:
                in_window &= times < periods[origin + horizon]
            train, test = np.flatnonzero(times < start), np.flatnonzero(in_window)
        parts.append(Part(train=_frozen(train), test=_frozen(test), name=f"fold {i}"))
    return parts


def _times(frame: pd.DataFrame, column: str) -> np.ndarray:
    """Column ``column`` as comparable values: datetime64 (naive UTC) or int64/float64."""
    import numpy as np
    import pandas as pd

    series = _column(frame, column, "time column")
    missing = int(series.isna().sum())
    if missing:
        raise SplitError(
            f"Column {column!r} has {missing} missing value(s) (NaN/NaT/None) of {len(series)} "
            "rows; a time split cannot place them. Drop or fill them first."
        )
    dtype = series.dtype
    if isinstance(dtype, pd.PeriodDtype):
        series = series.dt.to_timestamp()
    elif not (
        pd.api.types.is_datetime64_any_dtype(dtype)
        or (pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype))
    ):
        if not (pd.api.types.is_string_dtype(dtype) or pd.api.types.is_object_dtype(dtype)):
            raise SplitError(
                f"Column {column!r} (dtype {dtype}) is not parseable as time or number; convert "
                "it with pd.to_datetime or to numbers first."
            )
        parsed = pd.to_datetime(series, format="ISO8601", utc=True, errors="coerce")
        if parsed.isna().any():
            bad = int(np.flatnonzero(parsed.isna().to_numpy())[0])
            raise SplitError(
                f"Column {column!r} (dtype {dtype}) is not parseable as time or number: row "
                f"{bad} holds {series.iloc[bad]!r}, not an ISO 8601 date. Convert it with "
                "pd.to_datetime(..., format=...) first."
            )
        series = parsed
    if isinstance(series.dtype, pd.DatetimeTZDtype):
        series = series.dt.tz_convert("UTC").dt.tz_localize(None)
    values: np.ndarray
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        values = series.to_numpy()
    elif pd.api.types.is_integer_dtype(series.dtype):
        values = series.to_numpy(dtype=np.int64)
    else:
        values = series.to_numpy(dtype=np.float64)
    return values


def _time_value(times: np.ndarray, text: str, column: str, option: str) -> Any:
    """``text`` as a value comparable with ``times`` (a datetime64 or a number)."""
    import numpy as np
    import pandas as pd

    if times.dtype.kind == "M":
        try:
            stamp = pd.Timestamp(text)
        except ValueError:
            stamp = None
        if stamp is None or pd.isna(stamp):
            raise SplitError(
                f"{option}={text} is not a date, but column {column!r} holds times; write it as "
                f"an ISO 8601 date, e.g. {_EXAMPLES[option]}."
            )
        if stamp.tz is not None:
            stamp = stamp.tz_convert("UTC").tz_localize(None)
        return np.datetime64(stamp.to_datetime64())
    try:
        return float(text)
    except ValueError:
        raise SplitError(
            f"{option}={text} is not a number, but column {column!r} holds numbers "
            f"({times.dtype}); give a number, e.g. {option}=2020."
        ) from None


def _show(value: Any) -> str:
    import numpy as np

    if isinstance(value, np.datetime64):
        return str(np.datetime_as_string(value, unit="auto"))
    return f"{value:g}" if isinstance(value, float | np.floating) else str(value)


# --- shared --------------------------------------------------------------------------------


def _column(frame: pd.DataFrame, name: str, role: str) -> pd.Series:
    import pandas as pd

    if name in frame.columns:
        found = frame[name]
        if isinstance(found, pd.DataFrame):
            raise SplitError(
                f"The frame has {found.shape[1]} columns named {name!r}; rename all but one."
            )
        return found
    if name == frame.index.name:
        return frame.index.to_series()
    columns = [str(c) for c in frame.columns]
    if columns.count(name) == 1:  # a non-text label such as 0, written as text in the spec
        found = frame.iloc[:, columns.index(name)]
        assert isinstance(found, pd.Series)
        return found
    shown = columns if len(columns) <= 30 else [*columns[:30], f"... ({len(columns)} in all)"]
    raise SplitError(
        f"The {role} {name!r} is not a column of the frame; its columns are {shown}."
        f"{did_you_mean(name, columns)}"
    )


def _codes(series: pd.Series, *, allow_missing: bool) -> tuple[np.ndarray, Any]:
    """Integer codes numbering the values in sorted order (first appearance if unsortable)."""
    import numpy as np
    import pandas as pd

    if not allow_missing:
        missing = int(series.isna().sum())
        if missing:
            raise SplitError(
                f"Column {series.name!r} has {missing} missing value(s) of {len(series)} rows; "
                "a group split cannot place rows without a group. Drop or fill them first."
            )
    try:
        codes, uniques = pd.factorize(series, sort=True, use_na_sentinel=False)
    except TypeError:  # mixed types that do not compare, e.g. 1 and "a"
        try:
            codes, uniques = pd.factorize(series, sort=False, use_na_sentinel=False)
        except TypeError as exc:
            raise SplitError(
                f"Column {series.name!r} holds values that cannot be told apart as groups or "
                f"classes ({exc}); use a column of numbers or strings."
            ) from exc
    return np.asarray(codes, dtype=np.int64), uniques


def _frozen(rows: np.ndarray) -> np.ndarray:
    import numpy as np

    rows = np.asarray(rows, dtype=np.int64)
    rows.setflags(write=False)
    return rows


def _part(labels: np.ndarray, with_validation: bool) -> Part:
    import numpy as np

    return Part(
        train=_frozen(np.flatnonzero(labels == _TRAIN)),
        test=_frozen(np.flatnonzero(labels == _TEST)),
        validation=_frozen(np.flatnonzero(labels == _VALIDATION)) if with_validation else None,
    )
