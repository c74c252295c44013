"""Splits: the text form, each kind on real data, the errors, and reproducibility.

Real data: scikit-learn's bundled breast cancer (stratified), statsmodels' Grunfeld panel
(11 firms × 20 years: group and tied-time splits), its weekly CO2 series and quarterly
US macro data (time and rolling-origin splits). All ship inside the packages.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loopml.errors import InvalidParameterError, LoopmlError
from loopml.evaluation.splits import Part, SplitError, SplitSpec, digest, split

SRC = str(Path(__file__).parents[2] / "src")


def one(text: str, frame: pd.DataFrame, target: str | None = None) -> Part:
    [part] = split(SplitSpec.parse(text), frame, target=target)
    return part


def check_partition(part: Part, n: int) -> None:
    """Disjoint, sorted, int64, read-only parts that together hold every row."""
    arrays = [part.train, part.test] + ([part.validation] if part.validation is not None else [])
    for rows in arrays:
        assert rows.dtype == np.int64
        assert not rows.flags.writeable
        assert len(rows) > 0
        assert (np.diff(rows) > 0).all()
    together = np.concatenate(arrays)
    assert len(together) == n
    assert np.array_equal(np.sort(together), np.arange(n))


@pytest.fixture(scope="module")
def cancer() -> pd.DataFrame:
    from sklearn.datasets import load_breast_cancer

    return load_breast_cancer(as_frame=True).frame


@pytest.fixture(scope="module")
def grunfeld() -> pd.DataFrame:
    import statsmodels.datasets.grunfeld as grunfeld

    return grunfeld.load_pandas().data


@pytest.fixture(scope="module")
def co2() -> pd.DataFrame:
    import statsmodels.datasets.co2 as co2

    return co2.load_pandas().data.rename_axis("date").reset_index()


@pytest.fixture(scope="module")
def macro() -> pd.DataFrame:
    import statsmodels.datasets.macrodata as macrodata

    return macrodata.load_pandas().data


# --- the text form ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("random:test=0.2,seed=7", "random:test=0.2,seed=7"),
        (" random : seed=7 , test=.2 ", "random:test=0.2,seed=7"),
        ("random:test=0.2", "random:test=0.2,seed=0"),
        ("stratified:test=0.2,validation=0.1,seed=7", "stratified:test=0.2,validation=0.1,seed=7"),
        ("group:test=0.25,column=customer_id", "group:column=customer_id,test=0.25,seed=0"),
        (
            "time:column=date,cutoff=2024-01-01,validation_from=2023-10-01",
            "time:column=date,cutoff=2024-01-01,validation_from=2023-10-01",
        ),
        (
            "time:column=date,cutoff=2024-01-01T12:30:00",
            "time:column=date,cutoff=2024-01-01T12:30:00",
        ),
        ("time:column=year,cutoff=1950", "time:column=year,cutoff=1950"),
        ("time:column=date,test=0.2", "time:column=date,test=0.2"),
        ("time:test=0.2,validation=0.1", "time:test=0.2,validation=0.1"),
        (
            "rolling:column=date,horizon=12,folds=5",
            "rolling:column=date,horizon=12,folds=5,step=12,min_train=1",
        ),
        (
            "rolling:horizon=4,folds=8,step=1,min_train=40",
            "rolling:horizon=4,folds=8,step=1,min_train=40",
        ),
    ],
)
def test_parse_writes_canonical_text_that_reads_back_equal(text: str, canonical: str) -> None:
    spec = SplitSpec.parse(text)
    assert str(spec) == canonical
    assert SplitSpec.parse(str(spec)) == spec
    stored = json.loads(json.dumps(spec.to_dict()))
    assert SplitSpec.from_dict(stored) == spec
    assert stored["kind"] == spec.kind


def test_typed_fields_and_defaults() -> None:
    spec = SplitSpec.parse("rolling:column=date,horizon=12,folds=5")
    assert (spec.horizon, spec.folds, spec.step, spec.min_train) == (12, 5, 12, 1)
    assert SplitSpec("random", test=0.2) == SplitSpec.parse("random:test=0.2,seed=0")
    assert SplitSpec.parse("random:test=0.2").test == 0.2
    assert SplitSpec.from_dict({"kind": "random", "test": 1 / 5, "seed": 7}).to_dict() == {
        "kind": "random",
        "test": 0.2,
        "seed": 7,
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "expected text like 'random:test=0.2,seed=7'"),
        (
            "rnadom:test=0.2",
            "Unknown split kind 'rnadom'; expected one of ['group', 'random', 'rolling', 'stratified', 'time']. Did you mean 'random'?",
        ),
        (
            "random:tset=0.2",
            "Unknown option 'tset' in random split 'random:tset=0.2'; its options are test, validation, seed. Did you mean 'test'?",
        ),
        ("random:test=0.2,horizon=3", "('horizon' belongs to rolling splits.)"),
        ("random:test=abc", "Option test='abc' is not a number"),
        ("random:test=0.2,seed=1.5", "Option seed='1.5' is not a whole number"),
        ("random:test=1.5", "Option test=1.5 of the random split is outside (0, 1)"),
        ("random:test=0", "outside (0, 1)"),
        ("random:test=nan", "outside (0, 1)"),
        ("random:test=0.2,validation=0", "(omit it for no validation part)"),
        (
            "random:test=0.6,validation=0.4",
            "test=0.6 plus validation=0.4 leaves no rows to train on",
        ),
        ("random", "A random split needs a test share"),
        ("random:test", "Option 'test' in split 'random:test' has no value; write test=VALUE"),
        ("random:test=0.2,test=0.3", "Option 'test' appears twice"),
        ("random:test=0.2,seed=-1", "Option seed=-1 must be at least 0"),
        ("group:test=0.2", "A group split needs the group column"),
        ("time:column=date", "A time split needs either cutoff= or test= (not both)"),
        ("time:column=date,cutoff=2024-01-01,test=0.2", "not both"),
        ("time:cutoff=2024-01-01", "A time split with a cutoff needs column="),
        (
            "time:column=date,cutoff=2024-13-45",
            "cutoff='2024-13-45' is neither a number nor an ISO 8601 date",
        ),
        (
            "time:column=date,cutoff=2024-01-01,validation_from=2024-02-01",
            "is not before cutoff=2024-01-01",
        ),
        (
            "time:column=date,test=0.2,validation_from=2023-01-01",
            "validation_from= needs a cutoff=",
        ),
        ("time:column=date,cutoff=2024-01-01,validation=0.1", "validation= needs test="),
        ("rolling:column=date,horizon=12", "A rolling split needs horizon= and folds="),
        ("rolling:horizon=0,folds=2", "Option horizon=0 must be at least 1"),
    ],
)
def test_bad_text_raises_a_split_error_naming_the_fix(text: str, message: str) -> None:
    with pytest.raises(SplitError) as caught:
        SplitSpec.parse(text)
    assert message in str(caught.value)
    assert isinstance(caught.value, InvalidParameterError)
    assert isinstance(caught.value, ValueError) and isinstance(caught.value, LoopmlError)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"kind": "random", "tset": 0.2}, "Unknown split keys ['tset']"),
        ({"test": 0.2}, "has no 'kind'"),
        ({"kind": "random", "test": "0.2"}, "Option test='0.2': expected a number"),
        ({"kind": "random", "test": 0.2, "seed": True}, "expected a whole number"),
        ({"kind": "group", "test": 0.2, "column": "a,b"}, "has a comma"),
    ],
)
def test_from_dict_checks_like_parse(data: dict[str, object], message: str) -> None:
    with pytest.raises(SplitError) as caught:
        SplitSpec.from_dict(data)
    assert message in str(caught.value)


# --- random and stratified -------------------------------------------------------------------


def test_random_split_is_pinned_for_a_seed() -> None:
    # If numpy ever changed PCG64's stream, every stored suite would silently change: pin it.
    part = one("random:test=0.3,validation=0.2,seed=7", pd.DataFrame({"x": range(10)}))
    assert part.train.tolist() == [1, 2, 5, 7, 8]
    assert part.validation is not None and part.validation.tolist() == [0, 9]
    assert part.test.tolist() == [3, 4, 6]
    assert digest([part]) == "9013de2ee3906e8915a768654fc2a1379c0962bc8093735a012f820d9c9669d0"


def test_random_split_sizes_and_seeds() -> None:
    frame = pd.DataFrame({"x": range(1001)})
    part = one("random:test=0.2,validation=0.1,seed=3", frame)
    check_partition(part, 1001)
    assert part.validation is not None
    assert (len(part.test), len(part.validation)) == (200, 100)
    assert part == one("random:test=0.2,validation=0.1,seed=3", frame)
    assert part != one("random:test=0.2,validation=0.1,seed=4", frame)
    # A larger test share extends the smaller one's test rows (a nested, stable ranking).
    bigger = one("random:test=0.3,seed=3", frame)
    assert set(one("random:test=0.2,seed=3", frame).test) <= set(bigger.test)


def test_a_share_that_rounds_to_no_rows_names_the_share_and_the_fix() -> None:
    with pytest.raises(SplitError) as caught:
        one("random:test=0.01", pd.DataFrame({"x": range(50)}))
    assert str(caught.value) == (
        "test=0.01 of 50 rows leaves the test part empty; use a larger test share or more data."
    )
    with pytest.raises(SplitError, match="leave the train part empty"):
        one("random:test=0.5,validation=0.49", pd.DataFrame({"x": range(3)}))
    with pytest.raises(SplitError, match="validation part empty"):
        one("random:test=0.5,validation=0.01", pd.DataFrame({"x": range(20)}))
    with pytest.raises(SplitError, match="The frame has no rows"):
        one("random:test=0.5", pd.DataFrame({"x": []}))


def test_stratified_keeps_breast_cancer_classes_in_proportion(cancer: pd.DataFrame) -> None:
    part = one("stratified:test=0.2,validation=0.1,seed=7", cancer, target="target")
    check_partition(part, len(cancer))
    assert len(part.test) == round(0.2 * len(cancer))
    y = cancer["target"].to_numpy()
    for label, size in zip(*np.unique(y, return_counts=True), strict=True):
        assert abs((y[part.test] == label).sum() - 0.2 * size) <= 1
        assert abs((y[part.validation] == label).sum() - 0.1 * size) <= 1
    assert part == one("stratified:test=0.2,validation=0.1,seed=7", cancer, target="target")


def test_stratified_gives_each_class_a_test_row_and_a_singleton_to_train() -> None:
    y = ["a"] * 90 + ["b"] * 6 + ["c"] * 2 + ["d"] + [None]
    frame = pd.DataFrame({"y": y})
    part = one("stratified:test=0.1,validation=0.1,seed=1", frame, target="y")
    check_partition(part, len(frame))
    labels = frame["y"].to_numpy()
    assert sorted(map(str, set(labels[part.test]))) == ["a", "b", "c"]
    assert {98, 99} <= set(part.train)  # the single 'd' and the single missing label
    assert "b" in set(labels[part.validation]) and "c" not in set(labels[part.validation])
    # 10 asked: 9 'a' by proportion, but 'b' and 'c' need one each, so 'a' gives one back.
    assert len(part.test) == 10 and (labels[part.test] == "a").sum() == 8


def test_stratified_needs_a_target() -> None:
    frame = pd.DataFrame({"x": range(10), "label": [0, 1] * 5})
    with pytest.raises(SplitError, match="needs the target column"):
        one("stratified:test=0.2", frame)
    with pytest.raises(
        SplitError,
        match=r"The target 'lable' is not a column.*\['x', 'label'\]. Did you mean 'label'\?",
    ):
        one("stratified:test=0.2", frame, target="lable")
    with pytest.raises(SplitError, match="Every value of target 'x' occurs once"):
        one("stratified:test=0.2", frame, target="x")


# --- group -----------------------------------------------------------------------------------


def test_group_split_keeps_each_firm_in_one_part(grunfeld: pd.DataFrame) -> None:
    part = one("group:column=firm,test=0.2,validation=0.2,seed=7", grunfeld)
    check_partition(part, len(grunfeld))
    firms = grunfeld["firm"].to_numpy()
    seen = [set(firms[rows]) for rows in (part.train, part.validation, part.test)]
    assert not (seen[0] & seen[1] or seen[0] & seen[2] or seen[1] & seen[2])
    assert len(part.test) == 40  # 44 asked; firms have 20 rows, so 2 firms is nearest


def test_group_split_lands_within_half_a_group_of_the_asked_rows() -> None:
    rng = np.random.default_rng(0)
    customers = [f"cust-{i:04d}" for i in range(500)]
    frame = pd.DataFrame(
        {"customer_id": rng.choice(customers, size=20_000, p=rng.dirichlet(np.ones(500)))}
    )
    biggest = frame["customer_id"].value_counts().max()
    for seed in range(5):
        part = one(f"group:column=customer_id,test=0.2,seed={seed}", frame)
        check_partition(part, len(frame))
        assert abs(len(part.test) - 4000) <= biggest / 2
        assert not set(frame["customer_id"].iloc[part.test]) & set(
            frame["customer_id"].iloc[part.train]
        )


def test_group_split_errors() -> None:
    with pytest.raises(
        SplitError, match=r"needs at least 3 groups \(one per part\); the frame has 2"
    ):
        one("group:column=g,test=0.2,validation=0.1", pd.DataFrame({"g": [1, 1, 2, 2]}))
    with pytest.raises(SplitError, match="Column 'g' has 2 missing value"):
        one("group:column=g,test=0.2", pd.DataFrame({"g": [1.0, None, 2, 3, np.nan]}))
    with pytest.raises(SplitError, match="holds values that cannot be told apart"):
        one("group:column=g,test=0.3", pd.DataFrame({"g": [[1], [2], [3]] * 5}))
    mixed = one("group:column=g,test=0.3", pd.DataFrame({"g": [1, "a", 2, "b", 3, "c"] * 5}))
    check_partition(mixed, 30)
    with pytest.raises(SplitError, match=r"The group column 'customer' is not a column.*\['g'\]"):
        one("group:column=customer,test=0.2", pd.DataFrame({"g": [1, 2, 3]}))


# --- time ------------------------------------------------------------------------------------


def test_time_cutoff_on_co2(co2: pd.DataFrame) -> None:
    part = one("time:column=date,cutoff=1990-01-01,validation_from=1985-01-01", co2)
    check_partition(part, len(co2))
    dates = co2["date"]
    assert dates.iloc[part.train].max() < pd.Timestamp("1985-01-01")
    assert assert_between(dates.iloc[part.validation], "1985-01-01", "1990-01-01")
    assert dates.iloc[part.test].min() >= pd.Timestamp("1990-01-01")
    shuffled = co2.sample(frac=1.0, random_state=1).reset_index(drop=True)
    again = one("time:column=date,cutoff=1990-01-01", shuffled)
    assert (shuffled["date"].iloc[again.test] >= pd.Timestamp("1990-01-01")).all()
    assert len(again.test) == len(part.test)


def assert_between(values: pd.Series, start: str, end: str) -> bool:
    return bool((values >= pd.Timestamp(start)).all() and (values < pd.Timestamp(end)).all())


def test_time_columns_of_other_kinds(co2: pd.DataFrame, macro: pd.DataFrame) -> None:
    years = one("time:column=year,cutoff=2000", macro)
    assert (
        macro["year"].iloc[years.test].min() == 2000
        and macro["year"].iloc[years.train].max() == 1999
    )
    as_text = co2.assign(date=co2["date"].dt.strftime("%Y-%m-%d"))
    assert one("time:column=date,cutoff=1990-01-01", as_text) == one(
        "time:column=date,cutoff=1990-01-01", co2
    )
    aware = co2.assign(date=co2["date"].dt.tz_localize("America/New_York"))
    part = one("time:column=date,cutoff=1990-01-01T05:00:00+00:00", aware)
    assert aware["date"].iloc[part.test].min() >= pd.Timestamp("1990-01-01", tz="America/New_York")
    numbered = one("time:column=0,cutoff=1990-01-01", co2.set_axis([0, 1], axis=1))
    assert numbered == one("time:column=date,cutoff=1990-01-01", co2)
    by_index = one("time:column=date,cutoff=1990-01-01", co2.set_index("date"))
    assert by_index == one("time:column=date,cutoff=1990-01-01", co2)


def test_time_share_never_splits_a_year_of_the_panel(grunfeld: pd.DataFrame) -> None:
    part = one("time:column=year,test=0.2,validation=0.1", grunfeld)
    check_partition(part, len(grunfeld))
    years = grunfeld["year"].to_numpy()
    assert set(years[part.test]) == {1951.0, 1952.0, 1953.0, 1954.0}  # 44 rows: exactly 4 years
    assert set(years[part.validation]) == {1949.0, 1950.0}  # 22 asked: 2 years
    assert years[part.train].max() < years[part.validation].min()
    odd = one("time:column=year,test=0.23", grunfeld)  # 50.6 rows asked: 55 (5 years) is nearest
    assert len(odd.test) == 55


def test_time_share_without_a_column_takes_the_last_rows(macro: pd.DataFrame) -> None:
    part = one("time:test=0.2,validation=0.1", macro)
    n = len(macro)
    assert part.test.tolist() == list(range(n - round(0.2 * n), n))
    assert part.validation is not None and part.validation[-1] == part.test[0] - 1
    assert len(part.validation) == round(0.1 * n)


def test_time_errors(co2: pd.DataFrame) -> None:
    with pytest.raises(
        SplitError,
        match=r"cutoff=2030-01-01 is outside the data range of column 'date', 1958-03-29 to 2001-12-29: the test part would be empty",
    ):
        one("time:column=date,cutoff=2030-01-01", co2)
    with pytest.raises(SplitError, match="the train part would be empty"):
        one("time:column=date,cutoff=1958-03-29", co2)
    with pytest.raises(SplitError, match="validation_from=1950-01-01 must be after the first time"):
        one("time:column=date,cutoff=1990-01-01,validation_from=1950-01-01", co2)
    with pytest.raises(SplitError, match="cutoff=5 is not a date, but column 'date' holds times"):
        one("time:column=date,cutoff=5", co2)
    with pytest.raises(
        SplitError, match="cutoff=1990-01-01 is not a number, but column 'co2' holds numbers"
    ):
        one("time:column=co2,cutoff=1990-01-01", co2.dropna())
    with pytest.raises(
        SplitError, match=r"Column 'co2' has 59 missing value\(s\) \(NaN/NaT/None\) of 2284 rows"
    ):
        one("time:column=co2,test=0.2", co2)
    bad = co2.assign(date=co2["date"].dt.strftime("%Y-%m-%d").where(co2.index != 7, "week 8"))
    with pytest.raises(SplitError, match="row 7 holds 'week 8', not an ISO 8601 date"):
        one("time:column=date,test=0.2", bad)
    with pytest.raises(SplitError, match=r"dtype bool\) is not parseable as time or number"):
        one("time:column=flag,test=0.2", pd.DataFrame({"flag": [True, False] * 5}))
    with pytest.raises(SplitError, match="has 1 distinct time"):
        one("time:column=d,test=0.2", pd.DataFrame({"d": [2020] * 10}))


# --- rolling ---------------------------------------------------------------------------------


def test_rolling_origin_on_weekly_co2(co2: pd.DataFrame) -> None:
    parts = split(SplitSpec.parse("rolling:column=date,horizon=52,folds=5,step=26"), co2)
    assert [p.name for p in parts] == [f"fold {i}" for i in range(1, 6)]
    dates = co2["date"]
    for before, after in zip(parts, parts[1:], strict=False):
        assert len(after.train) == len(before.train) + 26
    for part in parts:
        assert dates.iloc[part.train].max() < dates.iloc[part.test].min()
        assert len(part.test) == 52 and part.validation is None
        assert part.train.tolist() == list(range(len(part.train)))  # expanding window
    assert parts[-1].test[-1] == len(co2) - 1


def test_rolling_origin_without_a_column_uses_row_order(macro: pd.DataFrame) -> None:
    parts = split(SplitSpec.parse("rolling:horizon=4,folds=8,step=1,min_train=40"), macro)
    n = len(macro)
    assert [p.test.tolist() for p in parts[-1:]] == [list(range(n - 4, n))]
    assert parts[0].train.tolist() == list(range(n - 4 - 7))
    with pytest.raises(
        SplitError,
        match=r"needs at least 211 periods .* the frame has 203 rows, enough for 0 fold\(s\)",
    ):
        split(SplitSpec.parse("rolling:horizon=4,folds=8,step=1,min_train=200"), macro)


def test_rolling_on_a_panel_keeps_each_year_whole(grunfeld: pd.DataFrame) -> None:
    shuffled = grunfeld.sample(frac=1.0, random_state=2).reset_index(drop=True)
    parts = split(SplitSpec.parse("rolling:column=year,horizon=2,folds=3,min_train=10"), shuffled)
    years = shuffled["year"].to_numpy()
    assert [sorted(set(years[p.test])) for p in parts] == [[1949, 1950], [1951, 1952], [1953, 1954]]
    for part in parts:
        assert len(part.test) == 22 and years[part.train].max() < years[part.test].min()
    with pytest.raises(SplitError, match="column 'year' has 20 distinct times, enough for 2 fold"):
        split(SplitSpec.parse("rolling:column=year,horizon=5,folds=3,min_train=6"), grunfeld)


# --- digest, equality, reproducibility -------------------------------------------------------


def test_digest_covers_names_lengths_and_missing_validation() -> None:
    rows = np.arange(5, dtype=np.int64)
    base = [Part(train=rows[:3], test=rows[3:])]
    assert digest(base) == digest([Part(train=rows[:3].astype(np.int32), test=rows[3:])])
    assert digest(base) != digest([Part(train=rows[:3], test=rows[3:], name="fold 1")])
    empty = np.arange(0, dtype=np.int64)
    assert digest(base) != digest([Part(train=rows[:3], test=rows[3:], validation=empty)])
    assert digest(base) != digest([Part(train=rows[:2], test=rows[2:])])
    assert digest([]) != digest(base)
    assert repr(base[0]) == "Part('', train=3 rows, test=2 rows)"


FRAME = """
import numpy as np, pandas as pd
frame = pd.DataFrame({
    "customer": [f"cust-{i % 97}" for i in range(5000)],
    "label": [("yes", "no", "maybe")[i % 7 % 3] for i in range(5000)],
    "day": pd.Timestamp("2024-01-01") + pd.to_timedelta(np.arange(5000) // 13, unit="D"),
})
"""
SCRIPT = """
import json, sys
from loopml.evaluation.splits import SplitSpec, digest, split
texts = json.loads(sys.argv[1])
print(json.dumps([digest(split(SplitSpec.parse(t), frame, target="label")) for t in texts]))
"""
TEXTS = [
    "random:test=0.2,validation=0.1,seed=7",
    "stratified:test=0.2,validation=0.1,seed=7",
    "group:column=customer,test=0.2,validation=0.1,seed=7",
    "time:column=day,test=0.2",
    "time:column=day,cutoff=2024-12-01,validation_from=2024-10-01",
    "rolling:column=day,horizon=7,folds=5",
]


def test_same_indices_in_other_processes_whatever_the_hash_seed() -> None:
    namespace: dict[str, pd.DataFrame] = {}
    exec(FRAME, namespace)
    frame = namespace["frame"]
    here = [digest(split(SplitSpec.parse(t), frame, target="label")) for t in TEXTS]
    assert len(set(here)) == len(TEXTS)
    for hash_seed in ("0", "12345"):
        done = subprocess.run(
            [sys.executable, "-c", FRAME + SCRIPT, json.dumps(TEXTS)],
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
            env={**os.environ, "PYTHONPATH": SRC, "PYTHONHASHSEED": hash_seed},
        )
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout) == here


def test_importing_the_split_modules_loads_no_heavy_library() -> None:
    code = (
        "import sys, loopml.evaluation.splits, loopml.evaluation._split_kinds\n"
        "print(sorted({'numpy', 'pandas', 'sklearn'} & set(sys.modules)))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        env={**os.environ, "PYTHONPATH": SRC},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_a_million_rows_split_well_under_a_second(capsys: pytest.CaptureFixture[str]) -> None:
    n = 1_000_000
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "y": rng.integers(0, 5, n),
            "g": rng.integers(0, 50_000, n),
            "d": pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 1500, n), unit="D"),
        }
    )
    for text in [
        "random:test=0.2,validation=0.1,seed=7",
        "stratified:test=0.2,validation=0.1,seed=7",
        "group:column=g,test=0.2,validation=0.1,seed=7",
        "time:column=d,cutoff=2023-01-01,validation_from=2022-10-01",
        "time:column=d,test=0.2,validation=0.1",
        "rolling:column=d,horizon=30,folds=5",
    ]:
        start = time.perf_counter()
        split(SplitSpec.parse(text), frame, target="y")
        assert time.perf_counter() - start < 1.0, text
    assert capsys.readouterr() == ("", "")


# --- properties on random frames -------------------------------------------------------------


@st.composite
def frames_and_specs(draw: st.DrawFn) -> tuple[pd.DataFrame, SplitSpec]:
    n = draw(st.integers(1, 120))
    ints = st.lists(st.integers(0, draw(st.integers(0, 30))), min_size=n, max_size=n)
    frame = pd.DataFrame({"y": draw(ints), "g": draw(ints), "t": draw(ints)})
    kind = draw(
        st.sampled_from(["random", "stratified", "group", "time", "time-cutoff", "rolling"])
    )
    test = draw(st.floats(0.05, 0.6))
    validation = draw(st.none() | st.floats(0.05, 0.3))
    seed = draw(st.integers(0, 2**32))
    column = draw(st.sampled_from(["t", None]))
    if kind == "rolling":
        spec = SplitSpec(
            "rolling",
            column=column,
            horizon=draw(st.integers(1, 5)),
            folds=draw(st.integers(1, 4)),
            step=draw(st.integers(1, 5)),
            min_train=draw(st.integers(1, 3)),
        )
    elif kind == "time-cutoff":
        spec = SplitSpec("time", column="t", cutoff=str(draw(st.integers(0, 30))))
    elif kind == "time":
        spec = SplitSpec("time", column=column, test=test, validation=validation)
    else:
        spec = SplitSpec(
            kind,
            column="g" if kind == "group" else None,
            test=test,
            validation=validation,
            seed=seed,
        )
    return frame, spec


@settings(max_examples=100, deadline=None)
@given(frames_and_specs())
def test_parts_never_overlap_and_cover_every_row(case: tuple[pd.DataFrame, SplitSpec]) -> None:
    frame, spec = case
    try:
        parts = split(spec, frame, target="y")
    except SplitError as exc:
        assert any(w in str(exc) for w in ("empty", "groups", "distinct time", "periods")), exc
        return
    assert parts == split(spec, frame, target="y")
    assert SplitSpec.parse(str(spec)) == spec
    if spec.kind != "rolling":
        [part] = parts
        check_partition(part, len(frame))
        return
    assert len(parts) == spec.folds
    order = frame["t"].to_numpy() if spec.column else np.arange(len(frame))
    for part in parts:
        assert len(part.train) >= 1 and len(part.test) >= 1
        assert not set(part.train) & set(part.test)
        assert order[part.train].max() < order[part.test].min()
