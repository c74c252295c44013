"""Hostile strings never cost a run its data (issue 12 §1b, "One bad string loses a whole run").

A lone surrogate is what ``os.listdir()`` and ``sys.argv`` return for a file name that is
not UTF-8 (``os.fsdecode(b"data_\\xff.csv")`` is ``'data_\\udcff.csv'``). Before the fix such
a name was accepted at the call, the next flush failed on it, and the whole buffered batch
(every metric, param and tag of the run) was dropped, on SQLite and PostgreSQL alike; a
pipeline given such a path ended ``failed`` after all its steps had succeeded.

Now, on both backends:

- as a metric, param or tag *name* it is refused at the call that passed it, naming it,
  and nothing else the run logged is lost;
- as a param or tag *value* it is stored escaped (``data_\\xff.csv``, with a literal
  backslash) and the run succeeds;
- a row the store refuses anyway (one that bypassed the call checks) is reported and the
  rest of its batch is stored;
- NUL is refused at the call, as before.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from loopml import Client, Run, pipeline, step
from loopml.errors import InvalidParameterError
from loopml.tracking.writer import BatchWriter

NON_UTF8 = os.fsdecode(b"data_\xff.csv")  # 'data_\udcff.csv'
ESCAPED = "data_\\xff.csv"  # what is stored: a literal backslash, then "xff"
HIGH = "lone_\ud800"  # a surrogate surrogateescape never makes
HIGH_ESCAPED = "lone_\\xed\\xa0\\x80"  # its UTF-8 bytes (surrogatepass), shown as \xNN

NAMES = (NON_UTF8, HIGH)


def _log_good(run: Run) -> None:
    run.log_metric("loss", 0.5)
    run.log_metric("loss", 0.25)
    run.log_param("alpha", 0.1)
    run.set_tag("team", "ml")


def _assert_good_stored(client: Client, run_id: str) -> None:
    run = client.get_run(run_id)
    record = run.record
    assert record.status == "succeeded", record.error
    assert record.metrics == {"loss": 0.25}
    assert record.params["alpha"] == "0.1"
    assert record.tags["team"] == "ml"
    assert [p.value for p in run.metric_history("loss")] == [0.5, 0.25]


@pytest.mark.parametrize(
    ("call", "kind"),
    [
        (lambda run, bad: run.log_metric(bad, 1.0), "Metric name"),
        (lambda run, bad: run.log_metrics({bad: 2.0}), "Metric name"),
        (lambda run, bad: run.log_param(bad, 1), "Param name"),
        (lambda run, bad: run.log_params({bad: 1}), "Param name"),
        (lambda run, bad: run.set_tag(bad, "x"), "Tag name"),
    ],
    ids=["log_metric", "log_metrics", "log_param", "log_params", "set_tag"],
)
def test_a_surrogate_name_is_refused_at_the_call_and_nothing_else_is_lost(
    client: Client, call: Callable[[Run, str], None], kind: str
) -> None:
    with client.start_run("hostile") as run:
        _log_good(run)
        run.flush()  # some of the run is already stored, some still buffered below
        run.log_metric("loss", 0.25, step=1)
        for bad in NAMES:
            with pytest.raises(InvalidParameterError) as caught:
                call(run, bad)
            message = str(caught.value)
            assert kind in message and "surrogate" in message, message
            assert repr(bad) in message, message
    _assert_good_stored(client, run.id)
    record = client.get_run(run.id).record
    assert not any("\\" in k or not k.isascii() for k in [*record.metrics, *record.params])


def test_a_surrogate_value_is_stored_escaped_and_the_run_succeeds(client: Client) -> None:
    with client.start_run("hostile-values") as run:
        _log_good(run)
        for value, name in ((NON_UTF8, "fs"), (HIGH, "high")):
            run.log_param(f"path_{name}", value)
            run.set_tag(f"source_{name}", value)
            run.log_params({f"listed_{name}": value, "count": 3})
    record = client.get_run(run.id).record
    assert record.status == "succeeded", record.error
    for stored, name in ((ESCAPED, "fs"), (HIGH_ESCAPED, "high")):
        assert record.params[f"path_{name}"] == stored
        assert record.params[f"listed_{name}"] == stored
        assert record.tags[f"source_{name}"] == stored
        # The escaped text is plain UTF-8 with a visible backslash; searching by it works.
        quoted = stored.replace("\\", "\\\\")
        found = client.search_runs(f"params.path_{name} = '{quoted}'")
        assert [r.id for r in found] == [run.id]
    assert record.params["count"] == "3"
    _assert_good_stored(client, run.id)


NUL_CALLS: dict[str, Callable[[Run], None]] = {
    "metric name": lambda run: run.log_metric("a\x00b", 1.0),
    "param name": lambda run: run.log_param("a\x00b", 1),
    "param value": lambda run: run.log_param("k", "a\x00b"),
    "tag name": lambda run: run.set_tag("a\x00b", "x"),
    "tag value": lambda run: run.set_tag("k", "a\x00b"),
}


def test_nul_is_still_refused_at_the_call(client: Client) -> None:
    with client.start_run("nul") as run:
        _log_good(run)
        for call in NUL_CALLS.values():  # each refused at its own call; the run goes on
            with pytest.raises(InvalidParameterError, match="NUL"):
                call(run)
    _assert_good_stored(client, run.id)


def test_a_row_the_store_refuses_is_reported_and_the_rest_of_the_batch_is_stored(
    client: Client,
) -> None:
    """Rows that bypassed the call checks (here: put straight into the buffer) sink nothing else."""
    with client.start_run("refused-row") as run:
        # A second handle on the run, as a worker process would attach (Run.attach).
        writer = BatchWriter(client.metadata, run.id)
        for i in range(1000):
            writer.metric("loss", 1.0 / (i + 1), i, None)
        writer.param("alpha", 0.5)
        writer.tag("team", "ml")
        now = time.time()
        writer.points.insert(500, (NON_UTF8, 0, 1.0, now))  # bypasses check_point
        writer.params[HIGH] = "x"  # bypasses param_row
        with pytest.raises(InvalidParameterError) as caught:
            writer.flush()
        message = str(caught.value)
        assert "refused 2 rows" in message and "the rest of the batch was stored" in message
        assert "1 metric point" in message and f"param {HIGH}" in message, message
        # The direct store call the writer makes refuses the bad batch as a loopml error.
        with pytest.raises(InvalidParameterError, match="surrogate"):
            client.metadata.metrics.write_batch(run.id, [(NON_UTF8, 0, 1.0, now)])
        run.log_metric("after", 1.0)  # the run goes on logging
    record = client.get_run(run.id).record
    assert record.status == "succeeded", record.error
    assert len(client.get_run(run.id).metric_history("loss")) == 1000
    assert record.metrics == {"loss": 1.0 / 1000, "after": 1.0}
    assert record.params == {"alpha": "0.5"}
    assert record.tags["team"] == "ml"


# --- a pipeline given a path that is not UTF-8 ------------------------------------------


@step
def count_bytes(path: str) -> int:
    with open(path, "rb") as f:
        return len(f.read())


@step
def double(n: int) -> int:
    return 2 * n


@pipeline
def sized(path: str = ""):
    return double(count_bytes(path))


def test_a_pipeline_given_a_non_utf8_path_runs_caches_and_succeeds(
    client: Client, tmp_path: Path
) -> None:
    raw = os.path.join(os.fsencode(tmp_path), b"data_\xff.csv")
    with open(raw, "wb") as f:
        f.write(b"a,b\n1,2\n")
    path = os.fsdecode(raw)  # what sys.argv or os.listdir would hand the pipeline
    assert "\udcff" in path

    first = sized.run({"path": path}, client=client)
    assert first.status == "succeeded", first.record.error
    assert first.params["path"] == path.replace("\udcff", "\\xff")
    assert [(s.name, s.status, s.cached) for s in first.steps] == [
        ("count_bytes", "succeeded", False),
        ("double", "succeeded", False),
    ]
    assert first.output("double") == 16

    second = sized.run({"path": path}, client=client)
    assert second.status == "succeeded", second.record.error
    assert all(s.cached for s in second.steps), [(s.name, s.why) for s in second.steps]

    with open(raw, "ab") as f:  # the file's content is part of the cache key
        f.write(b"3,4\n")
    third = sized.run({"path": path}, client=client)
    assert third.status == "succeeded", third.record.error
    assert not third.steps[0].cached
    assert third.output("double") == 24
