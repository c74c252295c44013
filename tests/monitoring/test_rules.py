"""Monitor rules: every quantity of the grammar read from a window's statistics, the
``for``/``when`` clauses and the default guards, ``*`` over the features, and malformed
files, whose errors name the file, the line and the problem (random text included)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loopml.errors import InvalidParameterError
from loopml.monitoring.rules import (
    ACTIONS,
    DEFAULT_RULES,
    FEATURE,
    KNOWN,
    LIVE,
    parse_rule,
    parse_rules,
)

FEATURES = ["age", "plan"]


def _column(name: str, drifted: bool, **statistics: Any) -> dict[str, Any]:
    return {"column": name, "drifted": drifted, "statistics": statistics}


#: One window's statistics, shaped as the engine stores them.
STATS: dict[str, Any] = {
    "latency_ms": {"p50": 4.0, "p95": 12.5, "p99": 40.0, "max": 55.0},
    "rows": 500,
    "drift": {
        "columns": [
            _column(
                "age",
                True,
                psi=0.4,
                ks=0.3,
                ks_pvalue=0.001,
                wasserstein=2.5,
                wasserstein_normed=0.25,
            ),
            _column("plan", False, psi=0.05, chi2_pvalue=0.2, jensen_shannon=0.07),
        ]
    },
    "quality": {
        "age": {
            "missing": 0.15,
            "missing_reference": 0.05,
            "out_of_range": 0.08,
            "new_categories": 0,
        },
        "plan": {"missing": 0.0, "missing_reference": 0.0, "new_categories": 2},
    },
    "prediction": {
        "shares": {"0": 0.7, "1": 0.25, "maybe": 0.05},
        "quantiles": {"0.05": 0.02, "0.25": 0.1, "0.5": 0.3, "0.75": 0.6, "0.95": 0.9},
        "mean": 0.35,
    },
    "performance": {
        "live": {
            "labels": 120,
            "metrics": {
                "accuracy": 0.81,
                "f1": 0.6,
                "roc_auc": 0.77,
                "rmse": 1.5,
                "mae": 1.1,
                "r2": "-inf",
            },
        },
        "estimated": {
            "calibrated": True,
            "rows": 500,
            "metrics": {
                "accuracy": {"value": 0.79, "low": 0.75, "high": 0.83},
                "f1": {"value": 0.55, "low": 0.5, "high": 0.6},
                "roc_auc": {"value": 0.74, "low": 0.7, "high": 0.78},
            },
        },
    },
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("rows > 100", {"rows": 500.0}),
        ("labels >= 100", {"labels": 120.0}),
        ("accuracy < 0.9", {"accuracy": 0.81}),
        ("f1 < 0.9", {"f1": 0.6}),
        ("roc_auc < 0.9", {"roc_auc": 0.77}),
        ("rmse > 1", {"rmse": 1.5}),
        ("mae > 1", {"mae": 1.1}),
        ("r2 < 0", {"r2": float("-inf")}),  # stored as the text "-inf"
        ("estimated_accuracy < 0.8", {"estimated_accuracy": 0.79}),
        ("estimated_f1 < 0.8", {"estimated_f1": 0.55}),
        ("estimated_roc_auc < 0.8", {"estimated_roc_auc": 0.74}),
        ('psi("age") > 0.2', {"age": 0.4}),
        ('ks("age") > 0.2', {"age": 0.3}),
        ('ks_pvalue("age") < 0.05', {"age": 0.001}),
        ('wasserstein("age") > 0.1', {"age": 0.25}),  # normed, not the raw 2.5
        ("chi2_pvalue('plan') > 0.1", {"plan": 0.2}),
        ('jensen_shannon("plan") > 0.05', {"plan": 0.07}),
        ('drifted("age") == 1', {"age": 1.0}),
        ('missing("age") > 0.1', {"age": 0.15}),
        ('missing_change("age") > 0.05', {"age": pytest.approx(0.1)}),
        ('out_of_range("age") > 0.05', {"age": 0.08}),
        ('new_categories("plan") > 0', {"plan": 2.0}),
        ("share(prediction == 1) outside [0.1, 0.2]", {"share": 0.25}),
        ('share(prediction == "maybe") > 0.01', {"share": 0.05}),
        ("quantile(score, 0.5) > 0.2", {"quantile": 0.3}),
        ("quantile(score, .95) > 0.2", {"quantile": 0.9}),
        ("mean(score) > 0.3", {"mean": 0.35}),
        ("drifted_features >= 1", {"drifted_features": 1.0}),
    ],
)
def test_every_quantity_reads_its_value_and_the_condition_holds(
    text: str, expected: dict[str, float]
) -> None:
    rule = parse_rule("r", text, min_rows=0, min_labels=0)
    assert rule.values(STATS, FEATURES) == expected
    assert rule.holds(STATS, FEATURES) == expected


def test_the_grammar_covers_every_known_quantity() -> None:
    assert set(KNOWN) == {
        "rows",
        "labels",
        "latency_p50",
        "latency_p95",
        "latency_p99",
        *LIVE,
        "estimated_accuracy",
        "estimated_f1",
        "estimated_roc_auc",
        *FEATURE,
        "share",
        "quantile",
        "mean",
        "drifted_features",
    }


@pytest.mark.parametrize(
    ("text", "holds"),
    [
        ("accuracy < 0.8", False),
        ("accuracy <= 0.81", True),
        ("accuracy > 0.81", False),
        ("accuracy >= 0.81", True),
        ("accuracy == 0.81", True),
        ("accuracy != 0.81", False),
        ("accuracy outside [0.8, 0.9]", False),
        ("accuracy outside [0.85, 0.9]", True),
        ("accuracy inside [0.8, 0.81]", True),  # bounds belong to the range
        ("accuracy inside [0.82, 0.9]", False),
        ("accuracy outside [0.81, 0.81]", False),
    ],
)
def test_comparisons_and_ranges(text: str, holds: bool) -> None:
    assert bool(parse_rule("r", text).holds(STATS, FEATURES)) is holds


def test_latency_rules_read_the_window_percentiles() -> None:
    assert parse_rule("slow", "latency_p95 > 10").values(STATS, FEATURES) == {"latency_p95": 12.5}
    assert parse_rule("slow", "latency_p99 > 50").holds(STATS, FEATURES) == {}
    assert parse_rule("slow", "latency_p50 inside [1, 5]").holds(STATS, FEATURES)
    no_latency = {**STATS, "latency_ms": {}}  # batch-scored rows have none
    assert parse_rule("slow", "latency_p95 > 0").values(no_latency, FEATURES) == {}


def test_a_missing_statistic_gives_no_value_rather_than_a_false_alarm() -> None:
    stats = {"rows": 500, "performance": {"live": {"labels": 100, "metrics": {}}}}
    for text in ("accuracy < 0.9", 'psi("age") > 0.1', "mean(score) > 0", 'psi("zip") > 0'):
        assert parse_rule("r", text, min_rows=0, min_labels=0).values(stats, FEATURES) == {}
    for unreadable in ("nan", "n/a", [1]):
        stats = {"rows": 500, "prediction": {"mean": unreadable}}
        assert parse_rule("r", "mean(score) > 0").values(stats, FEATURES) == {}


def test_a_class_never_predicted_has_share_zero() -> None:
    assert parse_rule("r", "share(prediction == 7) < 0.01").holds(STATS, FEATURES) == {"share": 0.0}


def test_star_gives_one_value_per_feature_and_worst_is_the_max() -> None:
    rule = parse_rule("r", "psi(*) > 0.01")
    assert rule.feature == "*"
    found = rule.holds(STATS, FEATURES)
    assert found == {"age": 0.4, "plan": 0.05}
    assert rule.worst(found) == 0.4
    assert parse_rule("r", "psi(*) > 0.2").holds(STATS, FEATURES) == {"age": 0.4}


def test_worst_of_a_p_value_is_the_smallest() -> None:
    rule = parse_rule("r", "ks_pvalue(*) < 0.5")
    found = rule.holds(STATS, ["age", "plan"])
    assert found == {"age": 0.001}  # plan has no KS test: it is categorical
    assert rule.worst({"age": 0.001, "b": 0.04}) == 0.001
    assert parse_rule("r", "chi2_pvalue(*) < 1").worst({"a": 0.3, "b": 0.02}) == 0.02


def test_for_n_windows_and_when_guards() -> None:
    rule = parse_rule("r", "roc_auc < 0.8 for 3 windows when labels >= 200")
    assert rule.windows == 3 and rule.min_labels == 200
    assert rule.values(STATS, FEATURES) == {}  # 120 labels: not judged
    assert parse_rule("r", "roc_auc < 0.8 when labels >= 120").holds(STATS, FEATURES) == {
        "roc_auc": 0.77
    }
    assert parse_rule("r", "roc_auc < 0.8 when labels > 120").values(STATS, FEATURES) == {}
    rows = parse_rule("r", "mean(score) > 0 when rows >= 501 and for 2 windows")
    assert (rows.min_rows, rows.windows) == (501, 2)
    assert rows.values(STATS, FEATURES) == {}
    assert parse_rule("r", "rows < 1 for 1 window").windows == 1


def test_default_guards_apply_to_statistics_and_live_metrics_only() -> None:
    rules, settings_ = parse_rules(
        '[rules]\nauc = "roc_auc < 0.8"\nshift = "psi(*) > 0.1"\ntraffic = "rows < 1000"\n'
        'est = "estimated_accuracy < 0.9"\n'
    )
    by_name = {r.name: r for r in rules}
    assert settings_ == {}
    assert (by_name["auc"].min_rows, by_name["auc"].min_labels) == (100, 50)
    assert (by_name["shift"].min_rows, by_name["shift"].min_labels) == (100, 0)
    assert (by_name["traffic"].min_rows, by_name["traffic"].min_labels) == (0, 0)
    assert (by_name["est"].min_rows, by_name["est"].min_labels) == (100, 0)
    few_rows = {**STATS, "rows": 99}
    assert by_name["shift"].values(few_rows, FEATURES) == {}
    assert by_name["traffic"].holds(few_rows, FEATURES) == {"rows": 99.0}
    few_labels = {**STATS, "performance": {"live": {"labels": 49, "metrics": {"roc_auc": 0.5}}}}
    assert by_name["auc"].values(few_labels, FEATURES) == {}


def test_settings_change_the_default_guards() -> None:
    text = '[settings]\nmin_rows = 10\nmin_labels = 500\n\n[rules]\nauc = "roc_auc < 0.8"\n'
    rules, settings_ = parse_rules(text)
    assert settings_ == {"min_rows": 10, "min_labels": 500}
    assert (rules[0].min_rows, rules[0].min_labels) == (10, 500)
    assert rules[0].values(STATS, FEATURES) == {}  # 120 labels < 500


def test_rule_tables_pick_their_actions_and_default_to_all() -> None:
    text = """
[rules]
traffic = "rows < 100"

[rules.drift]
rule = "psi(*) > 0.25 for 2 windows"
actions = ["notify"]

[rules.quiet]
rule = "rows < 1"
actions = []

[rules.all]
rule = "rows < 5"
"""
    rules, _ = parse_rules(text, path="monitors/churn.toml")
    by_name = {r.name: r for r in rules}
    assert by_name["traffic"].actions == ACTIONS
    assert by_name["drift"].actions == ("notify",)
    assert by_name["drift"].windows == 2
    assert by_name["quiet"].actions == ()
    assert by_name["all"].actions == ACTIONS
    assert [by_name[n].line for n in ("traffic", "drift", "quiet", "all")] == [3, 5, 9, 13]


def test_the_default_rules_parse() -> None:
    rules, settings_ = parse_rules(DEFAULT_RULES)
    assert {r.name for r in rules} == {"feature_drift", "missing_values", "out_of_range"}
    assert settings_ == {"min_rows": 100, "min_labels": 50}
    drift = next(r for r in rules if r.name == "feature_drift")
    assert drift.holds(STATS, FEATURES) == {"age": 0.4} and drift.windows == 2


GOOD = '[settings]\nmin_rows = 10\n\n[rules]\ntraffic = "rows < 100"\n'


@pytest.mark.parametrize(
    ("text", "line", "problem"),
    [
        (
            GOOD + 'auc = "roc_acu < 0.8"\n',
            6,
            "unknown quantity 'roc_acu'. Did you mean 'roc_auc'?",
        ),
        (GOOD + 'age = "psi(age) > 0.2"\n', 6, 'quote the feature name: psi("age")'),
        (GOOD + 'age = "psi() > 0.2"\n', 6, "psi needs a feature"),
        (GOOD + 'mix = "share(prediction == 1) outside [0.3, 0.1]"\n', 6, "is empty"),
        (GOOD + 'x = "rows < 100 please"\n', 6, "cannot read 'please' after the condition"),
        (GOOD + 'x = "rows < 100 and"\n', 6, "cannot read 'and' after the condition"),
        (GOOD + 'x = "rows < 100 for 2 windows for 3 windows"\n', 6, "repeats"),
        (GOOD + 'x = "rows < 100 for 0 windows"\n', 6, "expected 1 to 1000"),
        (GOOD + 'x = "rows <"\n', 6, "cannot read 'rows <'"),
        (GOOD + 'x = "rows(1) < 5"\n', 6, "rows takes no arguments"),
        (GOOD + 'x = "quantile(score, 0.3) > 1"\n', 6, "Q one of [0.05, 0.25, 0.5, 0.75, 0.95]"),
        (GOOD + 'x = "mean(prediction) > 1"\n', 6, "expected mean(score)"),
        (GOOD + 'x = "share(prediction = 1) > 1"\n', 6, "expected share(prediction == CLASS)"),
        (GOOD + "x = 5\n", 6, "expected the rule as text"),
        (GOOD + 'x = ["rows < 5"]\n', 6, "expected the rule as text"),
        (GOOD + '"bad name" = "rows < 5"\n', 6, "the name must be letters"),
        (GOOD + "\n[rules.t]\nrule = 'rows < 5'\nactions = ['page']\n", 7, "actions = ['page']"),
        (GOOD + "\n[rules.t]\nrule = 'rows < 5'\nactions = 'notify'\n", 7, "expected a list"),
        (GOOD + "\n[rules.t]\nrules = 'rows < 5'\n", 7, "not ['rules']"),
        (GOOD + "\n[rules.t]\nrule = 'roc_acu < 5'\n", 7, "Did you mean 'roc_auc'?"),
        (GOOD + "x = = 'rows < 5'\n", 6, "not valid TOML: Invalid value (column 5)"),
        (GOOD + "x = 'rows <", 6, 'not valid TOML: Expected "\'" (at the end of the file)'),
        ("[rules]\nx = 'rows < 1'\n\n[rule]\ny = 1\n", 4, "unknown section [rule]"),
        ('auc = "roc_auc < 0.8"\n[rules]\nx = "rows < 1"\n', 1, "unknown key 'auc'"),
        ("settings = 5\n[rules]\nx = 'rows < 1'\n", 1, "settings = 5; expected a table"),
        ('rules = "rows < 1"\n', 1, "rules = 'rows < 1'; expected a table"),
        ("[rules]\nx = 'rows < 1'\n[settings]\nmin_row = 1\n", 4, "unknown setting 'min_row'"),
        ("[rules]\nx = 'rows < 1'\n[settings]\nmin_rows = -1\n", 4, "expected a whole number"),
        ("[rules]\nx = 'rows < 1'\n[settings]\nmin_rows = 2.5\n", 4, "expected a whole number"),
        ("[rules]\nx = 'rows < 1'\n[settings]\nmin_rows = true\n", 4, "expected a whole number"),
        # A rule named like a setting is found under [rules], not under [settings].
        ("[settings]\nmin_rows = 5\n[rules]\nmin_rows = 'rows <'\n", 4, "cannot read"),
        # Dotted keys and inline tables still point at their line.
        ('rules.auc = "roc_acu < 1"\n', 1, "unknown quantity"),
        ('\nrules = { auc = "roc_acu < 1" }\n', 2, "unknown quantity"),
        ('[rules]\n"a.b" = "roc_acu < 1"\n', 2, "unknown quantity"),
    ],
)
def test_malformed_rules_name_the_file_the_line_and_the_problem(
    text: str, line: int, problem: str
) -> None:
    with pytest.raises(InvalidParameterError) as info:
        parse_rules(text, path="monitors/churn.toml")
    message = str(info.value)
    assert message.startswith(f"monitors/churn.toml line {line}: "), message
    assert problem in message


def test_a_file_without_rules_says_how_to_write_one() -> None:
    for text in ("", "[settings]\nmin_rows = 1\n", "[rules]\n"):
        with pytest.raises(InvalidParameterError, match=r"^r\.toml: no rules\. Add a \[rules\]"):
            parse_rules(text, path="r.toml")


def test_an_unknown_quantity_lists_the_known_ones() -> None:
    with pytest.raises(InvalidParameterError, match="Known: rows, labels, latency_p50, .*accurac"):
        parse_rule("r", "acuracy < 1")


_FILE_LINES = st.sampled_from(
    [
        "[rules]", "[settings]", "[rules.t]", "[[rules]]", "[rules.t.u]", "[other]",
        'x = "rows < 1"', "x = 'psi(*) > 0.2 for 2 windows'", "rule = 'rows < 1'",
        "actions = ['notify']", "actions = 'retrain'", "actions = [1]", "min_rows = 5",
        "min_labels = -1", "settings = 1", "rules = 2", "rules.y = 'rows < 2'",
        "t = { rule = 'rows < 1' }", '"a.b" = "labels > 1"', "x = 1", "x = [", "# x = 1",
        "min_rows = 'rows < 5'", "", "=",
    ]
)  # fmt: skip


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.text(max_size=200), st.lists(_FILE_LINES, max_size=10).map("\n".join)))
def test_random_text_is_a_rules_file_or_an_invalid_parameter_error(text: str) -> None:
    try:
        rules, _ = parse_rules(text, path="fuzz.toml")
    except InvalidParameterError as exc:
        assert str(exc).startswith("fuzz.toml")
        assert "fuzz.toml line 0" not in str(exc)  # a line-specific error finds its line
    else:
        assert rules


_RULE_PIECES = st.sampled_from(
    [
        "rows", "psi(", '"age"', "*", ")", "<", ">=", "==", " ", "0.2", "-1e3", "[", "]",
        ",", "outside", "inside", "for", "2", "windows", "when", "labels", "and", "share",
        "prediction", "quantile(score,", "mean(score)", "(", "'", "nan", "1e999",
    ]
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=60), st.lists(_RULE_PIECES, max_size=14).map("".join)))
def test_random_rule_text_parses_or_is_an_invalid_parameter_error(text: str) -> None:
    try:
        rule = parse_rule("fuzz", text)
    except InvalidParameterError as exc:
        assert str(exc).startswith("rule 'fuzz': ")
    else:
        rule.values(STATS, FEATURES)  # a rule that parses can be judged


def test_a_share_rule_has_no_value_for_a_regressor_rather_than_zero() -> None:
    regressor = {"rows": 500, "prediction": {"quantiles": {"0.5": 3.0}, "mean": 3.1}}
    assert parse_rule("mix", "share(prediction == 1) < 0.01").values(regressor, FEATURES) == {}
    assert parse_rule("q", "quantile(score, 0.5) > 2").holds(regressor, FEATURES) == {
        "quantile": 3.0
    }
