"""The two servers the serving benchmark compares, each in its own process; the models.

``loopml serve NAME`` is the real command (the app ``create_app`` builds, on uvicorn with
httptools and uvloop, one worker). The baseline is the least a server can do with the same
model: a raw ASGI callable that parses the JSON body with orjson, builds the model's input
(a DataFrame of the schema's columns, or numpy columns for ONNX Runtime), calls the bare
model and writes its predictions as JSON; it runs on the same uvicorn settings through
``loopml.serving.server.run``. Run as a script, this file is that baseline server.

Each server process is pinned to one CPU and the load generator to the others (when the
machine has two or more), so neither steals the other's core or GIL. The helpers every
section shares (a project with the models registered, a guard per part) live here too.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import signal
import subprocess
import sys
import threading
import traceback
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _timing import PYTHON, Options, clean_env, report, temp_project

_URL = re.compile(r"http://127\.0\.0\.1:(\d+)")
MODELS = ("diabetes", "churn")  # numeric-only regressor; mixed-type classifier


def cpu_split() -> tuple[set[int] | None, set[int] | None]:
    """(server CPUs, load generator CPUs): one CPU for the server, the rest for the client."""
    allowed = sorted(os.sched_getaffinity(0))
    if len(allowed) < 2:
        return None, None
    return {allowed[0]}, set(allowed[1:])


def churn_frame(n: int, seed: int = 0) -> Any:
    """The mixed-type table of ``tests/serve_server.py``: integer, float and text columns."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "age": rng.integers(18, 80, n),
            "income": rng.normal(50.0, 10.0, n),
            "plan": np.array(["basic", "pro", "team"], dtype=object)[rng.integers(0, 3, n)],
        }
    )


def register_models() -> dict[str, Any]:
    """Register the two benchmark models in the current project; their frames by name.

    ``diabetes``: gradient boosting (100 trees) on scikit-learn's bundled diabetes data, 10
    float columns. ``churn``: scaler + one-hot + logistic regression over the mixed table.
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.datasets import load_diabetes
    from sklearn.ensemble import GradientBoostingRegressor
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    import loopml

    data = load_diabetes(as_frame=True)
    regressor = GradientBoostingRegressor(random_state=0).fit(data.data, data.target)
    loopml.register("diabetes", regressor, X=data.data)
    X = churn_frame(2_000)
    y = ((X["age"] > 45) ^ (X["plan"] == "pro")).astype(int)
    classifier = make_pipeline(
        ColumnTransformer(
            [("num", StandardScaler(), ["age", "income"]), ("cat", OneHotEncoder(), ["plan"])]
        ),
        LogisticRegression(max_iter=500),
    ).fit(X, y)
    loopml.register("churn", classifier, X=X)
    return {"diabetes": data.data, "churn": X}


def records_body(frame: Any, rows: int, start: int = 0) -> bytes:
    """``{"records": [...]}`` of ``rows`` rows of ``frame`` (cycled), as a client sends it."""
    import orjson

    picked = frame.iloc[[(start + i) % len(frame) for i in range(rows)]]
    return orjson.dumps({"records": picked.to_dict(orient="records")})


def missing(module: str) -> str | None:
    """Why ``module`` cannot be benchmarked yet, or None when it is importable."""
    try:
        found = importlib.util.find_spec(module) is not None
    except ImportError:
        found = False
    return None if found else f"not available yet ({module} is not in this tree)"


@contextlib.contextmanager
def project() -> Iterator[tuple[Path, dict[str, Any]]]:
    """A temporary project with the benchmark models registered; yields (root, frames)."""
    with temp_project("serving") as root:
        yield root, register_models()


def guarded(opts: Options, name: str, fn: Callable[..., None], *args: Any) -> None:
    """Run one part of a section; a failure prints a line and the others still run."""
    try:
        fn(*args)
    except Exception as exc:
        traceback.print_exc(file=sys.stderr)
        report(opts, name, f"failed: {type(exc).__name__}: {str(exc).splitlines()[0][:300]}")


@dataclass
class Server:
    url: str
    process: subprocess.Popen[str]
    output: list[str]

    @property
    def pid(self) -> int:
        return self.process.pid

    def get(self, path: str) -> str:
        with urllib.request.urlopen(self.url + path, timeout=30) as response:
            return str(response.read().decode())


def loopml_serve_command(ref: str, *, runtime: str, log_sample: float) -> list[str]:
    script = Path(PYTHON).parent / "loopml"
    fallback = [PYTHON, "-c", "from loopml.cli.main import main; main()"]
    base = [str(script)] if script.exists() else fallback
    return [
        *base, "serve", ref, "--port", "0", "--runtime", runtime, "--log-sample", str(log_sample),
    ]  # fmt: skip


def minimal_command(ref: str, *, runtime: str) -> list[str]:
    return [PYTHON, str(Path(__file__).resolve()), ref, runtime]


@contextlib.contextmanager
def serving(command: list[str], *, cwd: Path, cpus: set[int] | None) -> Iterator[Server]:
    """Start a server process, wait for the URL it prints once it accepts; stop it after."""
    env = clean_env(COLUMNS="200", PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    if cpus:
        # Right after the fork: threads the server starts later inherit the affinity.
        os.sched_setaffinity(proc.pid, cpus)
    output: list[str] = []
    found = threading.Event()

    def drain() -> None:  # read everything, so a chatty server never blocks on its pipe
        assert proc.stdout is not None
        for line in proc.stdout:
            output.append(line)
            if _URL.search(line):
                found.set()
        found.set()

    threading.Thread(target=drain, daemon=True).start()
    try:
        found.wait(300)
        match = next((m for m in map(_URL.search, output) if m), None)
        if match is None:
            raise RuntimeError(
                f"{' '.join(command)} did not start (exit {proc.poll()}):\n{''.join(output)[-3000:]}"
            )
        yield Server(match.group(0), proc, output)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # a clean shutdown: the prediction log drains
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


def metric_value(text: str, name: str) -> float | None:
    """A sample's value from Prometheus text (the first line starting with ``name``)."""
    found = re.search(rf"^{re.escape(name)}(?:\{{[^}}]*\}})? ([0-9.e+-]+)$", text, re.M)
    return float(found.group(1)) if found else None


# -- the minimal app (this file as a script) ----------------------------------------------


def minimal_app(model: Any, names: list[str], runner: Any = None) -> Any:
    """A raw ASGI app: JSON records in, the bare model's predictions out; nothing else."""
    import numpy as np
    import orjson
    import pandas as pd

    option = orjson.OPT_SERIALIZE_NUMPY

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                kind = message["type"].rsplit(".", 1)[1]
                await send({"type": f"lifespan.{kind}.complete"})
                if kind == "shutdown":
                    return
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        records = orjson.loads(body)["records"]
        columns = {name: [r[name] for r in records] for name in names}
        if runner is not None:
            arrays = {
                k: np.array(v, dtype=object if isinstance(v[0], str) else None)
                for k, v in columns.items()
            }
            predictions = runner.predict(arrays)[0]
        else:
            predictions = model.predict(pd.DataFrame(columns))
        out = orjson.dumps({"predictions": predictions}, option=option)
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(out))]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": out})

    return app


def _serve_minimal(ref: str, runtime: str) -> None:
    from loopml.registry.schema import ModelSchema
    from loopml.serving.server import bind, run
    from loopml.tracking.client import Client

    client = Client()
    version = client.model_version(ref)
    model = client.load_artifact(version.digest)
    schema = ModelSchema.from_dict(version.input_schema)
    runner = None
    if runtime == "onnx":
        from loopml.serving.onnx import OnnxRunner, convert

        runner = OnnxRunner(convert(model, schema))
    app = minimal_app(model, list(schema.names), runner)
    run(app, bind("127.0.0.1", 0), on_started=lambda url: print(f"Serving on {url}", flush=True))


if __name__ == "__main__":
    _serve_minimal(sys.argv[1], sys.argv[2])
