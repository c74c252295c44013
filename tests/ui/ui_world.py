"""The store every web UI test looks at: the example project of ``loopml init``, run for real.

``build_world`` runs the real ``loopml`` CLI in a fresh project (the same commands as ``make
demo``): three ``train`` runs (one reusing cached steps), one failed run, a gate on the
``production`` alias, two versions of a CSV dataset, a paused-able schedule and three tokens.
Tests only read it or make changes they undo; a test that needs a store of its own builds
one (``build_world(tmp)``).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cli_runner import run_cli

#: rmse of the demo's three versions: alpha=0.5 → 56.88 (fails), 0.05 → 55.79 (passes).
GATE = """
[models.diabetes.gates.production]
suite = "diabetes"
require = ["rmse <= 56.5"]
"""


@dataclass
class World:
    root: Path
    runs: dict[str, str]  # label -> run id
    tokens: dict[str, str] = field(default_factory=dict)  # role -> secret

    def client(self) -> Any:
        from loopml.config import load_settings
        from loopml.tracking.client import Client

        return Client(load_settings(self.root)).open()


def cli(root: Path, *args: str) -> str:
    result = run_cli(*args, cwd=root, env={"LOOPML_STORE_URI": ""})
    assert result.returncode == 0, f"loopml {' '.join(args)} failed:\n{result.stderr}"
    return result.stdout


def build_world(parent: Path) -> World:
    parent.mkdir(parents=True, exist_ok=True)
    cli(parent, "init", "churn")
    root = parent / "churn"
    with (root / "loopml.toml").open("a") as f:
        f.write(GATE)
    cli(root, "run", "train", "-p", "alpha=0.5")
    cli(root, "run", "train", "-p", "alpha=0.05")
    cli(root, "run", "train", "-p", "alpha=0.5")  # every step from the cache
    failed = run_cli("run", "train", "-p", "alpha=-1", cwd=root, env={"LOOPML_STORE_URI": ""})
    assert failed.returncode != 0, "alpha=-1 should fail (Ridge refuses a negative alpha)"

    import pandas as pd
    from sklearn.datasets import load_diabetes

    frame = load_diabetes(as_frame=True).frame
    frame.head(300).to_csv(root / "patients.csv", index=False)
    cli(root, "data", "add", "patients.csv", "--name", "patients")
    changed = frame.copy()
    changed["bmi"] = changed["bmi"] * 1.5 + 0.02
    pd.concat([changed, changed.head(40)]).to_csv(root / "patients.csv", index=False)
    cli(root, "data", "add", "patients.csv", "--name", "patients")
    cli(
        root,
        "schedule",
        "add",
        "nightly",
        "--pipeline",
        "train",
        "--cron",
        "0 2 * * *",
        "-p",
        "alpha=0.5",
    )

    world = World(root=root, runs={})
    client = world.client()
    for record in client.search_runs(sort="started", limit=100):
        world.runs[record.label] = record.id
    for role in ("reader", "writer", "admin"):
        _, secret = client.metadata.tokens.create(f"ui-{role}", role, by="tests")
        world.tokens[role] = secret
    client.close()
    return world


def artifacts_dir() -> Path:
    """Where screenshots go: ``$LOOPML_TEST_ARTIFACTS/ui`` (default ``build/test-artifacts``)."""
    base = os.environ.get("LOOPML_TEST_ARTIFACTS") or str(
        Path(__file__).resolve().parents[2] / "build" / "test-artifacts"
    )
    path = Path(base) / "ui"
    path.mkdir(parents=True, exist_ok=True)
    return path


def forget_project(root: Path) -> None:
    """Take a test's own project off ``sys.path`` and out of ``sys.modules``: later tests in
    this process must not find its ``pipelines`` module."""
    while str(root) in sys.path:
        sys.path.remove(str(root))
    for name, module in list(sys.modules.items()):
        file = getattr(module, "__file__", None)
        if file and Path(file).resolve().is_relative_to(root.resolve()):
            del sys.modules[name]
