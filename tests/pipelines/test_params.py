"""Pipeline parameters from ``KEY=VALUE`` strings, typed from annotations and defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from loopml import pipeline, step
from loopml.errors import InvalidParameterError
from loopml.tracking.client import Client


@step
def echo(value: str) -> str:
    return value


@pipeline
def typed(
    alpha: float,
    n: int = 1,
    flag: bool = False,
    items: list[int] = [],  # noqa: B006
    name: str = "x",
    config: dict[str, int] = {},  # noqa: B006
    where: Path = Path("."),
    ratio: float | None = None,
    untyped=0.5,  # type: ignore[no-untyped-def]
):
    return echo(name)


@pipeline
def optional(
    limit: int | None = None, items: list[int] | None = None, tags: dict[str, int] | None = None
):
    return echo("x")


def test_parse_params_types_values_from_annotations_and_defaults() -> None:
    values = typed.parse_params(
        [
            "alpha=0.5",
            "n=3",
            "flag=yes",
            "items=[1,2]",
            "name=hello world",
            'config={"a": 1}',
            "where=data/raw",
            "ratio=0.1",
            "untyped=2",
        ]
    )
    assert values == {
        "alpha": 0.5,
        "n": 3,
        "flag": True,
        "items": [1, 2],
        "name": "hello world",
        "config": {"a": 1},
        "where": Path("data/raw"),
        "ratio": 0.1,
        "untyped": 2.0,
    }
    assert (
        type(values["alpha"]) is float
        and type(values["n"]) is int
        and type(values["untyped"]) is float
    )


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("true", True),
        ("1", True),
        ("on", True),
        ("Y", True),
        ("false", False),
        ("0", False),
        ("NO", False),
        ("off", False),
    ],
)
def test_bool_spellings(raw: str, expected: bool) -> None:
    assert typed.parse_params([f"flag={raw}"]) == {"flag": expected}


def test_optional_generic_params_are_parsed_as_json() -> None:
    assert optional.parse_params(["items=[1,2]", 'tags={"a": 1}']) == {
        "items": [1, 2],
        "tags": {"a": 1},
    }
    with pytest.raises(InvalidParameterError, match="'items'"):
        optional.parse_params(["items=[1"])


def test_optional_int_accepts_none() -> None:
    assert optional.parse_params(["limit=none"]) == {"limit": None}
    assert optional.parse_params(["limit=5"]) == {"limit": 5}


def test_string_values_are_kept_verbatim() -> None:
    assert typed.parse_params(["name= a=b "]) == {"name": " a=b "}
    assert typed.parse_params(["name=none"]) == {"name": "none"}


def test_a_parameter_given_twice_is_refused_not_overwritten() -> None:
    with pytest.raises(InvalidParameterError, match="'alpha' is given twice"):
        typed.parse_params(["alpha=0.5", "alpha=0.7"])


def test_bad_values_are_all_reported_in_one_error() -> None:
    with pytest.raises(InvalidParameterError) as info:
        typed.parse_params(["alpha=abc", "n=1.5", "flag=maybe", "items={}", "alpah=1", "novalue"])
    message = str(info.value)
    lines = message.splitlines()
    assert len(lines) == 6
    assert "'alpha'" in message and "'abc'" in message and "a number such as 0.5" in message
    assert "'n'" in message and "'1.5'" in message and "an integer" in message
    assert "'flag'" in message and "'maybe'" in message and "true or false" in message
    assert "'items'" in message and "JSON list" in message
    assert "no parameter 'alpah'" in message and "Did you mean 'alpha'?" in message
    assert "'novalue' is not KEY=VALUE" in message
    assert isinstance(info.value, ValueError)


def test_bad_values_run_nothing(project: Path) -> None:
    with pytest.raises(InvalidParameterError):
        typed.run(typed.parse_params(["alpha=oops"]))
    assert Client().search_runs() == []


def test_parsed_params_run_the_pipeline_and_are_logged() -> None:
    run = typed.run(typed.parse_params(["alpha=0.25", "name=hi", "flag=true", "items=[3]"]))
    assert run.status == "succeeded"
    assert run.output("echo") == "hi"
    params = run.params
    assert params["alpha"] == "0.25"
    assert params["name"] == "hi"
    assert params["flag"] == "true"
    assert params["items"] == "[3]"
