"""Datasets from Python: versions of files, folders and frames; versions as step inputs.

- Adding the same content again returns the existing version and stores nothing new.
- A ``dataset("name@latest")`` step argument gives the step the version's file, keys the
  cache on the version's digest (a new version re-runs the step) and records the version
  in the run's lineage, so a version that a run read cannot be removed.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

from loopml import pipeline, step
from loopml.data.datasets import Dataset, add_dataset, dataset
from loopml.errors import ConflictError, InvalidParameterError, NotFoundError
from loopml.tracking.client import Client


@step
def total(data: Path) -> int:
    return int(pd.read_csv(data)["power"].sum())


@pipeline
def report(data: Dataset = dataset("turbines@latest")):  # noqa: B008
    return total(data)


def write_csv(path: Path, powers: list[int]) -> Path:
    path.write_text("power\n" + "".join(f"{p}\n" for p in powers))
    return path


def test_same_content_same_version_new_content_next_version(client: Client, project: Path) -> None:
    csv = write_csv(project / "turbines.csv", [1, 2, 3])
    first, created = add_dataset(csv, name="turbines", profile=False)
    assert (first.label, created, first.format, first.kind) == ("turbines@1", True, "csv", "file")
    blobs = sorted(p.name for p in (project / ".loopml" / "blobs").rglob("*") if p.is_file())
    again, created = add_dataset(csv, name="turbines", profile=False)
    assert (again, created) == (first, False)
    assert (
        sorted(p.name for p in (project / ".loopml" / "blobs").rglob("*") if p.is_file()) == blobs
    )

    write_csv(csv, [1, 2, 4])
    second, created = add_dataset(csv, name="turbines", profile=False)
    assert (second.number, created) == (2, True)
    assert Dataset("turbines@1").path().read_text() == "power\n1\n2\n3\n"
    assert Dataset("turbines").path().read_text() == "power\n1\n2\n4\n"


def test_folders_and_frames_are_versions_too(client: Client, project: Path) -> None:
    photos = project / "photos"
    (photos / "sub").mkdir(parents=True)
    (photos / "a.png").write_bytes(b"\x89PNG a")
    (photos / "sub" / "b.png").write_bytes(b"\x89PNG b")
    version, _ = add_dataset(photos, name="photos", profile=False)
    assert (version.kind, version.filename) == ("folder", "photos")
    restored = dataset("photos@1").path()
    assert sorted(p.relative_to(restored).as_posix() for p in restored.rglob("*.png")) == [
        "a.png",
        "sub/b.png",
    ]

    frame = pd.DataFrame({"power": [1.5, 2.5]})
    version, _ = add_dataset(frame, name="frame", profile=False)
    assert (version.format, version.filename) == ("parquet", "frame.parquet")
    assert add_dataset(frame.copy(), name="frame", profile=False) == (version, False)


def test_a_dataset_argument_is_a_cached_input_recorded_in_lineage(
    client: Client, project: Path
) -> None:
    csv = write_csv(project / "turbines.csv", [1, 2, 3])
    v1, _ = add_dataset(csv, name="turbines", profile=False)
    first = report()
    assert first.output("total") == 6
    cached = report()
    assert cached.steps[0].cached

    write_csv(csv, [10, 20])
    v2, _ = add_dataset(csv, name="turbines", profile=False)
    newer = report()  # @latest moved: the step runs on the new version
    assert not newer.steps[0].cached and newer.output("total") == 30
    assert "input data changed (turbines@1 → turbines@2)" in newer.steps[0].why, newer.steps[0].why

    readers = client.dataset_readers([v1, v2])
    assert readers == {v1.digest: [first.id, cached.id], v2.digest: [newer.id]}
    with pytest.raises(
        ConflictError, match=rf"turbines@1 is read by runs {first.id[:8]}, {cached.id[:8]};"
    ):
        client.remove_dataset_version("turbines@1")
    client.delete_runs([first.id, cached.id])
    assert client.remove_dataset_version("turbines@1") == v1


def test_reading_a_version_inside_a_run_records_it(client: Client, project: Path) -> None:
    version, _ = add_dataset(write_csv(project / "t.csv", [5]), name="turbines", profile=False)
    assert dataset("turbines").path().exists()  # outside a run: nothing to record
    assert client.dataset_readers([version]) == {version.digest: []}
    with client.start_run("explore") as run:
        dataset("turbines@1").path()
    assert client.dataset_readers([version]) == {version.digest: [run.id]}


def test_bad_input_is_named_with_the_fix(client: Client, project: Path) -> None:
    with pytest.raises(NotFoundError, match=r"No file or folder 'nope.csv' to add as dataset 'x'"):
        add_dataset("nope.csv", name="x")
    with pytest.raises(InvalidParameterError, match="Dataset name 'a/b'"):
        add_dataset(write_csv(project / "t.csv", [1]), name="a/b")
    with pytest.raises(InvalidParameterError, match=r"add_dataset: got a builtins.dict"):
        add_dataset({"power": [1]}, name="x")  # type: ignore[arg-type]
    with pytest.raises(InvalidParameterError, match="Dataset reference"):
        dataset("turbines@")
    with pytest.raises(NotFoundError, match="No dataset named 'ghost'"):
        dataset("ghost@2").path()


def test_validating_a_version_records_the_result_even_when_it_raises(
    client: Client, project: Path
) -> None:
    from loopml.data.datasets import validate_version
    from loopml.data.errors import ValidationError
    from loopml.data.validate import infer_schema

    good, _ = add_dataset(write_csv(project / "t.csv", [1, 2, 3]), name="turbines")
    schema = infer_schema(project / "t.csv")
    assert validate_version("turbines@1", schema).ok
    bad, _ = add_dataset(write_csv(project / "t.csv", [1, 2, 300]), name="turbines")
    with pytest.raises(ValidationError, match="power"):
        validate_version("turbines", schema)
    checks = client.dataset_validations([good, bad])
    assert [(c.ok, c.errors) for c in checks["turbines@1"]] == [(True, 0)]
    assert [(c.ok, c.errors) for c in checks["turbines@2"]] == [(False, 1)]
    assert client.load_artifact(checks["turbines@2"][0].report_digest)["ok"] is False
    with pytest.raises(InvalidParameterError, match="only tables"):
        photos = project / "photos"
        photos.mkdir()
        (photos / "a.png").write_bytes(b"png")
        add_dataset(photos, name="photos")
        validate_version("photos@1", schema)


def test_adding_a_big_file_reports_its_copy_and_hashing(client: Client, project: Path) -> None:
    big = project / "big.bin"
    big.write_bytes(os.urandom(40 * 2**20))
    seen: list[tuple[int, int]] = []
    add_dataset(big, name="big", on_progress=lambda done, total: seen.append((done, total)))
    total = 2 * 40 * 2**20  # copied, then hashed
    assert seen and {t for _, t in seen} == {total}
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)  # never goes back
    assert seen[-1] == (total, total)
    assert len(seen) > 10  # many steps, not one jump at the end
    before = len(seen)
    client.store_value(project / "big.bin")  # outside add_dataset: nobody is told
    assert len(seen) == before


def test_data_add_on_a_terminal_draws_a_progress_bar(project: Path) -> None:
    """The bar is drawn only on a TTY: run the real command in a pseudo-terminal."""
    import pty
    import subprocess
    import sys

    big = project / "big.bin"
    big.write_bytes(os.urandom(64 * 2**20))
    main, follower = pty.openpty()
    exe = Path(sys.executable).parent / "loopml"
    done = subprocess.run(
        [str(exe), "data", "add", str(big), "--name", "big"],
        cwd=project,
        stdin=follower,
        stdout=follower,
        stderr=follower,
        timeout=300,
        check=False,
    )
    os.close(follower)
    out = b""
    while True:
        try:
            chunk = os.read(main, 65536)
        except OSError:  # the terminal closed: everything has been read
            break
        if not chunk:
            break
        out += chunk
    os.close(main)
    text = out.decode("utf-8", "replace")
    assert done.returncode == 0, text
    assert "adding big.bin" in text and "Added big@1" in text, text


def test_the_same_file_again_is_not_read_but_an_edit_always_is(
    client: Client, project: Path
) -> None:
    csv = write_csv(project / "t.csv", [1, 2, 3])
    first, _ = add_dataset(csv, name="turbines", profile=False)
    bytes_read: list[int] = []
    again = add_dataset(csv, name="turbines", on_progress=lambda d, t: bytes_read.append(d))
    assert again == (first, False) and bytes_read == []  # answered from the stat cache

    # Same size, and the old modification time put back: the change time still moved.
    st = csv.stat()
    write_csv(csv, [1, 2, 4])
    os.utime(csv, ns=(st.st_atime_ns, st.st_mtime_ns))
    edited, created = add_dataset(csv, name="turbines", profile=False)
    assert created and edited.number == 2
    assert dataset("turbines@2").path().read_text() == "power\n1\n2\n4\n"

    # A damaged blob is never vouched for by the cache: the file is stored again.
    blob = project / ".loopml" / "blobs" / "objects" / edited.digest[:2] / edited.digest[2:]
    blob.chmod(0o644)
    blob.write_bytes(b"x" * blob.stat().st_size)
    assert add_dataset(csv, name="turbines", profile=False) == (edited, False)
    assert blob.read_bytes() == b"power\n1\n2\n4\n"  # healed from the file
