"""Batch scoring of files (``loopml.serving.batch.score_file``) and ``loopml predict``.

Models are small scikit-learn models registered in the test's own project: a classifier
with a categorical column and a regressor. Most tests use the native runtime to stay fast;
one runs ``auto``. The R17 corpus of malformed CSV files goes through ``score_file`` whole
and a sample of it through the real console script; the memory test runs
``loopml predict`` on 10^4 and 10^6 rows in subprocesses and compares their peak RSS.
"""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import loopml
from cli_runner import run_cli
from loopml.errors import InvalidParameterError, LoopmlError
from loopml.serving.batch import BatchResult, score_file

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "reliability"))
from csv_corpus import CsvCase, cases, good_file  # noqa: E402

PLANS = ("basic", "pro", "max")


def _frame(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "age": rng.integers(18, 80, n),
            "income": rng.normal(50, 10, n).round(3),
            "plan": rng.choice(PLANS, n),
        }
    )


@pytest.fixture
def classifier(project: Path) -> Any:
    from sklearn.compose import make_column_transformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    X = _frame(300)
    y = np.where(X.income + (X.plan == "pro") * 8 > 53, "yes", "no")
    model = make_pipeline(
        make_column_transformer((OneHotEncoder(), ["plan"]), remainder="passthrough"),
        LogisticRegression(max_iter=1000),
    ).fit(X, y)
    loopml.register("churn", model, X=X)
    return model


@pytest.fixture
def regressor(project: Path) -> Any:
    from sklearn.linear_model import Ridge

    X = _frame(300)[["age", "income"]]
    model = Ridge().fit(X, X.income * 2 + X.age)
    loopml.register("spend", model, X=X)
    return model


def _write(frame: pd.DataFrame, path: Path) -> Path:
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)
    return path


def _read(path: Path) -> pd.DataFrame:
    return pd.read_csv(path) if path.suffix == ".csv" else pd.read_parquet(path)


@pytest.mark.parametrize("fmt", [".parquet", ".csv"])
def test_classifier_scores_a_file_as_the_model_does(
    classifier: Any, tmp_path: Path, fmt: str
) -> None:
    X = _frame(250, seed=1)
    source = _write(X, tmp_path / f"in{fmt}")
    result = score_file("churn@1", source, tmp_path / f"out{fmt}", runtime="native")
    assert isinstance(result, BatchResult)
    assert (result.scored, result.rejected, result.runtime, result.model) == (
        250,
        0,
        "native",
        "churn@1",
    )
    out = _read(result.output)
    assert list(out.columns) == [
        "age",
        "income",
        "plan",
        "prediction",
        "proba_no",
        "proba_yes",
        "prediction_id",
    ]
    pd.testing.assert_frame_equal(out[list(X.columns)], X, check_dtype=False)
    assert (out["prediction"].to_numpy() == classifier.predict(X)).all()
    np.testing.assert_allclose(
        out[["proba_no", "proba_yes"]].to_numpy(), classifier.predict_proba(X), rtol=1e-12
    )
    ids = out["prediction_id"].tolist()
    assert len(set(ids)) == 250
    assert all(re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", i) for i in ids)


@pytest.mark.parametrize(("fmt", "out"), [(".parquet", ".csv"), (".csv", ".parquet")])
def test_regressor_scores_across_formats(
    regressor: Any, tmp_path: Path, fmt: str, out: str
) -> None:
    X = _frame(120, seed=2)[["age", "income"]]
    source = _write(X, tmp_path / f"in{fmt}")
    result = score_file("spend@1", source, tmp_path / f"out{out}", runtime="native")
    scored = _read(result.output)
    assert list(scored.columns) == ["age", "income", "prediction", "prediction_id"]
    np.testing.assert_allclose(scored["prediction"], regressor.predict(X), rtol=1e-12)


@pytest.mark.parametrize("fmt", [".parquet", ".csv"])
def test_chunking_does_not_change_results(classifier: Any, tmp_path: Path, fmt: str) -> None:
    source = _write(_frame(100, seed=3), tmp_path / f"in{fmt}")
    small = score_file("churn", source, tmp_path / "small.parquet", chunk_rows=7, runtime="native")
    whole = score_file(
        "churn", source, tmp_path / "whole.parquet", chunk_rows=1000, runtime="native"
    )
    a, b = _read(small.output), _read(whole.output)
    pd.testing.assert_frame_equal(a.drop(columns="prediction_id"), b.drop(columns="prediction_id"))
    assert small.scored == whole.scored == 100


def test_auto_runtime_matches_the_model(classifier: Any, tmp_path: Path) -> None:
    X = _frame(50, seed=4)
    seen: list[tuple[int, int]] = []
    result = score_file(
        "churn@1",
        _write(X, tmp_path / "in.parquet"),
        tmp_path / "out.parquet",
        runtime="auto",
        chunk_rows=20,
        on_chunk=lambda checked, outputs, ids: seen.append((checked.n, len(ids))),
    )
    assert result.runtime in ("onnx", "native")
    out = _read(result.output)
    assert (out["prediction"].to_numpy() == classifier.predict(X)).all()
    np.testing.assert_allclose(
        out[["proba_no", "proba_yes"]].to_numpy(), classifier.predict_proba(X), atol=1e-4
    )
    assert seen == [(20, 20), (20, 20), (10, 10)]


def test_progress_reaches_the_total(classifier: Any, tmp_path: Path) -> None:
    calls: list[tuple[int, int | None]] = []
    for fmt in (".parquet", ".csv"):
        calls.clear()
        source = _write(_frame(30), tmp_path / f"in{fmt}")
        score_file(
            "churn", source, tmp_path / "o.parquet", chunk_rows=10, runtime="native",
            progress=lambda done, total: calls.append((done, total)),
        )  # fmt: skip
        assert [done for done, _ in calls] == [10, 20, 30, 30]
        assert calls[-1] == (30, 30)
        if fmt == ".parquet":
            assert all(total == 30 for _, total in calls)


def test_a_bad_csv_row_stops_with_its_line_and_column(classifier: Any, tmp_path: Path) -> None:
    X = _frame(40, seed=5).astype({"income": object, "plan": object})
    X.insert(0, "note", "")
    X.loc[3, "note"] = "two\nlines"  # a quoted newline: lines and rows differ after it
    X.loc[1, "plan"] = "gold"
    source = _write(X, tmp_path / "in.csv")
    with pytest.raises(InvalidParameterError) as caught:
        score_file("churn", source, tmp_path / "out.csv", chunk_rows=10, runtime="native")
    message = str(caught.value)
    assert f"CSV file {str(source)!r} does not fit churn@1 (1 problem)" in message
    assert "line 3, column 'plan': got 'gold'; expected one of the 3 categories" in message
    assert not (tmp_path / "out.csv").exists()
    X.loc[1, "plan"] = "pro"
    X.loc[25, "income"] = "lots"
    with pytest.raises(InvalidParameterError) as caught:
        score_file("churn", _write(X, source), tmp_path / "out.csv", chunk_rows=10)
    assert "line 28, column 'income': got 'lots'; expected float" in str(caught.value)
    assert "--rejects" in str(caught.value)


def test_a_bad_parquet_row_stops_with_its_row_and_column(classifier: Any, tmp_path: Path) -> None:
    X = _frame(40, seed=6)
    X["age"] = X["age"].astype("float64")
    X.loc[[17, 18], "age"] = np.nan
    source = _write(X, tmp_path / "in.parquet")
    with pytest.raises(InvalidParameterError) as caught:
        score_file("churn", source, tmp_path / "out.parquet", chunk_rows=15, runtime="native")
    assert "row 18 (also row 19), column 'age': got a missing value" in str(caught.value)


def test_a_missing_column_stops_even_with_rejects(classifier: Any, tmp_path: Path) -> None:
    source = _write(_frame(10).drop(columns="plan"), tmp_path / "in.parquet")
    with pytest.raises(InvalidParameterError, match="plan"):
        score_file("churn", source, tmp_path / "o.csv", rejects=tmp_path / "r.csv")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.parquet", "project"]


@pytest.mark.parametrize("fmt", [".csv", ".parquet"])
def test_rejects_split_good_and_bad_rows_exactly(classifier: Any, tmp_path: Path, fmt: str) -> None:
    X = _frame(200, seed=7).astype({"income": object, "age": object})
    X.insert(0, "key", range(200))
    bad = {2, 3, 4, 5, 6, 7, 8, 40, 41, 99, 150, 199}  # more than five in one chunk
    for i in bad:
        X.loc[i, "plan" if i % 2 else "income"] = "gold" if i % 2 else None
    X.loc[150, "age"] = None  # two problems in one row
    source = _write(X, tmp_path / f"in{fmt}")
    result = score_file(
        "churn",
        source,
        tmp_path / f"out{fmt}",
        rejects=tmp_path / f"rejected{fmt}",
        chunk_rows=64,
        runtime="native",
    )
    assert (result.scored, result.rejected) == (200 - len(bad), len(bad))
    rejected = _read(tmp_path / f"rejected{fmt}")
    assert set(rejected["key"]) == bad and list(rejected["key"]) == sorted(bad)
    assert list(rejected.columns) == ["key", "age", "income", "plan", "error"]
    reasons = dict(zip(rejected["key"], rejected["error"], strict=True))
    assert reasons[3].startswith("column 'plan': got 'gold'; expected one of the 3 categories")
    assert reasons[2].startswith("column 'income': got a missing value; expected no missing")
    assert "column 'age': got a missing value" in reasons[150]
    out = _read(result.output)
    good = X.drop(index=sorted(bad)).astype({"income": float, "age": int})
    assert list(out["key"]) == list(good["key"])
    assert (out["prediction"].to_numpy() == classifier.predict(good.drop(columns="key"))).all()


def test_csv_output_neutralizes_formulas(classifier: Any, tmp_path: Path) -> None:
    notes = ["=1+1", "+1+2", "-2+3", "@SUM(A1:A9)", "\t=cmd", "\r=1", "-5", "+1.5e3", "ok", ""]
    X = _frame(len(notes), seed=8)
    X.insert(0, "note", notes)
    X.insert(1, "delta", [-1.5] * len(notes))
    named = X.rename(columns={"delta": "=delta"})
    named.to_parquet(tmp_path / "in.parquet", index=False)
    named.to_csv(tmp_path / "in.csv", index=False, quoting=csv.QUOTE_NONNUMERIC)  # keeps the CR
    for fmt in (".parquet", ".csv"):
        source = tmp_path / f"in{fmt}"
        score_file("churn", source, tmp_path / "out.csv", runtime="native")
        text = (tmp_path / "out.csv").read_text()
        assert text.startswith('"note","\'=delta",')
        out = pd.read_csv(tmp_path / "out.csv", keep_default_na=False)
        expected = ["'=1+1", "'+1+2", "'-2+3", "'@SUM(A1:A9)", "'\t=cmd", "'\r=1", "-5", "+1.5e3"]
        assert out["note"].tolist() == [*expected, "ok", ""]
        assert (out["'=delta"].astype(float) == -1.5).all()
    score_file("churn", tmp_path / "in.csv", tmp_path / "out.parquet", runtime="native")
    assert _read(tmp_path / "out.parquet")["note"].tolist()[:6] == notes[:6]


def test_a_failed_run_leaves_no_output(classifier: Any, tmp_path: Path) -> None:
    X = _frame(100, seed=9).astype({"plan": object})
    X.loc[90, "plan"] = "gold"  # in the last of several chunks, after some were written
    source = _write(X, tmp_path / "in.parquet")
    (tmp_path / "out.parquet").write_bytes(b"the previous run's output")
    with pytest.raises(InvalidParameterError, match="row 91"):
        score_file("churn", source, tmp_path / "out.parquet", chunk_rows=10, runtime="native")
    assert (tmp_path / "out.parquet").read_bytes() == b"the previous run's output"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.parquet", "out.parquet", "project"]


@pytest.mark.parametrize(
    ("output", "rejects", "match"),
    [
        ("out.json", None, "expected one of .csv, .parquet, .pq"),
        ("in.parquet", None, "is the input file"),
        ("out.csv", "out.csv", "is the output file"),
        ("nowhere/out.csv", None, "does not exist"),
    ],
)
def test_bad_paths_are_refused(
    classifier: Any, tmp_path: Path, output: str, rejects: str | None, match: str
) -> None:
    source = _write(_frame(5), tmp_path / "in.parquet")
    with pytest.raises(InvalidParameterError, match=match):
        score_file("churn", source, tmp_path / output, rejects=rejects and tmp_path / rejects)
    with pytest.raises(InvalidParameterError, match="no such file"):
        score_file("churn", tmp_path / "none.csv", tmp_path / "out.csv")


def test_an_empty_file_gives_an_empty_output(classifier: Any, tmp_path: Path) -> None:
    (tmp_path / "in.csv").write_text("age,income,plan\n")
    result = score_file("churn", tmp_path / "in.csv", tmp_path / "out.parquet", runtime="native")
    assert result.scored == 0
    assert list(_read(result.output).columns)[-4:] == [
        "prediction",
        "proba_no",
        "proba_yes",
        "prediction_id",
    ]


# -- R17: the malformed-CSV corpus ---------------------------------------------------------


@pytest.fixture
def corpus_model(project: Path) -> Any:
    from sklearn.linear_model import LinearRegression

    (project / "good.csv").write_bytes(good_file(20))
    X = pd.read_csv(project / "good.csv")[["id", "score"]]
    loopml.register("corpus", LinearRegression().fit(X, X.score * 2 - X.id), X=X)


def _case_file(folder: Path, case: CsvCase) -> Path:
    folder.mkdir(exist_ok=True)
    path = folder / (re.sub(r"[^A-Za-z0-9_-]", "_", case.id) + ".csv")
    path.write_bytes(case.data)
    return path


def _judge(case: CsvCase, message: str | None, output: Path) -> list[str]:
    """What is wrong with the outcome of one case (empty when right)."""
    if not case.accepted:
        if message is None:
            return [f"{case.id}: accepted; expected a refusal at line {case.line}"]
        return [f"{case.id}: {m} not named in {message!r}" for m in case.problems_with(message)]
    if message is not None:  # a clear schema error naming a column is fine
        named = re.search(r"column '[^']+'|missing columns: \[", message)
        return [] if named else [f"{case.id}: {message}"]
    out = pd.read_csv(output, dtype=str, keep_default_na=False)
    risky = [v for v in out.to_numpy().ravel() if re.match(r"[=+\-@\t\r]", v)]
    risky = [v for v in risky if not re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", v)]
    problems = [f"{case.id}: formula cells in the output {risky}"] if risky else []
    if len(out) != len(case.rows):
        problems.append(f"{case.id}: {len(out)} rows scored; expected {len(case.rows)}")
    return problems


def test_r17_corpus_through_score_file(corpus_model: Any, tmp_path: Path) -> None:
    problems: list[str] = []
    for case in cases():
        path = _case_file(tmp_path / "cases", case)
        output = tmp_path / "out.csv"
        try:
            score_file("corpus", path, output, runtime="native", chunk_rows=1000)
            message = None
        except LoopmlError as exc:
            message = str(exc)
        problems += _judge(case, message, output)
    assert not problems, "\n".join(problems[:20])


def test_r17_corpus_through_the_cli(corpus_model: Any, project: Path, tmp_path: Path) -> None:
    by_category: dict[str, list[CsvCase]] = defaultdict(list)
    for case in cases():
        by_category[case.category].append(case)
    problems: list[str] = []
    # Every case goes through score_file above; here the console script shows the same
    # outcome (exit 1, "Error: ...", no traceback) for a sample: each CLI start costs seconds.
    for category in ("ragged-more", "not-utf8", "empty", "formula-cells", "quoted-newlines"):
        found = by_category[category]
        case = found[len(found) // 2]
        path = _case_file(tmp_path / "cases", case)
        output = tmp_path / "out.csv"
        done = run_cli("predict", "corpus", str(path), "-o", str(output), "--runtime", "native",
                       cwd=project)  # fmt: skip
        assert "Traceback" not in done.stderr, (category, done.stderr)
        if done.returncode == 0:
            message = None
        else:
            assert done.returncode == 1 and done.stderr.startswith("Error: "), done.stderr
            message = done.stderr
        problems += _judge(case, message, output)
    assert not problems, "\n".join(problems)


# -- the command ---------------------------------------------------------------------------


def test_cli_scores_and_prints_a_summary(classifier: Any, project: Path) -> None:
    _write(_frame(30), project / "in.csv")
    done = run_cli("predict", "churn@1", "in.csv", "-o", "out.parquet", "--runtime", "native",
                   cwd=project)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert re.match(r"Scored 30 rows with churn@1 \(native\) in .* rows/s\); wrote out.parquet",
                    done.stdout), done.stdout  # fmt: skip
    done = run_cli("predict", "churn", "in.csv", "-o", "o.csv", "--rejects", "r.parquet",
                   "--chunk-rows", "8", "--json", cwd=project)  # fmt: skip
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert (summary["scored"], summary["rejected"], summary["rejects"]) == (30, 0, "r.parquet")
    assert summary["model"] == "churn@1" and summary["runtime"] in ("onnx", "native")


def test_cli_help_and_errors(classifier: Any, project: Path) -> None:
    done = run_cli("predict", "--help", cwd=project)
    assert done.returncode == 0
    for word in ("--rejects", "--chunk-rows", "--runtime", "--json", "Examples:", "INPUT"):
        assert word in done.stdout
    _write(_frame(5), project / "in.parquet")
    for args, expected in [
        (("nope@1", "in.parquet"), "No model named 'nope'"),
        (("churn@1", "missing.csv"), "Input file 'missing.csv': no such file"),
        (("churn@7", "in.parquet"), "churn"),
    ]:
        done = run_cli("predict", *args, "-o", "out.csv", cwd=project)
        assert done.returncode == 1, done.stderr
        assert done.stderr.startswith("Error: ") and expected in done.stderr, done.stderr
        assert "Traceback" not in done.stderr
    assert not (project / "out.csv").exists()


# -- R17: memory stays flat ----------------------------------------------------------------

_PEAK = """
import resource, subprocess, sys
done = subprocess.run(sys.argv[1:], capture_output=True, text=True)
sys.stderr.write(done.stderr)
print(done.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def _peak_rss_mb(project: Path, rows: int, folder: Path) -> float:
    """Peak RSS of one ``loopml predict`` over ``rows`` rows, measured by its own parent."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    source = folder / f"in{rows}.parquet"
    rng = np.random.default_rng(rows)
    with pq.ParquetWriter(source, pa.schema([("a", pa.float64()), ("b", pa.float64())])) as w:
        for start in range(0, rows, 250_000):
            n = min(250_000, rows - start)
            w.write_table(pa.table({"a": rng.random(n), "b": rng.random(n)}))
    exe = Path(sys.executable).parent / "loopml"
    command = [str(exe), "predict", "small", str(source), "-o", str(folder / "out.parquet")]
    done = subprocess.run(
        [sys.executable, "-c", _PEAK, *command, "--runtime", "native"],
        cwd=project, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    code, kib = done.stdout.split()
    assert code == "0", done.stderr
    return int(kib) / 1024


def test_r17_memory_is_flat_in_the_rows(project: Path, tmp_path: Path) -> None:
    from sklearn.linear_model import LinearRegression

    X = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0], "b": [1.0, 0.0, 1.0, 0.0]})
    loopml.register("small", LinearRegression().fit(X, X.a + X.b), X=X)
    small = _peak_rss_mb(project, 10_000, tmp_path)
    big = _peak_rss_mb(project, 1_000_000, tmp_path)
    print(f"peak RSS of loopml predict: 10^4 rows {small:.0f} MB, 10^6 rows {big:.0f} MB")
    assert big - small < 100
