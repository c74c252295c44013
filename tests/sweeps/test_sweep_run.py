"""``run_sweep``: trials as runs grouped by tags, in parallel on one executor, best by a metric."""

from __future__ import annotations

import statistics
from typing import Any

import pytest
from pl_sweep import quad, sleepy

from loopml import Client
from loopml.errors import NotFoundError
from loopml.pipelines.sweep import open_sweep, run_sweep


def test_grid_runs_every_combination_as_a_tagged_run(client: Client) -> None:
    sweep = run_sweep(quad, ["x=0,0.5,1", "depth=1..2"], metric="loss", client=client)
    assert [t.status for t in sweep.trials] == ["succeeded"] * 6
    assert [t.params for t in sweep.trials] == [
        {"x": x, "depth": d} for x in (0.0, 0.5, 1.0) for d in (1, 2)
    ]
    runs = client.search_runs(f"tags.sweep = '{sweep.id}'", sort="tags.sweep_trial")
    assert len(runs) == 6
    for trial, record in zip(
        sweep.trials, sorted(runs, key=lambda r: int(r.tags["sweep_trial"])), strict=True
    ):
        assert record.id == trial.run_id
        assert (record.params["x"], record.params["depth"]) == (
            str(trial.params["x"]),
            str(trial.params["depth"]),
        )
        assert record.tags["sweep_strategy"] == "grid" and record.tags["sweep_metric"] == "loss"
        assert trial.value == pytest.approx((trial.params["x"] - 0.7) ** 2 + trial.params["depth"])
    assert sweep.best is not None and sweep.best.params == {"x": 0.5, "depth": 1}


def test_random_with_a_seed_draws_the_same_trials() -> None:
    first = run_sweep(quad, ["x=-5..5", "depth=0..3"], strategy="random", n=5, seed=3)
    again = run_sweep(quad, ["x=-5..5", "depth=0..3"], strategy="random", n=5, seed=3)
    other = run_sweep(quad, ["x=-5..5", "depth=0..3"], strategy="random", n=5, seed=4)
    params = lambda s: [t.params for t in s.trials]  # noqa: E731
    assert params(first) == params(again) != params(other)
    assert first.id != again.id and first.seed == 3
    assert all(-5 <= t.params["x"] <= 5 for t in first.trials)


def test_optuna_finds_a_point_better_than_the_median_of_the_space() -> None:
    # loss = (x - 0.7)^2 with x uniform on [-5, 5]: the median loss is 2.5^2 = 6.25.
    sweep = run_sweep(quad, ["x=-5..5", "depth=0"], strategy="optuna", n=16, seed=1, metric="loss")
    assert len(sweep.trials) == 16 and sweep.counts() == {"succeeded": 16}
    assert sweep.best is not None and sweep.best.value is not None
    assert sweep.best.value < 6.25 / 10
    guided = [t.value for t in sweep.trials[10:]]  # after TPE's 10 random start-up trials
    assert statistics.median(v for v in guided if v is not None) < 6.25


def test_optuna_maximizes_when_asked() -> None:
    sweep = run_sweep(
        quad, ["x=-5..5"], strategy="optuna", n=12, seed=2, metric="score", goal="max"
    )
    assert sweep.best is not None and sweep.best.value == max(t.value for t in sweep.trials)
    assert sweep.best.value > -6.25 / 10


def test_parallel_trials_overlap_on_one_executor(client: Client) -> None:
    sweep = run_sweep(
        sleepy, {"seconds": [0.4], "tag": ["a", "bb", "ccc", "dddd"]}, parallel=4, client=client
    )
    assert sweep.counts() == {"succeeded": 4}
    records = [client.run_record(t.run_id) for t in sweep.trials if t.run_id]
    assert len({r.number for r in records}) == 4  # four distinct runs from four threads
    latest_start = max(r.started_at for r in records)
    earliest_end = min(r.ended_at or 0 for r in records)
    assert latest_start < earliest_end  # all four were running at the same moment


def test_a_failing_trial_is_recorded_and_the_others_go_on() -> None:
    sweep = run_sweep(sleepy, {"tag": ["a", "fail", "ccc"]}, metric="length", parallel=2)
    assert [t.status for t in sweep.trials] == ["succeeded", "failed", "succeeded"]
    failed = sweep.trials[1]
    assert failed.run_id is not None and "asked to fail" in (failed.error or "")
    assert sweep.best is not None and sweep.best.params == {"tag": "a"}


def test_best_by_min_and_by_max_and_reopened_from_the_store(client: Client) -> None:
    sweep = run_sweep(sleepy, {"tag": ["bb", "a", "ccc"]}, metric="length", client=client)
    assert sweep.best is not None and sweep.best.params == {"tag": "a"}
    again = open_sweep(sweep.id, client=client)
    assert (again.metric, again.goal, again.strategy) == ("length", "min", "grid")
    assert [t.run_id for t in again.trials] == [t.run_id for t in sweep.trials]
    assert [t.params for t in again.trials] == [{"tag": "bb"}, {"tag": "a"}, {"tag": "ccc"}]
    assert again.best is not None and again.best.run_id == sweep.best.run_id
    highest = open_sweep(sweep.id, client=client, goal="max").best
    assert highest is not None and highest.params == {"tag": "ccc"}


def test_a_sweep_without_a_metric_ranks_nothing() -> None:
    sweep = run_sweep(sleepy, {"tag": ["a", "b"]})
    assert sweep.best is None and len(sweep.trials) == 2
    assert "no metric given" in sweep._repr_html_()


def test_unknown_sweep_ids_are_refused_with_the_known_ones() -> None:
    sweep = run_sweep(sleepy, {"tag": ["a"]})
    with pytest.raises(NotFoundError, match=rf"No sweep '{sweep.id}x'.*Did you mean '{sweep.id}'"):
        open_sweep(sweep.id + "x")
    with pytest.raises(Exception, match="expected letters, digits"):
        open_sweep("x' or 1=1")


def test_ctrl_c_stops_launching_and_cancels_running_trials() -> None:
    started: list[int] = []

    def progress(event: str, trial: Any, sweep: Any) -> None:
        if event == "started":
            started.append(trial.number)
            if len(started) == 2:  # the main thread is interrupted while two trials run
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_sweep(
            sleepy,
            {"seconds": [3.0], "tag": ["a", "b", "c", "d"]},
            parallel=2,
            progress=progress,
        )
    assert started == [1, 2]
    (sweep_id,) = {r.tags["sweep"] for r in Client().search_runs("tags.sweep != null")}
    sweep = open_sweep(sweep_id)
    assert [t.status for t in sweep.trials] == ["cancelled", "cancelled"]
    assert all(
        s.status == "cancelled" for t in sweep.trials for s in Client().steps(t.run_id or "")
    )


def test_notebook_html_escapes_values_and_highlights_the_best() -> None:
    sweep = run_sweep(sleepy, {"tag": ["<b>x</b>", "y"]}, metric="length")
    page = sweep._repr_html_()
    assert "&lt;b&gt;x&lt;/b&gt;" in page and "<b>x</b>" not in page
    assert page.count("background:#dafbe1") == 1
    frame = sweep.to_frame()
    assert list(frame["params.tag"]) == ["<b>x</b>", "y"] and list(frame["length"]) == [8.0, 1.0]
