"""Extension points (issue 12 §2): one registry, names in ``loopml.toml``, entry points.

Before, executors were hard-wired (``loopml.toml`` could not name one) and there was no
registry. Now ``loopml.plugins`` maps ``KIND.NAME`` to classes: built-ins, classes
registered at run time, and third-party packages found through the ``loopml.plugins``
entry-point group. Registering something of the wrong shape fails at once with its name
and the expected interface; an unknown name lists the known ones with a did-you-mean.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

import pytest

from cli_runner import run_cli
from loopml import Client, pipeline, plugins, step
from loopml.errors import InvalidParameterError, NotFoundError

T = TypeVar("T")
ENV = {"LOOPML_STORE_URI": "", "LOOPML_ARTIFACTS_URI": "", "LOOPML_HEARTBEAT_SECONDS": "0.5"}


@pytest.fixture(autouse=True)
def fresh_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Runtime registrations made by a test end with it."""
    monkeypatch.setattr(
        plugins, "_registered", {k: dict(v) for k, v in plugins._registered.items()}
    )


class InlineExecutor:
    """The smallest executor: runs each task at once, in the caller's thread (no ``workers``)."""

    name = "inline"
    shares_memory = True
    threads: list[str] = []

    def submit(self, task: Callable[[], T]) -> Future[T]:
        InlineExecutor.threads.append(threading.current_thread().name)
        future: Future[T] = Future()
        try:
            future.set_result(task())
        except BaseException as exc:
            future.set_exception(exc)
        return future

    def shutdown(self) -> None:
        pass


class NoShutdown:
    name = "half"

    def submit(self, task: Callable[[], T]) -> Future[T]:
        raise NotImplementedError


class Unsaid:
    """Runs tasks but does not say whether they may share this process's memory."""

    name = "unsaid"
    submit = InlineExecutor.submit
    shutdown = InlineExecutor.shutdown


# --- registering -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "name", "target", "needles"),
    [
        (
            "executor",
            "bad",
            object(),
            ["executor 'bad'", "lacks name, shares_memory, submit, shutdown"],
        ),
        ("executor", "half", NoShutdown, ["executor 'half'", "lacks shares_memory, shutdown"]),
        ("materializer", "csv", InlineExecutor, ["materializer 'csv'", "extension, save, load"]),
        ("backend", "ftp", InlineExecutor, ["backend 'ftp'", "exists, info, read, write"]),
    ],
)
def test_registering_the_wrong_object_fails_at_once_naming_the_interface(
    kind: str, name: str, target: Any, needles: list[str]
) -> None:
    with pytest.raises(InvalidParameterError) as caught:
        plugins.register(kind, name, target)
    message = str(caught.value)
    for needle in needles:
        assert needle in message, message
    article = "An" if kind[0] in "aeiou" else "A"
    assert f"{article} {kind} provides {', '.join(plugins.KINDS[kind])}" in message, message
    assert name not in plugins.names(kind)


@pytest.mark.parametrize("name", ["", "has space", "a/b", 3])
def test_a_plugin_name_must_be_a_plain_word(name: Any) -> None:
    with pytest.raises(InvalidParameterError, match="expected letters, digits"):
        plugins.register("executor", name, InlineExecutor)


def test_an_unknown_kind_lists_the_kinds_with_a_suggestion() -> None:
    with pytest.raises(InvalidParameterError) as caught:
        plugins.register("executors", "inline", InlineExecutor)
    assert "['backend', 'executor', 'materializer', 'registrar']" in str(caught.value)
    assert "Did you mean 'executor'?" in str(caught.value)


def test_loading_an_unknown_name_lists_the_known_ones_with_a_suggestion() -> None:
    plugins.register("executor", "inline", InlineExecutor)
    with pytest.raises(NotFoundError) as caught:
        plugins.load("executor", "locl")
    message = str(caught.value)
    assert "Unknown executor 'locl'" in message
    assert "known executors: ['inline', 'local', 'ray']" in message
    assert "Did you mean 'local'?" in message
    assert "loopml.plugins.register('executor', 'locl', MyClass)" in message


def test_builtins_load_lazily_by_name() -> None:
    from loopml.artifacts.materializers.files import FolderMaterializer
    from loopml.execution.local import LocalExecutor

    assert plugins.load("executor", "local") is LocalExecutor
    assert plugins.load("materializer", "folder.tar") is FolderMaterializer
    assert {"local"} <= set(plugins.names("executor"))


def test_a_registered_path_is_checked_when_loaded() -> None:
    plugins.register("executor", "lazy", f"{__name__}:NoShutdown")
    with pytest.raises(
        InvalidParameterError, match="executor 'lazy'.*lacks shares_memory, shutdown"
    ):
        plugins.load("executor", "lazy")


def test_an_executor_must_say_whether_it_shares_memory() -> None:
    """The runner hands values over in memory only to executors that run tasks in-process."""
    with pytest.raises(InvalidParameterError, match="executor 'unsaid'.*lacks shares_memory"):
        plugins.register("executor", "unsaid", Unsaid)


# --- an executor named in loopml.toml ------------------------------------------------------


@step
def base(n: int) -> list[int]:
    return list(range(n))


@step
def total(xs: list[int]) -> int:
    return sum(xs)


@step
def count(xs: list[int]) -> int:
    return len(xs)


@pipeline
def tally(n: int = 4):
    xs = base(n)
    return total(xs), count(xs)


def test_an_executor_registered_at_run_time_is_used_when_loopml_toml_names_it(
    project: Path,
) -> None:
    (project / "loopml.toml").write_text('[project]\nname = "t"\n\n[run]\nexecutor = "inline"\n')
    plugins.register("executor", "inline", InlineExecutor)
    InlineExecutor.threads.clear()
    client = Client()
    assert client.settings.executor == "inline"
    run = tally.run({"n": 4}, client=client)
    assert run.status == "succeeded"
    assert run.record.executor == "inline"
    assert InlineExecutor.threads == [threading.current_thread().name] * 3
    assert (run.output("total"), run.output("count")) == (6, 4)
    client.close()


def test_an_unknown_executor_in_loopml_toml_stops_loopml_run(project: Path) -> None:
    (project / "loopml.toml").write_text(
        '[project]\nname = "t"\npipelines = ["pl_basic"]\n\n[run]\nexecutor = "locl"\n'
    )
    (project / "pl_basic.py").write_text(
        (Path(__file__).parent / "resources" / "pl_basic.py").read_text()
    )
    result = run_cli("run", "train", cwd=project, env=ENV)
    assert result.returncode == 1, (result.stdout, result.stderr)
    err = result.stderr
    assert err.startswith("Error: Unknown executor 'locl'"), err
    assert "known executors: ['local', 'ray']" in err and "Did you mean 'local'?" in err, err
    assert "Traceback" not in err and "Internal error" not in err
    if (project / ".loopml" / "store.db").exists():
        assert Client(readonly=True).search_runs() == []  # no run was started


# --- a third-party package, found through its entry point ------------------------------------

FAKEMOD = '''
"""A third-party executor package, as it would be installed."""

from concurrent.futures import Future
from pathlib import Path


class InlineExecutor:
    name = "inline"
    shares_memory = True

    def __init__(self, workers=1):
        self.workers = workers  # [run] workers, passed by loopml

    def submit(self, task):
        with open(Path.cwd() / "inline-used.txt", "a") as f:
            f.write(f"task {self.workers}\\n")
        future = Future()
        try:
            future.set_result(task())
        except BaseException as exc:
            future.set_exception(exc)
        return future

    def shutdown(self):
        pass


class NotAnExecutor:
    name = "broken"
'''


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A folder holding an installed-looking package: a dist-info with entry points."""
    folder = tmp_path / "site"
    info = folder / "fake_plugin-0.0.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fake-plugin\nVersion: 0.0.0\n")
    (info / "entry_points.txt").write_text(
        textwrap.dedent(
            """
            [loopml.plugins]
            executor.inline = fakemod:InlineExecutor
            executor.broken = fakemod:NotAnExecutor
            executor.missing = fakemod_gone:Executor
            """
        )
    )
    (folder / "fakemod.py").write_text(FAKEMOD)
    return folder


def _project_with_executor(project: Path, executor: str) -> None:
    (project / "loopml.toml").write_text(
        f'[project]\nname = "t"\npipelines = ["pl_basic"]\n\n'
        f'[run]\nexecutor = "{executor}"\nworkers = 3\n'
    )
    (project / "pl_basic.py").write_text(
        (Path(__file__).parent / "resources" / "pl_basic.py").read_text()
    )


def _env(site: Path) -> dict[str, str]:
    path = os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return {**ENV, "PYTHONPATH": path}


def test_a_third_party_executor_is_found_through_its_entry_point(project: Path, site: Path) -> None:
    _project_with_executor(project, "inline")
    result = run_cli("run", "train", "--json", cwd=project, env=_env(site))
    assert result.returncode == 0, result.stderr
    # Every step went through it, and it was sized by [run] workers (3).
    assert (project / "inline-used.txt").read_text() == "task 3\n" * 5
    client = Client()
    (record,) = client.search_runs()
    assert (record.status, record.executor) == ("succeeded", "inline")
    # Without the package on the path the name is unknown, and the message says what is known.
    missing = run_cli("run", "train", cwd=project, env=ENV)
    assert missing.returncode == 1
    assert "Unknown executor 'inline'; known executors: ['local', 'ray']" in missing.stderr


@pytest.mark.parametrize(
    ("name", "needles"),
    [
        ("broken", ["executor 'broken'", "lacks shares_memory, submit, shutdown"]),
        ("missing", ["executor 'missing'", "'fakemod_gone:Executor'", "failed to import"]),
    ],
)
def test_a_broken_third_party_plugin_is_named_with_what_is_wrong(
    project: Path, site: Path, name: str, needles: list[str]
) -> None:
    _project_with_executor(project, name)
    result = run_cli("run", "train", cwd=project, env=_env(site))
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert result.stderr.startswith("Error: Plugin "), result.stderr
    for needle in needles:
        assert needle in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    # Only what uses the executor is affected: listing the pipelines still works.
    listed = run_cli("pipelines", cwd=project, env=_env(site))
    assert listed.returncode == 0 and "train" in listed.stdout, listed.stderr


def test_entry_points_are_listed_with_builtins_in_a_fresh_process(site: Path) -> None:
    code = "from loopml import plugins; print(plugins.names('executor'))"
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, **_env(site)},
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "['broken', 'inline', 'local', 'missing', 'ray']"
