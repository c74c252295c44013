"""Dataset versions in the metadata store, on SQLite and PostgreSQL.

- The same content under a name is one version; new content is the next number.
- References: ``NAME``, ``NAME@latest``, ``NAME@N``, ``NAME@<digest prefix>``; bad names and
  unknown versions get messages that say what exists and what to type.
- A version that a run read cannot be removed (the message names the runs); ``gc`` keeps
  every blob of every version and frees a removed version's blobs.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from loopml.errors import ConflictError, InvalidParameterError, NotFoundError
from loopml.store import DatasetVersion
from loopml.store.records import ArtifactRecord
from loopml.tracking.client import Client


def stored_file(client: Client, path: Path, text: str) -> ArtifactRecord:
    path.write_text(text)
    return client.store_value(path)


def intact(client: Client, record: ArtifactRecord) -> bool:
    return client.artifacts.is_intact(record.digest, record.size)


def add(client: Client, name: str, record: ArtifactRecord) -> tuple[DatasetVersion, bool]:
    version = DatasetVersion(
        name=name,
        number=0,
        digest=record.digest,
        kind="file",
        filename="turbines.csv",
        format="csv",
        size=record.size,
        rows=2,
        columns=1,
        profile_digest=None,
        source="data/turbines.csv",
        created_at=time.time(),
    )
    return client.metadata.datasets.add(version)


def test_same_content_is_the_same_version_new_content_the_next(
    client: Client, project: Path
) -> None:
    one = stored_file(client, project / "a.csv", "x\n1\n2\n")
    two = stored_file(client, project / "b.csv", "x\n1\n3\n")
    first, created = add(client, "turbines", one)
    assert (first.number, created) == (1, True)
    again, created = add(client, "turbines", one)
    assert (again, created) == (first, False)
    second, created = add(client, "turbines", two)
    assert (second.number, second.label, created) == (2, "turbines@2", True)
    assert add(client, "other", one)[0].number == 1  # numbering is per name

    datasets = client.metadata.datasets
    assert datasets.get("turbines") == datasets.get("turbines@latest") == second
    assert datasets.get("turbines@1") == first
    assert datasets.get(f"turbines@{one.digest[:8]}") == first
    assert datasets.get(f"turbines@{two.digest.upper()}") == second
    assert [v.number for v in datasets.versions("turbines")] == [1, 2]
    assert [v.label for v in datasets.latest()] == ["other@1", "turbines@2"]


@pytest.mark.parametrize(
    "name",
    ["a/b", "..", "a..b", "a b", "a@b", "", "-lead", "x" * 201, "data_\udcff", "ü"],
)
def test_names_that_are_paths_or_references_are_refused(client: Client, name: str) -> None:
    record = stored_file(client, Path("a.csv"), "x\n1\n")
    with pytest.raises(InvalidParameterError, match="Dataset name .*use letters, digits"):
        add(client, name, record)


def test_unknown_names_and_versions_say_what_exists(client: Client, project: Path) -> None:
    datasets = client.metadata.datasets
    with pytest.raises(NotFoundError, match=r"No dataset named 'nope'.*loopml data list"):
        datasets.get("nope@1")
    add(client, "turbines", stored_file(client, project / "a.csv", "x\n1\n"))
    with pytest.raises(NotFoundError, match=r"No version 'turbines@7'. turbines has versions @1"):
        datasets.get("turbines@7")
    with pytest.raises(InvalidParameterError, match="after '@' must be 'latest'"):
        datasets.get("turbines@newest")
    with pytest.raises(InvalidParameterError, match="Dataset name"):
        datasets.get("../etc@1")


def test_a_version_a_run_read_stays_and_names_the_run(client: Client, project: Path) -> None:
    record = stored_file(client, project / "a.csv", "x\n1\n")
    version, _ = add(client, "turbines", record)
    with client.start_run("train") as run:
        client.metadata.lineage.record(
            record, run_id=run.id, step_run_id=None, direction="input", name="turbines"
        )
    datasets = client.metadata.datasets
    assert datasets.readers([version.digest]) == {version.digest: [run.id]}
    with pytest.raises(ConflictError, match=rf"turbines@1 is read by run {run.id[:8]}"):
        datasets.remove("turbines@1")
    assert datasets.get("turbines@1") == version  # nothing changed

    client.delete_runs([run.id])
    assert datasets.remove("turbines@1") == version
    with pytest.raises(NotFoundError, match="No dataset named 'turbines'"):
        datasets.get("turbines")


def test_gc_keeps_every_version_and_frees_a_removed_one(client: Client, project: Path) -> None:
    kept = stored_file(client, project / "a.csv", "x\n1\n")
    dropped = stored_file(client, project / "b.csv", "x\n2\n")
    add(client, "turbines", kept)
    add(client, "turbines", dropped)
    assert client.gc(grace_s=0).deleted == []
    assert intact(client, kept) and intact(client, dropped)

    client.metadata.datasets.remove("turbines@2")
    assert client.gc(grace_s=0).deleted == [dropped.digest]
    assert intact(client, kept)
    assert not intact(client, dropped)
