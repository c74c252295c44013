"""The step cache never hands out stale or damaged outputs (issue 12 §1 and §1b).

- A parameter naming a folder is keyed on the content of every file inside it, in the
  same process and across processes.
- What is hashed follows one rule: ``Path`` values and ``Path``-annotated parameters are
  content-hashed; a plain ``str`` only when it names a regular file; the store's own
  folder, ``.git``, virtual environments and ``__pycache__`` never.
- A damaged blob heals when its step runs again, ``fsck --repair`` removes what cannot be
  healed, and a cache hit whose output is damaged is treated as a miss.
- Parameters given from Python are typed like ``-p`` values, so both share cache keys.

The pipelines are in ``tests/resources/pl_cache.py`` and ``pl_basic.py``; the CLI runs
them from the project through ``[project] pipelines`` in ``loopml.toml``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pl_basic
import pl_cache
import pytest

from cli_runner import run_cli
from loopml import Run
from loopml.errors import InvalidParameterError
from loopml.store.records import StepRunRecord

RESOURCES = Path(__file__).parents[1] / "resources"


@pytest.fixture(autouse=True)
def pipelines_toml(project: Path) -> None:
    """``loopml run`` finds the resource pipelines, as a user's project finds its own."""
    (project / "loopml.toml").write_text(
        '[project]\nname = "t"\npipelines = ["pl_cache", "pl_basic"]\n'
    )


@pytest.fixture
def data(project: Path) -> Path:
    """``data/`` with two small text files."""
    folder = project / "data"
    folder.mkdir()
    (folder / "a.txt").write_text("alpha")
    (folder / "b.txt").write_text("bravo")
    return folder


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    """The real ``loopml`` command, able to import the resource pipelines."""
    path = os.pathsep.join(p for p in (str(RESOURCES), os.environ.get("PYTHONPATH", "")) if p)
    return run_cli(*args, env={"PYTHONPATH": path})  # type: ignore[no-any-return]


def cli_run(*args: str) -> dict[str, Any]:
    """``loopml run ... --json``: the run's summary, with each step's reason."""
    result = cli("run", *args, "--json")
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout))


def only_step(run: Run) -> StepRunRecord:
    (step,) = run.steps
    return step


def only_cached(run: Run) -> dict[str, bool]:
    return {s.name: s.cached for s in run.steps}


def changed_params(reason: dict[str, Any] | None) -> list[str]:
    assert reason is not None and reason["kind"] == "changed", reason
    return [c["name"] for c in reason["changes"] if c["what"] == "param"]


# -- 1. a folder parameter is never stale ------------------------------------------------


def edit_same_size(folder: Path) -> None:
    (folder / "a.txt").write_text("ALPHA")


def add_file(folder: Path) -> None:
    (folder / "c.txt").write_text("charlie")


def delete_file(folder: Path) -> None:
    (folder / "b.txt").unlink()


EDITS: dict[str, Callable[[Path], None]] = {
    "edit one file, same size": edit_same_size,
    "add a file": add_file,
    "delete a file": delete_file,
}


@pytest.mark.parametrize("edit", EDITS.values(), ids=EDITS.keys())
def test_editing_a_folder_parameter_reruns_its_step_in_the_same_process(
    data: Path, edit: Callable[[Path], None]
) -> None:
    first = pl_cache.folder_flow(folder=data)
    unchanged = only_step(pl_cache.folder_flow(folder=data))
    assert unchanged.cached

    edit(data)
    run = pl_cache.folder_flow(folder=data)
    step = only_step(run)
    assert not step.cached
    assert run.output("scan") == {p.name: p.read_text() for p in sorted(data.glob("*.txt"))}
    assert only_step(pl_cache.folder_flow(folder=data)).cached  # and unchanged again: a hit

    assert only_step(first).reason == {"kind": "first"}
    assert unchanged.reason == {"kind": "cached", "run": first.label, "step": "scan"}
    assert changed_params(step.reason) == ["folder"]
    assert step.reason is not None
    old, new = (step.reason["changes"][0][side]["content"][:12] for side in ("old", "new"))
    # however long the path, the line shows what changed: the content digests
    assert re.fullmatch(
        rf"parameter folder: (…\S*)?/project/data \(content {old}\) → "
        rf"(…\S*)?/project/data \(content {new}\) since folder_flow#2",
        step.why,
    ), step.why


def test_editing_a_folder_parameter_reruns_its_step_in_a_fresh_process(data: Path) -> None:
    def scan_reason() -> dict[str, Any]:
        return dict(cli_run("folder_flow")["step_reasons"]["scan"])

    assert scan_reason()["kind"] == "first"
    assert scan_reason()["kind"] == "cached"
    edit_same_size(data)  # the edit that a folder's own stat does not show
    reason = scan_reason()
    assert changed_params(reason) == ["folder"], reason
    assert reason["why"].startswith("parameter folder: data (content ")
    assert scan_reason()["kind"] == "cached"
    assert pl_cache.folder_flow(folder=data).output("scan") == {"a.txt": "ALPHA", "b.txt": "bravo"}


def test_a_file_in_a_symlinked_sub_folder_is_part_of_the_key(project: Path, data: Path) -> None:
    shared = project / "shared"
    shared.mkdir()
    (shared / "x.txt").write_text("xray")
    (data / "raw").symlink_to(shared, target_is_directory=True)  # data/raw -> ../shared
    (data / "loop").symlink_to(data, target_is_directory=True)  # a loop: listed once
    first = pl_cache.tree_flow(folder=data)
    assert first.output("read_tree") == {"a.txt": "alpha", "b.txt": "bravo", "raw/x.txt": "xray"}
    assert only_step(pl_cache.tree_flow(folder=data)).cached

    (shared / "x.txt").write_text("XRAY")
    run = pl_cache.tree_flow(folder=data)
    assert not only_step(run).cached
    assert run.output("read_tree")["raw/x.txt"] == "XRAY"
    assert changed_params(only_step(run).reason) == ["folder"]


# -- 2. what is hashed -------------------------------------------------------------------


def test_a_str_naming_the_working_directory_is_text_not_data(project: Path) -> None:
    first = pl_cache.decimal_flow(x=1.5, decimal=".")
    assert first.output("fmt") == "1.50"
    for i in range(2):  # the store's .loopml/ changes on every run; so do files in cwd
        (project / f"other-{i}.csv").write_text(f"{i}\n")
        step = only_step(pl_cache.decimal_flow(x=1.5, decimal="."))
        assert step.cached, step.why
        assert step.reason["run"] == first.label


def test_a_str_naming_a_regular_file_is_content_hashed(project: Path) -> None:
    notes = project / "notes.txt"
    notes.write_text("version 1")
    assert pl_cache.file_flow().output("read_text") == "version 1"
    assert only_step(pl_cache.file_flow()).cached
    notes.write_text("version 2")  # same size
    run = pl_cache.file_flow()
    assert changed_params(only_step(run).reason) == ["path"]
    assert run.output("read_text") == "version 2"


def test_a_path_annotated_step_parameter_given_a_str_is_content_hashed(data: Path) -> None:
    pl_cache.text_folder_flow(folder="data")
    assert only_step(pl_cache.text_folder_flow(folder="data")).cached
    edit_same_size(data)
    run = pl_cache.text_folder_flow(folder="data")
    assert changed_params(only_step(run).reason) == ["folder"]
    assert run.output("scan") == {"a.txt": "ALPHA", "b.txt": "bravo"}


def test_every_file_of_a_list_of_paths_is_content_hashed(data: Path) -> None:
    first = pl_cache.files_flow()
    assert first.output("concat") == "alphabravo"
    assert only_step(pl_cache.files_flow()).cached
    (data / "b.txt").write_text("BRAVO")  # the second file, same size
    run = pl_cache.files_flow()
    step = only_step(run)
    assert run.output("concat") == "alphaBRAVO"
    assert changed_params(step.reason) == ["files[1]"]  # the element that changed, by index
    assert step.why.startswith("parameter files[1]: data/b.txt (content "), step.why
    # the same files named by plain strings are the same data: a hit on the same entry
    again = only_step(pl_cache.files_flow(files=["data/a.txt", "data/b.txt"]))
    assert again.cached and again.reason["run"] == run.label


def write_in(folder: Path, rel: str, text: str) -> None:
    path = folder / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


SKIPPED = {
    "the store folder .loopml": ".loopml/store.db",
    ".git": ".git/objects/ab/cdef",
    "a virtual environment": "venv/lib/site.py",
    "__pycache__": "__pycache__/helpers.cpython-311.pyc",
}


@pytest.mark.parametrize("rel", SKIPPED.values(), ids=SKIPPED.keys())
def test_tool_folders_inside_a_hashed_folder_are_skipped(data: Path, rel: str) -> None:
    write_in(data, "venv/pyvenv.cfg", "home = /usr/bin\n")
    write_in(data, rel, "before")
    first = pl_cache.folder_flow(folder=data)
    write_in(data, rel, "after, and longer")
    step = only_step(pl_cache.folder_flow(folder=data))
    assert step.cached, step.why
    assert step.reason["run"] == first.label


def test_the_project_folder_as_a_parameter_caches_despite_its_live_store(project: Path) -> None:
    (project / "a.txt").write_text("alpha")
    first = pl_cache.folder_flow(folder=Path("."))
    assert (project / ".loopml").is_dir()  # the store lives inside the hashed folder
    for _ in range(2):
        step = only_step(pl_cache.folder_flow(folder=Path(".")))
        assert step.cached, step.why
        assert step.reason["run"] == first.label


def test_a_store_configured_inside_a_hashed_folder_is_skipped(
    data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOOPML_STORE_URI", f"sqlite:///{data / 'meta' / 'store.db'}")
    monkeypatch.setenv("LOOPML_ARTIFACTS_URI", str(data / "blobs"))
    first = pl_cache.folder_flow(folder=data)
    assert (data / "meta" / "store.db").is_file() and (data / "blobs").is_dir()
    step = only_step(pl_cache.folder_flow(folder=data))
    assert step.cached, step.why
    assert step.reason["run"] == first.label


def test_hashing_a_folder_over_256_mib_says_so_on_stderr(
    data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pl_cache.folder_flow(folder=data)
    assert "loopml: hashing" not in capsys.readouterr().err  # small: silent
    big = data / "big.bin"
    big.touch()
    os.truncate(big, 257 << 20)  # sparse: 257 MiB of zeros without writing them
    # A modification time ahead of the clock (a skewed file server) is never trusted, so
    # the file is read whenever the key is computed: that is once per run.
    ahead = time.time_ns() + 3600 * 10**9
    os.utime(big, ns=(ahead, ahead))
    run = pl_cache.folder_flow(folder=data)
    err = capsys.readouterr().err
    assert err.count("loopml: hashing parameter 'folder' (") == 1, err
    assert "257 MiB" in err
    assert changed_params(only_step(run).reason) == ["folder"]


# -- 3. a corrupted blob heals -----------------------------------------------------------


def blob_of(run: Run, ref: str) -> Path:
    return Path(run.client.artifacts.blob_path(run.outputs()[ref]))


def flip_byte(path: Path, *, keep_mtime: bool = False) -> None:
    """Flip one bit in the middle of a blob, as a disk or a stray write would."""
    st = path.stat()
    path.chmod(0o644)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    if keep_mtime:  # bit rot: the bytes change, the file's stat does not
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def truncate(path: Path) -> None:
    path.chmod(0o644)
    os.truncate(path, path.stat().st_size // 2)


def rerun_without_cache_in_python() -> None:
    pl_cache.chain.run(cache=False)


def rerun_without_cache_on_the_cli() -> None:
    assert cli_run("chain", "--no-cache")["status"] == "succeeded"


def rot(path: Path) -> None:
    flip_byte(path, keep_mtime=True)


@pytest.mark.parametrize(
    ("damage", "rerun"),
    [
        (flip_byte, rerun_without_cache_in_python),
        (flip_byte, rerun_without_cache_on_the_cli),
        (rot, rerun_without_cache_in_python),
    ],
    ids=["flipped-python", "flipped-cli", "rotten-python"],
)
def test_running_again_without_cache_heals_a_damaged_blob(
    damage: Callable[[Path], None], rerun: Callable[[], None]
) -> None:
    run = pl_cache.chain()
    blob = blob_of(run, "numbers")
    good = blob.read_bytes()
    damage(blob)
    damaged = cli("fsck")
    assert damaged.returncode == 1 and "corrupt" in damaged.stdout, damaged.stdout

    rerun()
    assert blob.read_bytes() == good
    clean = cli("fsck")
    assert clean.returncode == 0, clean.stdout + clean.stderr


def test_fsck_repair_removes_a_rotten_blob_and_its_step_runs_again() -> None:
    run = pl_cache.chain()
    digest = run.outputs()["numbers"]
    blob = blob_of(run, "numbers")
    good = blob.read_bytes()
    rot(blob)

    found = cli("fsck")
    assert found.returncode == 1
    assert "corrupt" in found.stdout and digest in found.stdout, found.stdout
    repaired = cli("fsck", "--repair")
    assert "removed the damaged blob" in repaired.stdout, repaired.stdout
    # numbers and echo made the same bytes: both cache entries handing them out go
    assert "dropped 2 cache entries" in repaired.stdout, repaired.stdout
    assert not blob.exists()

    again = pl_cache.chain()
    steps = {s.name: s for s in again.steps}
    assert not steps["numbers"].cached
    assert steps["numbers"].reason["kind"] == "retry", steps["numbers"].reason
    assert "cache entry is gone" in steps["numbers"].why
    assert steps["total"].cached  # same input digest: still a hit
    assert again.output("total") == sum(range(200))
    assert blob.read_bytes() == good
    clean = cli("fsck")
    assert clean.returncode == 0, clean.stdout + clean.stderr


# -- 4. a cache hit checks its outputs ---------------------------------------------------


@pytest.mark.parametrize("damage", [flip_byte, truncate], ids=["flipped", "truncated"])
def test_a_damaged_cached_output_is_a_miss_and_is_healed(
    damage: Callable[[Path], None],
) -> None:
    first = pl_cache.chain()
    blob = blob_of(first, "numbers")
    good = blob.read_bytes()
    damage(blob)

    run = pl_cache.chain()
    assert run.status == "succeeded"
    steps = {s.name: s for s in run.steps}
    assert not steps["numbers"].cached
    assert steps["numbers"].reason["kind"] == "retry", steps["numbers"].reason
    assert steps["numbers"].why == (
        f"the outputs cached by {first.label} are missing or damaged; running again"
    )
    assert run.output("echo") == list(range(200))  # the step that always runs got good data
    assert run.output("total") == sum(range(200))
    assert blob.read_bytes() == good
    run.client.artifacts.verify(run.outputs()["numbers"])
    assert only_cached(pl_cache.chain()) == {"numbers": True, "echo": False, "total": True}


# -- 6. parameters from Python are typed like the CLI ------------------------------------


def test_numpy_scalars_from_python_are_plain_numbers_with_the_same_key() -> None:
    import numpy as np

    first = pl_basic.train(n=10, alpha=0.5)
    again = pl_basic.train(n=np.int64(10), alpha=np.float32(0.5))  # as np.arange gives them
    assert all(s.cached for s in again.steps), [s.why for s in again.steps]
    assert again.params == first.params == {"n": "10", "alpha": "0.5"}


def test_a_str_from_python_and_the_same_value_on_the_cli_share_a_cache_key() -> None:
    first = pl_basic.train(alpha="0.5")
    assert first.params["alpha"] == "0.5"
    second = cli_run("train", "-p", "alpha=0.5")
    assert second["cached_steps"] == second["steps"] == 5, second["step_reasons"]
    assert second["step_reasons"]["fit"]["run"] == first.label


def test_an_int_for_a_float_parameter_shares_the_key_of_the_float() -> None:
    first = pl_basic.train(alpha=1)
    again = pl_basic.train(alpha=1.0)
    assert all(s.cached for s in again.steps), [s.why for s in again.steps]
    assert again.output("fit") == first.output("fit") == 10.0
    assert first.params["alpha"] == "1.0"  # stored as the float it was converted to


@pytest.mark.parametrize("value", [[1], {"a": 1}, "fast"])
def test_a_value_of_the_wrong_type_from_python_is_refused(value: object) -> None:
    with pytest.raises(InvalidParameterError) as caught:
        pl_basic.train(alpha=value)
    message = str(caught.value)
    assert "'alpha'" in message and repr(value) in message and "a number" in message


def test_a_parameter_given_twice_on_the_cli_is_refused(project: Path) -> None:
    result = cli("run", "train", "-p", "alpha=0.5", "-p", "alpha=0.7")
    assert result.returncode == 1
    assert "'alpha' is given twice (alpha=0.5 and alpha=0.7)" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert not (project / ".loopml").exists()  # nothing ran
