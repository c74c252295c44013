"""loopml monitoring benchmarks: every statistic of one window, against Evidently's data-drift report.

Usage::

    .venv/bin/python bench/monitoring.py                  # 1,000,000-row window and reference
    .venv/bin/python bench/monitoring.py --quick          # 100,000 rows, for the smoke test
    .venv/bin/python bench/monitoring.py --no-evidently   # loopml only (no Evidently venv)
    .venv/bin/python bench/monitoring.py --rows 200000 --only window,evidently

Goal (issue 19): all statistics of one window of 1,000,000 predictions x 20 features in
under 3 s. The data: a reference and a current window of ``rows`` rows each (the same size:
a month of predictions against the month the model was validated on), 10 float features
and 10 string features of 5 to 50 categories, 0.5 % missing in ``num1`` and ``cat1``, a
binary ``prediction`` column and its ``score``. One feature drifts: ``num3``'s mean moves
by half a standard deviation; the others are fresh draws from the same distributions.
Both tables are written to Parquet once and every benchmark reads them from there.

- ``window``: ``loopml.monitoring.stats.window_statistics`` in this process, on pandas
  frames read from the Parquet files (reading not timed): the first call, then the best
  of 3. Also checks that the drifted feature, and only it, is flagged.
- ``process``: what a user waits for: a fresh ``python -c`` process that imports loopml,
  reads both Parquet files with pandas, calls ``window_statistics`` and dumps its
  ``to_dict()`` as JSON; the whole process, with its phases as the child timed them.
- ``evidently``: Evidently's ``DataDriftPreset`` report (0.7 API) on the same Parquet files
  and the same 20 features, in a child process of a separate venv,
  ``build/bench-venvs/evidently`` (created on first use: ``pip install evidently==0.7.23
  "pandas<3" pyarrow``; evidently is never a loopml dependency). The report computation
  (``Dataset.from_pandas`` + ``Report.run``) is timed inside the child, and the whole child
  process from outside; both are compared with the loopml child's. It also prints the
  columns each flags as drifted. Skipped with ``--no-evidently``.

Same output rules as ``bench/core.py``; nothing asserted.
"""

from __future__ import annotations

import argparse
import atexit
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _cli import main as run  # noqa: E402
from _timing import PYTHON, Options, clean_env, fmt_s, judged, median, report  # noqa: E402

BUDGET_S = 3.0
NUMERIC = [f"num{i}" for i in range(10)]
CATEGORICAL = [f"cat{i}" for i in range(10)]
FEATURES = NUMERIC + CATEGORICAL
DRIFTED = ["num3"]
EVIDENTLY_VERSION = "0.7.23"
# evidently 0.7.23 imports pandas.core.dtypes.common.infer_dtype_from_object, gone in pandas 3.
EVIDENTLY_REQUIREMENTS = [f"evidently=={EVIDENTLY_VERSION}", "pandas<3", "pyarrow"]
EVIDENTLY_VENV = Path(__file__).resolve().parents[1] / "build" / "bench-venvs" / "evidently"
CHILD_TIMEOUT_S = 3600

SETTINGS: dict[str, Any] = {"rows": 0, "evidently": True}
_state: dict[str, Any] = {}

LOOPML_CHILD = """
import json, sys, time
t0 = time.perf_counter()
import pandas as pd
from loopml.monitoring.stats import window_statistics
t1 = time.perf_counter()
reference, current = pd.read_parquet(sys.argv[1]), pd.read_parquet(sys.argv[2])
t2 = time.perf_counter()
stats = window_statistics(reference, current, **json.loads(sys.argv[3]))
t3 = time.perf_counter()
text = json.dumps(stats.to_dict())
t4 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "read": t2 - t1, "compute": t3 - t2, "json": t4 - t3}))
"""

EVIDENTLY_CHILD = """
import json, sys, time
t0 = time.perf_counter()
import pandas as pd
from evidently import DataDefinition, Dataset, Report
from evidently.presets import DataDriftPreset
t1 = time.perf_counter()
numeric, categorical = json.loads(sys.argv[3]), json.loads(sys.argv[4])
columns = numeric + categorical
reference = pd.read_parquet(sys.argv[1], columns=columns)
current = pd.read_parquet(sys.argv[2], columns=columns)
t2 = time.perf_counter()
definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)
snapshot = Report([DataDriftPreset(columns=columns)]).run(
    Dataset.from_pandas(current, data_definition=definition),
    Dataset.from_pandas(reference, data_definition=definition),
)
t3 = time.perf_counter()
text = snapshot.json()
t4 = time.perf_counter()
drifted, methods = [], set()
for metric in snapshot.dict()["metrics"]:
    config = metric["config"]
    if not config["type"].endswith(":ValueDrift"):
        continue
    method, value, threshold = config["method"], metric["value"], config["threshold"]
    methods.add(method)
    # Evidently's rule: a p-value below the threshold, or a distance at or above it.
    if (value < threshold) if "p_value" in method else (value >= threshold):
        drifted.append(config["column"])
import evidently
print(json.dumps({
    "import": t1 - t0, "read": t2 - t1, "compute": t3 - t2, "json": t4 - t3,
    "drifted": sorted(drifted), "methods": sorted(methods),
    "versions": f"evidently {evidently.__version__}, pandas {pd.__version__}",
}))
"""


def _rows(opts: Options) -> int:
    return int(SETTINGS["rows"] or opts.pick(1_000_000, 100_000))


def _frame(rows: int, rng: Any, *, current: bool) -> Any:
    import numpy as np
    import pandas as pd

    columns: dict[str, Any] = {}
    for i, name in enumerate(NUMERIC):
        shift = 0.5 if current and name in DRIFTED else 0.0
        columns[name] = rng.normal(shift, 1.0, rows) * (1 + i) + 10 * i
    for i, name in enumerate(CATEGORICAL):
        cats = np.array([f"{name}_{k}" for k in range(5 + 5 * i)], dtype=object)
        weights = 1.0 / np.arange(1, len(cats) + 1)  # uneven, as real categories are
        columns[name] = rng.choice(cats, rows, p=weights / weights.sum())
    frame = pd.DataFrame(columns)
    frame.loc[rng.random(rows) < 0.005, "num1"] = np.nan
    frame["cat1"] = frame["cat1"].where(rng.random(rows) >= 0.005, None)
    z = (frame["num0"].to_numpy() - 0.0) + (frame["num3"].to_numpy() - 30) / 4
    score = 1 / (1 + np.exp(-(z + rng.normal(0, 1, rows))))
    frame["score"] = score
    frame["prediction"] = (score >= 0.5).astype(np.int64)
    return frame


def _data(opts: Options) -> tuple[Path, Path]:
    """The reference and current Parquet files, written once per run of the script."""
    if "paths" not in _state:
        import numpy as np

        rows = _rows(opts)
        folder = Path(tempfile.mkdtemp(prefix="loopml-bench-monitoring-"))
        atexit.register(shutil.rmtree, folder, True)
        rng = np.random.default_rng(0)
        paths = folder / "reference.parquet", folder / "current.parquet"
        for path, current in zip(paths, (False, True), strict=True):
            _frame(rows, rng, current=current).to_parquet(path, index=False)
        _state["paths"] = paths
    return _state["paths"]  # type: ignore[no-any-return]


def _child(cmd: list[str], env: dict[str, str]) -> tuple[float, dict[str, Any]]:
    """Wall seconds of one whole child process, and the JSON it printed last."""
    started = time.perf_counter()
    done = subprocess.run(
        cmd, env=env, capture_output=True, text=True, timeout=CHILD_TIMEOUT_S, check=False
    )
    took = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{cmd[0]} -c ... exited {done.returncode}:\n{done.stderr[-3000:]}")
    return took, json.loads(done.stdout.strip().splitlines()[-1])


def _phases(out: dict[str, Any]) -> str:
    return (
        f"import {fmt_s(out['import'])}, read Parquet {fmt_s(out['read'])}, "
        f"compute {fmt_s(out['compute'])}, JSON {fmt_s(out['json'])}"
    )


def _arguments() -> dict[str, Any]:
    """``window_statistics``'s keyword arguments (JSON, for the child process too).

    ``classes`` as a binary classifier's monitor passes them: the confidence-based
    performance estimate is computed too.
    """
    return {"features": FEATURES, "prediction": "prediction", "score": "score", "classes": [0, 1]}


def bench_window(opts: Options) -> None:
    import pandas as pd

    ref_path, cur_path = _data(opts)
    reference, current = pd.read_parquet(ref_path), pd.read_parquet(cur_path)
    rows = len(current)

    started = time.perf_counter()
    from loopml.monitoring.stats import window_statistics

    def once() -> Any:
        return window_statistics(reference, current, **_arguments())

    stats = once()
    first = time.perf_counter() - started
    times, cpu = [], []
    for _ in range(3):
        began, began_cpu = time.perf_counter(), time.process_time()
        once()
        times.append(time.perf_counter() - began)
        cpu.append(time.process_time() - began_cpu)
    best = min(times)
    _state["window_best"] = best
    size = f"{rows:,} rows vs a {len(reference):,}-row reference, 20 features + prediction + score"
    report(
        opts,
        "window_statistics, best of 3",
        f"{fmt_s(best)} for {size}",
        f"< {BUDGET_S:g} s at 1,000,000 rows",
        judged(opts, best < BUDGET_S) if rows == 1_000_000 else None,
    )
    report(opts, "window_statistics, first call (its imports included)", fmt_s(first))
    # CPU seconds over both cores: steadier than wall time on a shared machine.
    report(opts, "window_statistics CPU time (all threads), median of 3", fmt_s(median(cpu)))
    drifted = sorted(stats.drifted)
    _state["loopml_drifted"] = drifted
    report(
        opts,
        "window_statistics drifted features",
        f"{', '.join(drifted) or 'none'} (made to drift: {', '.join(DRIFTED)})"
        + ("" if drifted == DRIFTED else " WRONG RESULT"),
    )


def _loopml_process(opts: Options) -> tuple[float, dict[str, Any]]:
    if "process" not in _state:
        ref_path, cur_path = _data(opts)
        cmd = [PYTHON, "-c", LOOPML_CHILD, str(ref_path), str(cur_path), json.dumps(_arguments())]
        # Warm-up: compiles bytecode into the bench's fresh cache (long done on a user's machine).
        _child(cmd, clean_env())
        runs = [_child(cmd, clean_env()) for _ in range(opts.pick(2, 1))]
        _state["process"] = min(runs, key=lambda run: run[0])
    return _state["process"]  # type: ignore[no-any-return]


def bench_process(opts: Options) -> None:
    took, out = _loopml_process(opts)
    report(
        opts,
        "window_statistics, whole `python -c` process (import, read Parquet, compute, JSON)",
        f"{fmt_s(took)} for {_rows(opts):,} rows ({_phases(out)}); best of {opts.pick(2, 1)}",
    )


def _evidently_python() -> Path:
    """The Evidently venv's interpreter, creating the venv on first use."""
    python = EVIDENTLY_VENV / "bin" / "python"
    marker = EVIDENTLY_VENV / f".bench-installed-{EVIDENTLY_VERSION}"
    if marker.exists():
        return python
    base = shutil.which("python3.11") or sys.executable
    if not python.exists():
        print(f"# evidently: creating the venv {EVIDENTLY_VENV} ({base} -m venv)", flush=True)
        subprocess.run([base, "-m", "venv", str(EVIDENTLY_VENV)], check=True)
    print(
        f"# evidently: pip install {' '.join(EVIDENTLY_REQUIREMENTS)} into it (a few minutes)",
        flush=True,
    )
    subprocess.run(
        [str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
        + EVIDENTLY_REQUIREMENTS,
        check=True,
    )
    marker.touch()
    return python


def bench_evidently(opts: Options) -> None:
    if not SETTINGS["evidently"]:
        print("# evidently: skipped (--no-evidently)", flush=True)
        return
    python = _evidently_python()
    ref_path, cur_path = _data(opts)
    env = clean_env(DO_NOT_TRACK="1", EVIDENTLY_DISABLE_TELEMETRY="1")
    # The venv ships compiled bytecode: no private cache, which would recompile Evidently.
    env.pop("PYTHONPYCACHEPREFIX", None)
    env.pop("PYTHONPATH", None)
    # Warm-up of the imports only (the report itself takes minutes at full size).
    subprocess.run(
        [str(python), "-c", "import evidently.presets, pandas"], env=env, check=True, timeout=600
    )
    cmd = [str(python), "-c", EVIDENTLY_CHILD, str(ref_path), str(cur_path)]
    took, out = _child([*cmd, json.dumps(NUMERIC), json.dumps(CATEGORICAL)], env)
    loopml_took, loopml = _loopml_process(opts)
    report(
        opts,
        "Evidently DataDriftPreset report (Dataset.from_pandas + Report.run), same data",
        f"{fmt_s(out['compute'])} for {_rows(opts):,} rows x 20 features "
        f"({out['versions']}); {out['compute'] / loopml['compute']:.1f}x loopml's "
        f"window_statistics in its child ({fmt_s(loopml['compute'])})",
    )
    report(
        opts,
        "Evidently report, whole `python -c` process (import, read Parquet, report, JSON)",
        f"{fmt_s(took)} ({_phases(out)}); {took / loopml_took:.1f}x loopml's whole process "
        f"({fmt_s(loopml_took)})",
    )
    ours = _state.get("loopml_drifted")
    if ours is None:
        loopml_says = "loopml not run (see --only)"
    else:
        same = "same" if ours == out["drifted"] else "DIFFERENT"
        loopml_says = f"loopml {', '.join(ours) or 'none'}: {same}"
    report(
        opts,
        "drifted features, Evidently vs loopml",
        f"Evidently {', '.join(out['drifted']) or 'none'} ({' / '.join(out['methods'])}); "
        + loopml_says,
    )


BENCHMARKS: dict[str, Callable[[Options], None]] = {
    "window": bench_window,
    "process": bench_process,
    "evidently": bench_evidently,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--rows", type=int, default=0, help="rows per window (1,000,000)")
    parser.add_argument("--no-evidently", action="store_true", help="skip Evidently")
    known, rest = parser.parse_known_args(argv)
    SETTINGS.update(rows=known.rows, evidently=not known.no_evidently)
    return run("bench/monitoring.py", __doc__.splitlines()[0], BENCHMARKS, rest)


if __name__ == "__main__":
    sys.exit(main())
