"""Tests for the runs filter and sort parser (``loopml.store.filter``)."""

from __future__ import annotations

import math
import sqlite3
from datetime import datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loopml.errors import FilterSyntaxError, InvalidParameterError
from loopml.store.filter import (
    ATTRIBUTES,
    MAX_CONDITIONS,
    MAX_DEPTH,
    MAX_VALUES,
    STATUSES,
    And,
    Compare,
    Field,
    Node,
    Not,
    Or,
    SortKey,
    glob_to_like,
    parse_filter,
    parse_sort,
    tilde_to_like,
    unparse,
)

A = Compare(Field("metrics", "a"), "<", 1)
B = Compare(Field("metrics", "b"), "<", 2)
C = Compare(Field("metrics", "c"), "<", 3)
M = Field("metrics", "x")
P = Field("params", "x")
T = Field("tags", "x")


def attr(name: str) -> Field:
    return Field("attr", name)


VALID = [
    ("metrics.rmse < 3", Compare(Field("metrics", "rmse"), "<", 3)),
    ("metrics.rmse<3", Compare(Field("metrics", "rmse"), "<", 3)),
    ("  METRICS.rmse   <=   3  ", Compare(Field("metrics", "rmse"), "<=", 3)),
    ("metrics.RMSE > 3", Compare(Field("metrics", "RMSE"), ">", 3)),
    ("metrics.val/loss >= 0.5", Compare(Field("metrics", "val/loss"), ">=", 0.5)),
    ("params.model.depth = 3", Compare(Field("params", "model.depth"), "=", 3)),
    ("metrics.a-b:c/d_e.f != -2", Compare(Field("metrics", "a-b:c/d_e.f"), "!=", -2)),
    ('metrics."my key" > 1', Compare(Field("metrics", "my key"), ">", 1)),
    ("metrics.`my key` > 1", Compare(Field("metrics", "my key"), ">", 1)),
    ("metrics.'my key' > 1", Compare(Field("metrics", "my key"), ">", 1)),
    ("metrics.`a\\`b` > 1", Compare(Field("metrics", "a`b"), ">", 1)),
    ("params.alpha == 0.1", Compare(Field("params", "alpha"), "=", 0.1)),
    ("status = 'failed'", Compare(attr("status"), "=", "failed")),
    ('status = "FAILED"', Compare(attr("status"), "=", "failed")),
    ("Status != 'Running'", Compare(attr("status"), "!=", "running")),
    ("status < 'running'", Compare(attr("status"), "<", "running")),
    ("status ~ 'RUN*'", Compare(attr("status"), "~", "RUN*")),
    ("run_id = 'abc'", Compare(attr("id"), "=", "abc")),
    ("attributes.status = 'crashed'", Compare(attr("status"), "=", "crashed")),
    ("ATTRIBUTES.run_id = 'x'", Compare(attr("id"), "=", "x")),
    ("name ~ 'exp-*'", Compare(attr("name"), "~", "exp-*")),
    ("name < 'm'", Compare(attr("name"), "<", "m")),
    ("pipeline = 'train'", Compare(attr("pipeline"), "=", "train")),
    ("executor = 'ray'", Compare(attr("executor"), "=", "ray")),
    ("host ~ 'gpu-?'", Compare(attr("host"), "~", "gpu-?")),
    ("git_commit = 'abc123'", Compare(attr("git_commit"), "=", "abc123")),
    ("id = null", Compare(attr("id"), "=", None)),
    ("number = 3", Compare(attr("number"), "=", 3)),
    ("duration > 60", Compare(attr("duration"), ">", 60)),
    ("cost <= 0.5", Compare(attr("cost"), "<=", 0.5)),
    ("ended <= 1714521600", Compare(attr("ended"), "<=", 1714521600)),
    ("ended = null", Compare(attr("ended"), "=", None)),
    ("started > '2024-05-01T00:00:00+00:00'", Compare(attr("started"), ">", 1714521600.0)),
    ("tags.team ~ 'ml'", Compare(Field("tags", "team"), "~", "ml")),
    ("tags.team = 'ml' ", Compare(Field("tags", "team"), "=", "ml")),
    ("metrics.x = 1e-3", Compare(M, "=", 0.001)),
    ("metrics.x = 2E3", Compare(M, "=", 2000.0)),
    ("metrics.x = 1.5e+2", Compare(M, "=", 150.0)),
    ("metrics.x = .5", Compare(M, "=", 0.5)),
    ("metrics.x = -.5", Compare(M, "=", -0.5)),
    ("metrics.x = 1.", Compare(M, "=", 1.0)),
    ("metrics.x = -2", Compare(M, "=", -2)),
    ("metrics.x=-2", Compare(M, "=", -2)),
    ("metrics.x = inf", Compare(M, "=", math.inf)),
    ("metrics.x > -INF", Compare(M, ">", -math.inf)),
    ("metrics.x = null", Compare(M, "=", None)),
    ("metrics.x != NULL", Compare(M, "!=", None)),
    ("params.x = true", Compare(P, "=", True)),
    ("params.x != FALSE", Compare(P, "!=", False)),
    ("params.x < 'b'", Compare(P, "<", "b")),
    ("params.x >= 0.1", Compare(P, ">=", 0.1)),
    ("status in ('failed', 'crashed')", Compare(attr("status"), "in", ("failed", "crashed"))),
    ("status IN ('failed')", Compare(attr("status"), "in", ("failed",))),
    ("status not in ('running')", Compare(attr("status"), "not in", ("running",))),
    ("status NOT IN('running','failed')", Compare(attr("status"), "not in", ("running", "failed"))),
    ("metrics.x in (1, 2.5, -inf)", Compare(M, "in", (1, 2.5, -math.inf))),
    ("params.x in ('adam', 3, true)", Compare(P, "in", ("adam", 3, True))),
    ("tags.x = 'it\\'s'", Compare(T, "=", "it's")),
    ('tags.x = "say \\"hi\\""', Compare(T, "=", 'say "hi"')),
    ("tags.x = 'a\\\\b\\n\\t\\r'", Compare(T, "=", "a\\b\n\t\r")),
    ("tags.x = 'tab\there'", Compare(T, "=", "tab\there")),
    ("tags.x = ''", Compare(T, "=", "")),
    ("tags.x = 'ünïcode ✓'", Compare(T, "=", "ünïcode ✓")),
    ("tags.x = 'and or not ( )'", Compare(T, "=", "and or not ( )")),
]


@pytest.mark.parametrize(("text", "expected"), VALID)
def test_parse_filter_valid(text: str, expected: Compare) -> None:
    node = parse_filter(text)
    assert node == expected
    assert isinstance(node, Compare)
    assert type(node.value) is type(expected.value)


def test_iso_date_without_zone_is_local_time() -> None:
    node = parse_filter("started >= '2024-05-01'")
    assert node == Compare(attr("started"), ">=", datetime(2024, 5, 1).timestamp())


def test_in_list_converts_dates() -> None:
    node = parse_filter("ended in (0, '1970-01-01T00:01:00+00:00')")
    assert node == Compare(attr("ended"), "in", (0, 60.0))


def test_every_attribute_parses() -> None:
    for name in ATTRIBUTES:
        node = parse_filter(f"{name} = null")
        assert node == Compare(attr(name), "=", None)


PRECEDENCE = [
    ("metrics.a < 1 or metrics.b < 2 and metrics.c < 3", Or(A, And(B, C))),
    ("metrics.a < 1 and metrics.b < 2 or metrics.c < 3", Or(And(A, B), C)),
    ("metrics.a < 1 and metrics.b < 2 and metrics.c < 3", And(And(A, B), C)),
    ("metrics.a < 1 or metrics.b < 2 or metrics.c < 3", Or(Or(A, B), C)),
    ("(metrics.a < 1 or metrics.b < 2) and metrics.c < 3", And(Or(A, B), C)),
    ("metrics.a < 1 and (metrics.b < 2 and metrics.c < 3)", And(A, And(B, C))),
    ("not metrics.a < 1 and metrics.b < 2", And(Not(A), B)),
    ("not (metrics.a < 1 and metrics.b < 2)", Not(And(A, B))),
    ("not not metrics.a < 1", Not(Not(A))),
    ("NOT metrics.a < 1 OR metrics.b < 2", Or(Not(A), B)),
    ("metrics.a < 1 AND NOT metrics.b < 2 Or metrics.c < 3", Or(And(A, Not(B)), C)),
    ("((metrics.a < 1))", A),
    ("(metrics.a<1)and(metrics.b<2)", And(A, B)),
    ("not metrics.a in (1)", Not(Compare(Field("metrics", "a"), "in", (1,)))),
]


@pytest.mark.parametrize(("text", "expected"), PRECEDENCE)
def test_precedence(text: str, expected: Node) -> None:
    assert parse_filter(text) == expected


ERRORS = [
    ("", "Empty filter", 0),
    ("   ", "Empty filter", 0),
    ("metrics.rmse < ", "Expected a value after '<' but the filter ended", 15),
    ("metrics.rmse < and", "Expected a value after '<' but found 'and'", 15),
    ("status = failed", "quote text values: 'failed'", 9),
    (
        "statsu = 'failed'",
        "Unknown attribute 'statsu'. Did you mean 'status'? Valid attributes:",
        0,
    ),
    ("rmse < 3", "For a logged value write metrics.rmse, params.rmse or tags.rmse", 0),
    ("attributes.statsu = 'x'", "Unknown attribute 'statsu'. Did you mean 'status'?", 11),
    (
        "metric.rmse < 3",
        "Unknown field prefix 'metric' in 'metric.rmse'. Did you mean 'metrics'?",
        0,
    ),
    ("metrics < 3", "Expected '.' and a key after 'metrics', e.g. metrics.rmse", 7),
    ("attributes = 'x'", "Expected '.' and a key after 'attributes'", 10),
    ("metrics. < 3", "Expected a key after 'metrics.'", 8),
    ("metrics.`` < 3", "Expected a key after 'metrics.'", 8),
    ("(status = 'failed'", "Unclosed '(': add a ')' for the '(' opened", 0),
    ("name = 'x' or (metrics.a < 1 and (metrics.b < 2)", "Unclosed '('", 14),
    ("metrics.x < 3 foo", "Unexpected text 'foo' after a complete filter", 14),
    ("metrics.x < 3)", "Unmatched ')'", 13),
    (
        "(metrics.x < 3 status = 'failed')",
        "Expected 'and', 'or' or ')' to close the '(' opened at position 0 but found 'status'",
        15,
    ),
    ("()", "Expected a condition after '(' but found ')'", 1),
    ("status = 'failed' and", "Expected a condition after 'and' but the filter ended", 21),
    ("status = 'failed' and or", "Expected a condition after 'and' but found 'or'", 22),
    ("and status = 'x'", "Expected a condition but found 'and'", 0),
    ("-metrics.x < 3", "Expected a condition but found '-'", 0),
    ("'status' = 'x'", "Expected a condition but found 'status'", 0),
    ("3 < metrics.x", "Expected a condition but found '3'", 0),
    ("tags.x = 'abc", "Unterminated string: no closing ' for the string starting", 9),
    ('tags.x = "abc\\"', "Unterminated string", 9),
    ("tags.x = 'abc\\", "Unterminated string", 9),
    ("metrics.`abc < 3", "Unterminated string", 8),
    ("tags.path = 'C:\\data'", "Unknown escape '\\d'", 15),
    (
        "metrics.x 3",
        "Expected an operator (=, !=, <, <=, >, >=, ~, in, not in) after 'metrics.x' but found '3'",
        10,
    ),
    ("metrics.x", "Expected an operator", 9),
    ("metrics.x like 'a'", "Use '~'", 10),
    ("metrics.x is null", "Use '= null'", 10),
    ("metrics.x <> 3", "Unknown operator '<>'; use '!='", 10),
    ("metrics.x => 3", "Unknown operator '=>'; use '>='", 10),
    ("metrics.x =< 3", "Unknown operator '=<'; use '<='", 10),
    ("metrics.x ! 3", "Unknown operator '!'; use '!=' or 'not'", 10),
    ("metrics.x = #", "Unexpected character '#'", 12),
    ("`status` = 'x'", "Unexpected character '`'; backticks quote keys", 0),
    ("status not 'x'", "Expected 'in' after 'not' but found 'x'", 11),
    ("status in 'x'", "Expected '(' after 'in' but found 'x'", 10),
    ("status in ()", "Expected at least one value in the list", 11),
    ("status in ('failed'", "Unclosed '('", 10),
    (
        "status in ('failed' 'crashed')",
        "Expected ',' or ')' to close the '(' opened at position 10 but found 'crashed'",
        20,
    ),
    ("status in ('failed',)", "Expected a value after ',' but found ')'", 20),
    ("metrics.x in (1, null)", "null cannot be in a list; use '= null' or '!= null'", 17),
    ("name ~ 3", "'~' needs a quoted text pattern such as 'adam*', got 3", 7),
    ("params.x ~ null", "null can only be compared with = or !=, not '~'", 11),
    ("metrics.x ~ 'a*'", "'~' matches text, but metrics.x holds numbers", 10),
    ("started ~ '2024*'", "'~' matches text, but started holds timestamps", 8),
    (
        "metrics.x < 'abc'",
        "metrics.x holds numbers: got 'abc'; expected a number such as 3 or 0.5",
        12,
    ),
    ("metrics.x < '3'", "remove the quotes: 3", 12),
    ("metrics.x = true", "metrics.x holds numbers: got true", 12),
    ("metrics.x in (1, 'a')", "metrics.x holds numbers: got 'a'", 17),
    ("metrics.x < null", "null can only be compared with = or !=, not '<'", 12),
    ("duration > 'long'", "duration holds numbers", 11),
    ("number = 1.5e", "Invalid number '1.5e'", 9),
    ("status < 3", "status holds text: got 3; expected a quoted string", 9),
    ("name = true", "name holds text: got true", 7),
    (
        "status = 'runing'",
        "Invalid status 'runing'. Did you mean 'running'? Valid statuses: cancelled, crashed, failed, running, succeeded",
        9,
    ),
    ("status in ('failed', 'oops')", "Invalid status 'oops'", 21),
    ("params.x < true", "true can only be compared with =, !=, in or not in, not '<'", 11),
    (
        "started > 'yesterday'",
        "started holds timestamps: got 'yesterday'; expected Unix seconds or an ISO date",
        10,
    ),
    ("started = false", "started holds timestamps: got false", 10),
    ("metrics.x = 1e", "Invalid number '1e'", 12),
    ("metrics.x = 1.2.3", "Invalid number '1.2.3'", 12),
    ("metrics.x = 3and", "Invalid number '3and'", 12),
    ("metrics.x = " + "9" * 5000, "Number too long", 12),
    ("metrics.x = - 3", "Expected a value after '=' but found '-'", 12),
    ("metrics.x = nan", "quote text values: 'nan'", 12),
]


@pytest.mark.parametrize(("text", "message", "position"), ERRORS)
def test_parse_filter_errors(text: str, message: str, position: int) -> None:
    with pytest.raises(FilterSyntaxError) as info:
        parse_filter(text)
    assert message in str(info.value)
    assert info.value.position == position
    assert info.value.text == text


def test_error_message_shape() -> None:
    with pytest.raises(FilterSyntaxError) as info:
        parse_filter("metrics.rmse < ")
    assert str(info.value) == (
        "Expected a value after '<' but the filter ended at position 15:\n"
        "  metrics.rmse < \n"
        "                 ^"
    )


def test_filter_errors_are_value_errors() -> None:
    with pytest.raises(ValueError):
        parse_filter("statsu = 'x'")
    with pytest.raises(InvalidParameterError):
        parse_filter("")


def test_first_mistake_in_reading_order_wins() -> None:
    with pytest.raises(FilterSyntaxError, match="Invalid status") as info:
        parse_filter("status = 'runing' 'unterminated")
    assert info.value.position == 9


def test_nesting_limit() -> None:
    inner = "status = 'failed'"
    assert parse_filter("(" * MAX_DEPTH + inner + ")" * MAX_DEPTH) == Compare(
        attr("status"), "=", "failed"
    )
    with pytest.raises(FilterSyntaxError, match="Too deeply nested") as info:
        parse_filter("(" * (MAX_DEPTH + 1) + inner + ")" * (MAX_DEPTH + 1))
    assert info.value.position == MAX_DEPTH


@pytest.mark.parametrize(
    "text",
    ["(" * 100_000, "not " * 100_000 + "status = 'failed'", "(not " * 60 + "number = 1" + ")" * 60],
)
def test_deep_nesting_is_a_syntax_error_not_a_recursion_error(text: str) -> None:
    with pytest.raises(FilterSyntaxError, match="Too deeply nested"):
        parse_filter(text)


def test_condition_limit() -> None:
    ok = " and ".join(["number = 1"] * MAX_CONDITIONS)
    assert unparse(parse_filter(ok)) == ok
    with pytest.raises(FilterSyntaxError, match="Too many conditions") as info:
        parse_filter(ok + " or number = 2")
    assert info.value.position == len(ok) + 4


def test_value_limit() -> None:
    values = ", ".join(["1"] * MAX_VALUES)
    node = parse_filter(f"number in ({values})")
    assert isinstance(node, Compare) and isinstance(node.value, tuple)
    assert len(node.value) == MAX_VALUES
    with pytest.raises(FilterSyntaxError, match="Too many values"):
        parse_filter(f"number in ({values}, 1)")


SORTS = [
    ("", []),
    ("   ", []),
    ("metrics.rmse", [SortKey(Field("metrics", "rmse"), False)]),
    ("-metrics.rmse", [SortKey(Field("metrics", "rmse"), True)]),
    ("+params.alpha", [SortKey(Field("params", "alpha"), False)]),
    ("- metrics.rmse", [SortKey(Field("metrics", "rmse"), True)]),
    (
        "metrics.rmse desc, started asc",
        [SortKey(Field("metrics", "rmse"), True), SortKey(attr("started"), False)],
    ),
    ("Started DESC", [SortKey(attr("started"), True)]),
    ("-run_id,name", [SortKey(attr("id"), True), SortKey(attr("name"), False)]),
    ('-metrics."my key"', [SortKey(Field("metrics", "my key"), True)]),
    ("tags.team, -attributes.cost", [SortKey(Field("tags", "team")), SortKey(attr("cost"), True)]),
]


@pytest.mark.parametrize(("text", "expected"), SORTS)
def test_parse_sort(text: str, expected: list[SortKey]) -> None:
    assert parse_sort(text) == expected


SORT_ERRORS = [
    ("metrics.a,", "Expected a field to sort by after ',' but the sort ended", 10),
    (",metrics.a", "Expected a field to sort by but found ','", 0),
    ("-metrics.a desc", "Use either '-' or 'desc', not both", 11),
    ("+metrics.a asc", "Use either '+' or 'asc', not both", 11),
    ("metrics.a up", "Expected ',', 'asc' or 'desc' after 'metrics.a' but found 'up'", 10),
    ("metrics.a desc desc", "Expected ',', 'asc' or 'desc' after 'desc' but found 'desc'", 15),
    ("statsu", "Unknown attribute 'statsu'. Did you mean 'status'?", 0),
    ("metrics.a, -metrics.a", "metrics.a appears twice in the sort", 12),
    ("-", "Expected a field to sort by after '-' but the sort ended", 1),
    ("metrics.a < 3", "Expected ',', 'asc' or 'desc'", 10),
]


@pytest.mark.parametrize(("text", "message", "position"), SORT_ERRORS)
def test_parse_sort_errors(text: str, message: str, position: int) -> None:
    with pytest.raises(FilterSyntaxError) as info:
        parse_sort(text)
    assert message in str(info.value)
    assert info.value.position == position


CANONICAL = [
    ("METRICS.rmse<3", "metrics.rmse < 3"),
    ("status == 'FAILED'", "status = 'failed'"),
    ('run_id = "abc"', "id = 'abc'"),
    ('metrics."my key" > 1', "metrics.`my key` > 1"),
    ("metrics.`a.b` > 1", "metrics.a.b > 1"),
    ("metrics.x = 1e-3", "metrics.x = 0.001"),
    ("metrics.x = 1E20", "metrics.x = 1e+20"),
    ("metrics.x = -INF", "metrics.x = -inf"),
    ("params.x = TRUE and tags.y != NULL", "params.x = true and tags.y != null"),
    ('tags.x = "it\'s"', "tags.x = 'it\\'s'"),
    ("tags.x = 'a\\nb'", "tags.x = 'a\\nb'"),
    ("status in ('failed','crashed')", "status in ('failed', 'crashed')"),
    ("status not in ('failed')", "status not in ('failed')"),
    (
        "metrics.a < 1 or metrics.b < 2 and metrics.c < 3",
        "metrics.a < 1 or metrics.b < 2 and metrics.c < 3",
    ),
    (
        "(metrics.a < 1 or metrics.b < 2) and metrics.c < 3",
        "(metrics.a < 1 or metrics.b < 2) and metrics.c < 3",
    ),
    (
        "metrics.a < 1 and (metrics.b < 2 and metrics.c < 3)",
        "metrics.a < 1 and (metrics.b < 2 and metrics.c < 3)",
    ),
    ("((metrics.a < 1) or metrics.b < 2)", "metrics.a < 1 or metrics.b < 2"),
    ("not (metrics.a < 1 and metrics.b < 2)", "not (metrics.a < 1 and metrics.b < 2)"),
    ("not not (metrics.a < 1)", "not not metrics.a < 1"),
    (
        "not metrics.a < 1 or not (metrics.b < 2 or metrics.c < 3)",
        "not metrics.a < 1 or not (metrics.b < 2 or metrics.c < 3)",
    ),
]


@pytest.mark.parametrize(("text", "canonical"), CANONICAL)
def test_unparse_is_canonical(text: str, canonical: str) -> None:
    node = parse_filter(text)
    assert unparse(node) == canonical
    assert str(node) == canonical
    assert parse_filter(canonical) == node


def test_unparse_preserves_structure_of_built_trees() -> None:
    assert unparse(Or(A, And(B, C))) == "metrics.a < 1 or metrics.b < 2 and metrics.c < 3"
    assert unparse(And(A, Or(B, C))) == "metrics.a < 1 and (metrics.b < 2 or metrics.c < 3)"
    assert unparse(Or(A, Or(B, C))) == "metrics.a < 1 or (metrics.b < 2 or metrics.c < 3)"
    assert unparse(Not(Or(A, B))) == "not (metrics.a < 1 or metrics.b < 2)"


def test_unparse_handles_long_chains_without_recursion() -> None:
    node: Node = A
    for _ in range(5000):
        node = And(node, Not(B))
    assert unparse(node).count(" and ") == 5000
    deep: Node = A
    for _ in range(5000):
        deep = Not(deep)
    assert unparse(deep) == "not " * 5000 + "metrics.a < 1"


def test_sort_key_str_round_trips() -> None:
    keys = parse_sort("metrics.rmse desc, started, params.`a b` asc")
    text = ", ".join(map(str, keys))
    assert text == "-metrics.rmse, started, params.`a b`"
    assert parse_sort(text) == keys


@pytest.mark.parametrize(
    ("pattern", "like"),
    [
        ("a*b?c", "a%b_c"),
        ("100%", "100\\%"),
        ("lr_0.1", "lr\\_0.1"),
        ("C:\\tmp", "C:\\\\tmp"),
        ("*", "%"),
        ("", ""),
    ],
)
def test_glob_to_like(pattern: str, like: str) -> None:
    assert glob_to_like(pattern) == like


@pytest.mark.parametrize(
    ("pattern", "like"),
    [("adam", "%adam%"), ("adam*", "adam%"), ("?dam", "_dam"), ("50%", "%50\\%%"), ("", "%%")],
)
def test_tilde_to_like(pattern: str, like: str) -> None:
    assert tilde_to_like(pattern) == like


def _glob_matches(pattern: str, value: str) -> bool:
    """Reference glob: ``*`` any run, ``?`` one character, everything else literal."""
    import re

    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, re.DOTALL) is not None


LIKE_ALPHABET = "ab%_\\*?é"


@given(st.text(LIKE_ALPHABET, max_size=8), st.text(LIKE_ALPHABET.replace("*", ""), max_size=8))
def test_glob_to_like_agrees_with_sqlite(pattern: str, value: str) -> None:
    with sqlite3.connect(":memory:") as db:
        (like,) = db.execute(
            "SELECT ? LIKE ? ESCAPE '\\'", (value, glob_to_like(pattern))
        ).fetchone()
        (tilde,) = db.execute(
            "SELECT ? LIKE ? ESCAPE '\\'", (value, tilde_to_like(pattern))
        ).fetchone()
    assert bool(like) == _glob_matches(pattern, value)
    plain = "*" not in pattern and "?" not in pattern
    assert bool(tilde) == (pattern in value if plain else _glob_matches(pattern, value))


# -- property tests ----------------------------------------------------------------------------

FRAGMENTS = [
    "metrics.",
    "params.",
    "tags.",
    "attributes.",
    "status",
    "started",
    "name",
    "run_id",
    "rmse",
    "x",
    "(",
    ")",
    " and ",
    " or ",
    "not ",
    " in ",
    ",",
    " ",
    "'",
    '"',
    "`",
    "\\",
    "=",
    "==",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "~",
    "!",
    "-",
    "+",
    "1",
    "2.5",
    ".5",
    "e3",
    "-inf",
    "inf",
    "null",
    "true",
    "'failed'",
    "'2024-05-01'",
    "'a*'",
    "desc",
    "asc",
    "é",
    "\n",
    "#",
]


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
@given(st.text() | st.lists(st.sampled_from(FRAGMENTS), max_size=30).map("".join))
def test_arbitrary_text_raises_only_filter_syntax_errors(text: str) -> None:
    for parse in (parse_filter, parse_sort):
        try:
            result = parse(text)
        except FilterSyntaxError as exc:
            assert 0 <= exc.position <= len(text)
            continue
        if parse is parse_filter:
            assert isinstance(result, Compare | And | Or | Not)
            assert parse_filter(unparse(result)) == result
            assert unparse(parse_filter(unparse(result))) == unparse(result)


numbers = st.integers(-(10**12), 10**12) | st.floats(allow_nan=False)
texts = st.text(max_size=12)
keys = st.text(min_size=1, max_size=10)
scalars = numbers | texts | st.booleans()
ORDER = st.sampled_from(["=", "!=", "<", "<=", ">", ">="])
EQ = st.sampled_from(["=", "!="])
IN = st.sampled_from(["in", "not in"])


def _compares(
    field: st.SearchStrategy[Field], values: st.SearchStrategy[object], *, text: bool
) -> st.SearchStrategy[Compare]:
    parts = [
        st.builds(Compare, field, ORDER, values),
        st.builds(Compare, field, EQ, st.none()),
        st.builds(Compare, field, IN, st.lists(values, min_size=1, max_size=4).map(tuple)),
    ]
    if text:
        parts.append(st.builds(Compare, field, st.just("~"), texts))
    return st.one_of(parts)


TEXT_ATTRS = ["pipeline", "name", "id", "executor", "host", "git_commit"]
leaves = st.one_of(
    _compares(st.builds(Field, st.just("metrics"), keys), numbers, text=False),
    _compares(
        st.builds(Field, st.sampled_from(["params", "tags"]), keys), numbers | texts, text=True
    ),
    st.builds(Compare, st.builds(Field, st.sampled_from(["params", "tags"]), keys), EQ, scalars),
    _compares(st.builds(Field, st.just("attr"), st.sampled_from(TEXT_ATTRS)), texts, text=True),
    _compares(st.just(attr("status")), st.sampled_from(STATUSES), text=True),
    _compares(
        st.builds(
            Field,
            st.just("attr"),
            st.sampled_from(["number", "duration", "cost", "started", "ended"]),
        ),
        numbers,
        text=False,
    ),
)
trees = st.recursive(
    leaves,
    lambda sub: st.builds(And, sub, sub) | st.builds(Or, sub, sub) | st.builds(Not, sub),
    max_leaves=12,
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(trees)
def test_generated_trees_round_trip(node: Node) -> None:
    text = unparse(node)
    assert parse_filter(text) == node
    assert unparse(parse_filter(text)) == text


@given(
    st.lists(
        st.builds(
            SortKey,
            st.builds(Field, st.sampled_from(["metrics", "params", "tags"]), keys),
            st.booleans(),
        ),
        max_size=5,
        unique_by=lambda key: key.field,
    )
)
def test_generated_sorts_round_trip(sort_keys: list[SortKey]) -> None:
    assert parse_sort(", ".join(map(str, sort_keys))) == sort_keys
