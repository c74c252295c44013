"""Monitor rules: a readable TOML file of conditions on a window's statistics.

```toml
[settings]
min_rows = 100          # statistics of a window with fewer predictions are not judged
min_labels = 50         # nor live metrics with fewer labels

[rules]
age_drift = 'psi("age") > 0.2 for 2 windows'
auc = "roc_auc < 0.75 when labels >= 200"
mix = "share(prediction == 1) outside [0.10, 0.30]"
traffic = "rows < 100"

[rules.any_drift]        # the table form also picks the actions of one rule
rule = "psi(*) > 0.25 for 2 windows"
actions = ["notify"]    # of: notify, retrain (default: every action of the monitor)
```

A rule is ``QUANTITY OP NUMBER`` or ``QUANTITY outside|inside [LOW, HIGH]``, optionally
followed by ``for N windows`` (the condition must hold in N consecutive windows, this one
the last) and ``when rows|labels >= N`` (the window must have that many). Quantities:

- ``rows``, ``labels``: predictions in the window, and how many have a label;
  ``latency_p50``, ``latency_p95``, ``latency_p99``: the request latency (ms) its
  predictions saw in ``loopml serve``.
- live metrics (labelled rows): ``accuracy``, ``f1``, ``roc_auc``, ``rmse``, ``mae``, ``r2``;
  estimated ones (confidence-based): ``estimated_accuracy``, ``estimated_f1``,
  ``estimated_roc_auc``.
- per feature, ``NAME("column")`` or ``NAME(*)`` for every feature (the rule fires once and
  names the features that meet it; its value is the worst): ``psi``, ``ks``, ``ks_pvalue``,
  ``wasserstein`` (normed by the reference's standard deviation), ``chi2_pvalue``,
  ``jensen_shannon``, ``drifted`` (1 when the drift verdict says so), ``missing``,
  ``missing_change`` (window minus reference), ``out_of_range``, ``new_categories``.
- predictions: ``share(prediction == VALUE)``, ``quantile(score, Q)``, ``mean(score)``,
  ``drifted_features`` (how many features drifted).

Errors name the file, the line and the problem (``monitors/churn.toml line 7: rule 'auc':
unknown quantity 'roc_acu'. Did you mean 'roc_auc'?``).
"""

from __future__ import annotations

import functools
import math
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from loopml.errors import InvalidParameterError, did_you_mean

SCALARS = ("rows", "labels", "latency_p50", "latency_p95", "latency_p99")
LIVE = ("accuracy", "f1", "roc_auc", "rmse", "mae", "r2")
ESTIMATED = tuple(f"estimated_{m}" for m in ("accuracy", "f1", "roc_auc"))
FEATURE = (
    "psi",
    "ks",
    "ks_pvalue",
    "wasserstein",
    "chi2_pvalue",
    "jensen_shannon",
    "drifted",
    "missing",
    "missing_change",
    "out_of_range",
    "new_categories",
)
PREDICTION = ("share", "quantile", "mean", "drifted_features")
KNOWN = SCALARS + LIVE + ESTIMATED + FEATURE + PREDICTION
ACTIONS = ("notify", "retrain")
#: Statistics where smaller is worse (p-values): ``*`` takes their minimum.
_SMALLER_IS_WORSE = ("ks_pvalue", "chi2_pvalue")
_DRIFT_KEYS = {"wasserstein": "wasserstein_normed"}

_OPS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}
_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_RULE = re.compile(
    rf"""^\s*(?P<term>[A-Za-z_]\w*\s*(?:\((?P<args>[^()]*)\))?)\s*
    (?:(?P<op><=|>=|==|!=|<|>)\s*(?P<value>{_NUMBER})(?!\w)
      |(?P<range>outside|inside)\s*\[\s*(?P<low>{_NUMBER})\s*,\s*(?P<high>{_NUMBER})\s*\])
    (?P<rest>.*)$""",
    re.VERBOSE,
)
_CLAUSE = re.compile(
    r"""\s*(?:(?P<and>and)\s+)?
    (?:for\s+(?P<windows>\d+)\s+windows?
      |when\s+(?P<guard>rows|labels)\s*(?P<op>>=|>)\s*(?P<at_least>\d+))\b""",
    re.VERBOSE,
)

DEFAULT_RULES = """\
# The rules a monitor uses when none are given (loopml monitor add … without --rules).
[settings]
min_rows = 100
min_labels = 50

[rules]
# A major shift of any input (PSI > 0.25, Siddiqi's reading), in two windows in a row.
feature_drift = "psi(*) > 0.25 for 2 windows"
# A feature missing in 10 % more of the rows than in the reference.
missing_values = "missing_change(*) > 0.10"
# Values the reference never had: numbers outside its range, new categories.
out_of_range = "out_of_range(*) > 0.05 for 2 windows"
"""


@dataclass(frozen=True)
class Rule:
    """One parsed rule."""

    name: str
    text: str
    quantity: str
    feature: str | None  # a column, "*" for every feature, None for window quantities
    arg: str | None  # share's class, quantile's level
    test: Callable[[float], bool]
    condition: str  # how the test reads: "> 0.2", "outside [0.1, 0.3]"
    windows: int = 1
    min_rows: int = 0
    min_labels: int = 0
    actions: tuple[str, ...] = ACTIONS
    line: int = 0

    def values(self, stats: Mapping[str, Any], features: Sequence[str]) -> dict[str, float]:
        """``{subject: value}`` of this window: one per feature for ``*``; empty when the
        statistic is not available (too few rows or labels, no score, no such feature)."""
        rows = int(stats.get("rows") or 0)
        labels = int(((stats.get("performance") or {}).get("live") or {}).get("labels") or 0)
        if rows < self.min_rows or labels < self.min_labels:
            return {}
        subjects = list(features) if self.feature == "*" else [self.feature or self.quantity]
        out = {}
        for subject in subjects:
            value = _value(self, stats, subject, rows, labels)
            if value is not None and not math.isnan(value):
                out[subject] = value
        return out

    def holds(self, stats: Mapping[str, Any], features: Sequence[str]) -> dict[str, float]:
        """The subjects (features, or the quantity) whose value meets the condition."""
        return {k: v for k, v in self.values(stats, features).items() if self.test(v)}

    def worst(self, found: Mapping[str, float]) -> float:
        pick = min if self.quantity in _SMALLER_IS_WORSE else max
        return pick(found.values())


def _value(rule: Rule, stats: Mapping[str, Any], subject: str, rows: int, labels: int) -> Any:
    q = rule.quantity
    performance = stats.get("performance") or {}
    prediction = stats.get("prediction") or {}
    if q == "rows":
        return float(rows)
    if q == "labels":
        return float(labels)
    if q.startswith("latency_"):
        return _num((stats.get("latency_ms") or {}).get(q[8:]))
    if q in LIVE:
        return _num(((performance.get("live") or {}).get("metrics") or {}).get(q))
    if q in ESTIMATED:
        metric = ((performance.get("estimated") or {}).get("metrics") or {}).get(q[10:]) or {}
        return _num(metric.get("value"))
    if q == "share":
        shares = prediction.get("shares")  # a regressor has none: no value, no false alarm
        return _num(shares.get(rule.arg, 0.0)) if shares else None
    if q == "quantile":
        return _num((prediction.get("quantiles") or {}).get(rule.arg))
    if q == "mean":
        return _num(prediction.get("mean"))
    columns = {c["column"]: c for c in ((stats.get("drift") or {}).get("columns") or [])}
    if q == "drifted_features":
        return float(sum(1 for c in columns.values() if c.get("drifted")))
    quality = (stats.get("quality") or {}).get(subject) or {}
    if q in ("missing", "out_of_range", "new_categories"):
        return _num(quality.get(q))
    if q == "missing_change":
        now, before = _num(quality.get("missing")), _num(quality.get("missing_reference"))
        return None if now is None or before is None else now - before
    column = columns.get(subject)
    if column is None:
        return None
    if q == "drifted":
        return 1.0 if column.get("drifted") else 0.0
    return _num((column.get("statistics") or {}).get(_DRIFT_KEYS.get(q, q)))


def _num(value: Any) -> float | None:
    if value is None:
        return None
    try:
        return float(value)  # "inf" and "nan" as the store writes them
    except (TypeError, ValueError):
        return None


def rules_of(record: Any) -> list[Rule]:
    """The rules of a stored monitor (``MonitorRecord``), parsed once per rules text."""
    return list(_parsed(record.rules, record.rules_path or "default rules"))


@functools.lru_cache(maxsize=64)
def _parsed(text: str, path: str) -> tuple[Rule, ...]:
    return tuple(parse_rules(text, path=path)[0])


def parse_rules(text: str, *, path: str = "rules") -> tuple[list[Rule], dict[str, Any]]:
    """The rules of a TOML file's text, and its ``[settings]``; errors name line and problem."""
    import tomllib

    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        found = re.search(r"\s*\(at (?:line (\d+), column (\d+)|end of document)\)", str(exc))
        if found is None:
            raise InvalidParameterError(f"{path}: not valid TOML: {exc}.") from None
        problem = str(exc)[: found.start()]
        if found[1] is None:
            line, where = len(text.splitlines()) or 1, "at the end of the file"
        else:
            line, where = int(found[1]), f"column {found[2]}"
        raise InvalidParameterError(
            f"{path} line {line}: not valid TOML: {problem} ({where})."
        ) from None
    unknown = sorted(set(data) - {"settings", "rules"})
    if unknown:
        name = unknown[0]
        what = f"section [{name}]" if isinstance(data[name], dict) else f"key {name!r}"
        raise InvalidParameterError(
            f"{path} line {_line_of(text, (name,))}: unknown {what}; expected the tables "
            "[settings] and [rules] (each rule goes under [rules])."
        )
    for section in ("settings", "rules"):
        if section in data and not isinstance(data[section], dict):
            raise InvalidParameterError(
                f"{path} line {_line_of(text, (section,))}: {section} = {data[section]!r}; "
                f"expected a table: [{section}] on a line of its own, then name = value lines."
            )
    settings = dict(data.get("settings") or {})
    for key, value in settings.items():
        line = _line_of(text, ("settings", key))
        if key not in ("min_rows", "min_labels"):
            raise InvalidParameterError(
                f"{path} line {line}: unknown setting {key!r}; expected min_rows or "
                f"min_labels.{did_you_mean(key, ('min_rows', 'min_labels'))}"
            )
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InvalidParameterError(
                f"{path} line {line}: setting {key} = {value!r}; expected a whole number "
                ">= 0, e.g. 100."
            )
    rules_table = data.get("rules") or {}
    if not rules_table:
        raise InvalidParameterError(
            f"{path}: no rules. Add a [rules] table, e.g. feature_drift = "
            '"psi(*) > 0.25 for 2 windows".'
        )
    rules = []
    for name, spec in rules_table.items():
        line = _line_of(text, ("rules", name))
        where = f"{path} line {line}: rule {name!r}"
        actions: Sequence[str] = ACTIONS
        if isinstance(spec, dict):
            extra = set(spec) - {"rule", "actions"}
            if extra or "rule" not in spec:
                raise InvalidParameterError(
                    f'{where}: a rule table takes rule = "…" and actions = [...]'
                    f"{f', not {sorted(extra)}' if extra else ''}."
                )
            actions = spec.get("actions", list(ACTIONS))
            if not isinstance(actions, list) or any(a not in ACTIONS for a in actions):
                raise InvalidParameterError(
                    f"{where}: actions = {actions!r}; expected a list of {list(ACTIONS)}."
                )
            spec = spec["rule"]
        if not isinstance(spec, str):
            raise InvalidParameterError(
                f'{where}: got {spec!r}; expected the rule as text, e.g. "rows < 100".'
            )
        rules.append(
            parse_rule(
                name,
                spec,
                where=where,
                min_rows=int(settings.get("min_rows", 100)),
                min_labels=int(settings.get("min_labels", 50)),
                actions=tuple(actions),
                line=line,
            )
        )
    return rules, settings


def parse_rule(
    name: str,
    text: str,
    *,
    where: str | None = None,
    min_rows: int = 100,
    min_labels: int = 50,
    actions: tuple[str, ...] = ACTIONS,
    line: int = 0,
) -> Rule:
    """One rule's text; ``where`` prefixes error messages (file, line, rule name)."""
    where = where or f"rule {name!r}"
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}", name):
        raise InvalidParameterError(
            f"{where}: the name must be letters, digits, '_', '.' or '-' (at most 100)."
        )
    m = _RULE.match(text)
    if m is None:
        raise InvalidParameterError(
            f'{where}: cannot read {text!r}; expected QUANTITY OP NUMBER ("rows < 100", '
            "'psi(\"age\") > 0.2') or QUANTITY outside [LOW, HIGH], then optionally "
            "'for N windows' and 'when labels >= N'."
        )
    term = m["term"]
    quantity = term.split("(")[0].strip()
    if quantity not in KNOWN:
        raise InvalidParameterError(
            f"{where}: unknown quantity {quantity!r}.{did_you_mean(quantity, KNOWN)} "
            f"Known: {', '.join(KNOWN)}."
        )
    feature, arg = _arguments(quantity, m["args"], where)
    if m["op"]:
        op, number = m["op"], float(m["value"])
        test = _compare(_OPS[op], number)
        condition = f"{op} {m['value']}"
    else:
        low, high = float(m["low"]), float(m["high"])
        if low > high:
            raise InvalidParameterError(
                f"{where}: range [{m['low']}, {m['high']}] is empty; write [LOW, HIGH]."
            )
        inside = m["range"] == "inside"
        test = _between(low, high, inside)
        condition = f"{m['range']} [{m['low']}, {m['high']}]"
    windows, guards = _clauses(m["rest"], where)
    needs_rows = quantity not in ("rows", "labels")  # latency too: few requests say little
    needs_labels = quantity in LIVE
    return Rule(
        name=name,
        text=text.strip(),
        quantity=quantity,
        feature=feature,
        arg=arg,
        test=test,
        condition=condition,
        windows=windows,
        min_rows=max(guards["rows"], min_rows if needs_rows else 0),
        min_labels=max(guards["labels"], min_labels if needs_labels else 0),
        actions=actions,
        line=line,
    )


def _clauses(rest: str, where: str) -> tuple[int, dict[str, int]]:
    """``for N windows`` and ``when rows|labels >= N`` after the condition, in any order,
    joined by ``and`` or not; anything else is an error."""
    windows = 1
    guards = {"rows": 0, "labels": 0}
    pos = 0
    seen: set[str] = set()
    while True:
        found = _CLAUSE.match(rest, pos)
        if found is None or (not seen and found["and"]):
            break
        kind = found["guard"] or "for"
        if kind in seen:
            raise InvalidParameterError(
                f"{where}: {found.group().strip()!r} repeats a condition given before; write "
                "each of 'for N windows', 'when rows >= N', 'when labels >= N' once."
            )
        seen.add(kind)
        pos = found.end()
        if found["windows"]:
            windows = int(found["windows"])
            if not 1 <= windows <= 1000:
                raise InvalidParameterError(
                    f"{where}: 'for {windows} windows': expected 1 to 1000."
                )
        else:
            guards[found["guard"]] = int(found["at_least"]) + (1 if found["op"] == ">" else 0)
    if rest[pos:].strip():
        raise InvalidParameterError(
            f"{where}: cannot read {rest[pos:].strip()!r} after the condition; expected "
            "'for N windows' and/or 'when rows >= N' / 'when labels >= N'."
        )
    return windows, guards


def _compare(op: Callable[[float, float], bool], number: float) -> Callable[[float], bool]:
    return lambda v: op(v, number)


def _between(low: float, high: float, inside: bool) -> Callable[[float], bool]:
    return lambda v: (low <= v <= high) == inside


def _arguments(quantity: str, args: str | None, where: str) -> tuple[str | None, str | None]:
    if quantity in FEATURE:
        if args is None or not args.strip():
            raise InvalidParameterError(
                f'{where}: {quantity} needs a feature: {quantity}("age"), or {quantity}(*) '
                "for every feature."
            )
        a = args.strip()
        if a == "*":
            return "*", None
        if len(a) >= 2 and a[0] == a[-1] and a[0] in "\"'":
            return a[1:-1], None
        raise InvalidParameterError(
            f'{where}: {quantity}({a}): quote the feature name: {quantity}("{a}").'
        )
    if quantity == "share":
        m = re.fullmatch(r"\s*prediction\s*==\s*(.+?)\s*", args or "")
        if m is None:
            raise InvalidParameterError(
                f"{where}: share({args or ''}): expected share(prediction == CLASS), e.g. "
                "share(prediction == 1)."
            )
        value = m[1]
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        return None, value
    if quantity == "quantile":
        m = re.fullmatch(rf"\s*score\s*,\s*({_NUMBER})\s*", args or "")
        from loopml.monitoring.stats import QUANTILES

        if m is None or float(m[1]) not in QUANTILES:
            raise InvalidParameterError(
                f"{where}: quantile({args or ''}): expected quantile(score, Q) with Q one of "
                f"{list(QUANTILES)}."
            )
        return None, str(float(m[1]))
    if quantity == "mean":
        if (args or "").strip() != "score":
            raise InvalidParameterError(f"{where}: mean({args or ''}): expected mean(score).")
        return None, None
    if args is not None:
        raise InvalidParameterError(f"{where}: {quantity} takes no arguments; write {quantity}.")
    return None, None


def _line_of(text: str, key: tuple[str, ...]) -> int:
    """The 1-based line where the TOML key path ``key`` is set or its table opens (a dotted
    key, or an inline table holding it, counts); 0 when not found."""
    table: tuple[str, ...] = ()
    for number, line in enumerate(text.splitlines(), start=1):
        header = re.match(r"^\s*\[\[?([^\[\]]+)\]\]?", line)
        if header:
            table = _key_parts(header[1])
            if table[: len(key)] == key:
                return number
            continue
        assigned = re.match(r"""^\s*((?:[^=#"']|"[^"]*"|'[^']*')+?)\s*=""", line)
        if assigned:
            path = table + _key_parts(assigned[1])
            if path[: len(key)] == key or key[: len(path)] == path:
                return number
    return 0


def _key_parts(raw: str) -> tuple[str, ...]:
    """``a."b.c"`` → ``("a", "b.c")``: a TOML key's dotted parts, quotes removed."""
    parts: list[str] = []
    part, quote = "", ""
    for ch in raw.strip():
        if quote:
            if ch == quote:
                quote = ""
            else:
                part += ch
        elif ch in "\"'":
            quote = ch
        elif ch == ".":
            parts.append(part.strip())
            part = ""
        else:
            part += ch
    parts.append(part.strip())
    return tuple(parts)
