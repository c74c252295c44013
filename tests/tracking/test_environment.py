"""What a run records about where it ran, captured once per process and refreshed on change.

Issue 12: packages imported inside steps must be recorded (the ``loopml init`` template
imports scikit-learn inside its step), and git/environment capture is cached per process
(creating a run starts no thread or subprocess) yet refreshed when something changed.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

SCRIPT = textwrap.dedent(
    """
    import json, sys
    import loopml
    from loopml import pipeline, step

    @step
    def uses_psutil(x: int) -> int:
        import psutil  # imported only inside the step, as the init template does with sklearn
        return x + psutil.cpu_count() * 0

    @pipeline
    def late_import(x: int = 1):
        return uses_psutil(x)

    assert "psutil" not in sys.modules
    run = late_import()
    print(json.dumps(run.record.environment["packages"]))
    """
)


def test_a_package_imported_inside_a_step_is_recorded(project: Path) -> None:
    (project / "late.py").write_text(SCRIPT)
    done = subprocess.run(
        [sys.executable, "late.py"], cwd=project, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    packages = json.loads(done.stdout.strip().splitlines()[-1])
    import psutil

    assert packages.get("psutil") == psutil.__version__
    assert "loopml" in packages


def _git(root: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-C", str(root), *args],
        check=True,
        capture_output=True,
        env={
            "GIT_AUTHOR_NAME": "t",
            "GIT_AUTHOR_EMAIL": "t@t",
            "GIT_COMMITTER_NAME": "t",
            "GIT_COMMITTER_EMAIL": "t@t",
            "HOME": str(root),
            "PATH": "/usr/bin:/bin",
        },
    )


def test_git_state_is_refreshed_when_a_tracked_file_changes(project: Path) -> None:
    import loopml
    from loopml.tracking import environment

    (project / "helpers.py").write_text("X = 1\n")
    _git(project, "init", "-q")
    _git(project, "add", "-A")
    _git(project, "commit", "-qm", "first")
    environment.environments.capture(project)  # warm the process-wide cache
    with loopml.start_run("clean") as clean:
        pass
    assert clean.record.git_dirty is False and clean.record.git_commit
    (project / "helpers.py").write_text("X = 2\n")  # edit a tracked file in the same process
    environment.GIT_RECHECK_S, saved = 0.0, environment.GIT_RECHECK_S
    try:
        with loopml.start_run("dirty") as dirty:
            pass
    finally:
        environment.GIT_RECHECK_S = saved
    record = dirty.record
    assert record.git_dirty is True
    assert record.git_diff_digest is not None
    diff = loopml.load(record.git_diff_digest).decode()
    assert "-X = 1" in diff and "+X = 2" in diff


def test_creating_runs_starts_no_thread_or_subprocess_per_run(project: Path) -> None:
    import threading

    import loopml
    from loopml.tracking import environment

    environment.environments.capture(project)
    with loopml.start_run("warm"):
        pass
    before = {t.ident for t in threading.enumerate()}
    calls: list[object] = []
    original = subprocess.run

    def counting(*args: object, **kwargs: object) -> object:
        calls.append(args)
        return original(*args, **kwargs)  # type: ignore[call-overload]

    subprocess.run = counting  # type: ignore[assignment]
    try:
        for i in range(20):
            with loopml.start_run("many") as run:
                run.log_param("i", i)
    finally:
        subprocess.run = original  # type: ignore[assignment]
    assert calls == []  # not a git call per run: the project's git state did not change
    assert {t.ident for t in threading.enumerate()} <= before | {None}
