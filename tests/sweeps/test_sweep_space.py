"""The search-space grammar of ``-p KEY=VALUES`` and the grid and random strategies."""

from __future__ import annotations

import math
import sys

import pytest
from pl_sweep import quad, sleepy

from loopml.errors import InvalidParameterError
from loopml.pipelines.space import Choice, Interval, IntRange, grid, parse_space, sample
from loopml.pipelines.sweep import run_sweep


def test_values_are_typed_from_the_signature() -> None:
    space = parse_space(quad, ["x=0.01,0.1,1", "depth=3..8"])
    assert space == {"x": Choice((0.01, 0.1, 1.0)), "depth": IntRange(3, 8)}
    assert parse_space(quad, ["x=0.001..0.1"]) == {"x": Interval(0.001, 0.1)}
    assert parse_space(quad, ["x=log:0.001..1"]) == {"x": Interval(0.001, 1.0, log=True)}
    assert parse_space(quad, ["depth=4"]) == {"depth": Choice((4,))}
    assert parse_space(sleepy, ["tag=a,b"]) == {"tag": Choice(("a", "b"))}
    assert parse_space(sleepy, ["tag=../a"]) == {"tag": Choice(("../a",))}  # text stays text
    assert parse_space(quad, ["x=1..3"]) == {"x": Interval(1.0, 3.0)}  # a float parameter


def test_grid_is_the_cartesian_product() -> None:
    trials = grid(parse_space(quad, ["x=0,0.5,1", "depth=1..2"]))
    assert len(trials) == 6
    assert trials[0] == {"x": 0.0, "depth": 1} and trials[-1] == {"x": 1.0, "depth": 2}
    assert len({tuple(t.items()) for t in trials}) == 6


def test_random_draws_stay_in_bounds_and_follow_the_seed() -> None:
    space = parse_space(quad, ["x=log:0.001..1", "depth=3..8"])
    first, again, other = sample(space, 20, 7), sample(space, 20, 7), sample(space, 20, 8)
    assert first == again and first != other
    assert all(0.001 <= t["x"] <= 1 and 3 <= t["depth"] <= 8 for t in first)
    # log-uniform: about half the draws fall below the geometric midpoint
    assert 4 <= sum(t["x"] < math.sqrt(0.001) for t in first) <= 16


def test_unknown_parameter_suggests_the_right_one() -> None:
    with pytest.raises(InvalidParameterError, match=r"no parameter 'detph'.*Did you mean 'depth'"):
        parse_space(quad, ["detph=1,2"])


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("x", r"'x' is not KEY=VALUES"),
        ("depth=1.5..3", r"'depth' is an integer: got '1.5..3'; expected an integer range"),
        ("depth=8..3", r"'depth': got '8..3'; the range is empty.*depth=3..8"),
        ("x=0.1..", r"'x': got '0.1..'; expected a list"),
        ("x=0.1,,1", r"'x': got '0.1,,1'; the list has an empty value"),
        ("x=abc,1", r"'x': got 'abc'; expected a number"),
        ("x=log:0..1", r"log interval needs low > 0"),
        ("x=log:0.1", r"'log:' goes before an interval"),
    ],
)
def test_bad_specs_name_the_parameter_value_and_fix(spec: str, says: str) -> None:
    with pytest.raises(InvalidParameterError, match=says):
        parse_space(quad, [spec])


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(InvalidParameterError) as caught:
        parse_space(quad, ["x=a", "depth=1", "depth=2", "nope=1"])
    message = str(caught.value)
    assert "'x'" in message and "given twice" in message and "'nope'" in message


def test_a_grid_refuses_an_interval_and_says_what_to_do() -> None:
    with pytest.raises(
        InvalidParameterError, match=r"interval \(0.001..0.1\).*Give a list.*--random"
    ):
        grid(parse_space(quad, ["x=0.001..0.1"]))


@pytest.mark.parametrize(
    ("kwargs", "says"),
    [
        ({"strategy": "bayes"}, r"strategy 'bayes': expected one of"),
        ({"strategy": "random"}, r"expected the number of trials"),
        ({"strategy": "grid", "n": 3}, r"every combination"),
        ({"strategy": "optuna", "n": 3}, r"needs the metric"),
        ({"goal": "up"}, r"goal 'up'"),
        ({"parallel": 0}, r"parallel 0"),
    ],
)
def test_bad_sweep_options_fail_before_anything_runs(kwargs: dict, says: str) -> None:
    with pytest.raises(InvalidParameterError, match=says):
        run_sweep(quad, ["x=0,1"], **kwargs)


def test_python_spaces_are_checked_against_the_signature() -> None:
    with pytest.raises(InvalidParameterError, match="Did you mean 'depth'"):
        run_sweep(quad, {"x": [0.0], "dept": [1]})
    with pytest.raises(InvalidParameterError, match="'depth'"):
        run_sweep(quad, {"depth": ["deep"]})


def test_optuna_missing_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "optuna", None)  # as if it were not installed
    with pytest.raises(InvalidParameterError, match="pip install optuna"):
        run_sweep(quad, ["x=0..1"], strategy="optuna", n=2, metric="loss")
