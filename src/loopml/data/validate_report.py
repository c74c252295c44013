"""The result of a validation: each violation with its counts and example rows, and views of it.

Everything in a report is plain JSON-able data (``to_dict``/``from_dict``), because the
report is stored next to the dataset version it checked; non-finite floats in observed
values and examples are written as the strings ``"NaN"``, ``"inf"`` and ``"-inf"``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from html import escape
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd
    from rich.table import Table


@dataclass(frozen=True)
class Violation:
    """One expectation that the data broke.

    Args:
        column: the column, or ``None`` for the table-wide expectations (rows, order, key).
        expectation: ``columns``, ``order``, ``rows``, ``key``, ``dtype``, ``missing``,
            ``range`` or ``categories``.
        severity: ``"error"`` or ``"warn"``.
        observed: what the data showed (a number, a string or a list).
        expected: what the schema asks for, in the same form.
        count: how many rows break it (0 for expectations about the table's shape).
        examples: up to 5 offending rows, each ``{"row": <0-based row number>, "values":
            {column: value}}``.
    """

    column: str | None
    expectation: str
    severity: str
    observed: Any
    expected: Any
    count: int
    examples: list[dict[str, Any]] = field(default_factory=list)

    def describe(self) -> str:
        where = f"column {self.column!r}" if self.column is not None else "table"
        rows = f", {self.count:,} row{'s' if self.count != 1 else ''}" if self.count else ""
        shown = ", ".join(str(e["row"]) for e in self.examples)
        at = f" (e.g. row{'s' if len(self.examples) > 1 else ''} {shown})" if shown else ""
        return (
            f"{where}: {self.expectation}: observed {_short(self.observed)}, "
            f"expected {_short(self.expected)}{rows}{at}"
        )


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True)
class ValidationReport:
    """Every violation found, split by severity; ``ok`` when there are no errors."""

    rows: int
    violations: tuple[Violation, ...] = ()

    @property
    def errors(self) -> list[Violation]:
        return [v for v in self.violations if v.severity == "error"]

    @property
    def warnings(self) -> list[Violation]:
        return [v for v in self.violations if v.severity == "warn"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "rows": self.rows,
            "violations": [asdict(v) for v in self.violations],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ValidationReport:
        return cls(rows=data["rows"], violations=tuple(Violation(**v) for v in data["violations"]))

    def frame(self) -> pd.DataFrame:
        """One row per violation: column, expectation, severity, observed, expected, count, rows."""
        import pandas as pd

        return pd.DataFrame(
            [
                {
                    "column": v.column,
                    "expectation": v.expectation,
                    "severity": v.severity,
                    "observed": _short(v.observed),
                    "expected": _short(v.expected),
                    "count": v.count,
                    "example_rows": [e["row"] for e in v.examples],
                }
                for v in self.violations
            ],
            columns=[
                "column",
                "expectation",
                "severity",
                "observed",
                "expected",
                "count",
                "example_rows",
            ],
        )

    def _headline(self) -> str:
        e, w = len(self.errors), len(self.warnings)
        state = "passed" if self.ok else "found errors"
        return (
            f"Validation {state}: {self.rows:,} rows, {e} error{'s' if e != 1 else ''}, "
            f"{w} warning{'s' if w != 1 else ''}"
        )

    def __str__(self) -> str:
        return "\n".join(
            [self._headline(), *(f"  [{v.severity}] {v.describe()}" for v in self.violations)]
        )

    def _repr_html_(self) -> str:
        head = "".join(
            f"<th>{h}</th>"
            for h in (
                "severity",
                "column",
                "expectation",
                "observed",
                "expected",
                "count",
                "examples",
            )
        )
        body = "".join(
            "<tr>"
            + "".join(
                f"<td>{escape(str(cell))}</td>"
                for cell in (
                    v.severity,
                    "" if v.column is None else v.column,
                    v.expectation,
                    _short(v.observed),
                    _short(v.expected),
                    f"{v.count:,}",
                    _examples_text(v),
                )
            )
            + "</tr>"
            for v in self.violations
        )
        return f"<p>{escape(self._headline())}</p><table><tr>{head}</tr>{body}</table>"

    def __rich__(self) -> Table:
        from rich.table import Table

        table = Table(title=self._headline(), title_justify="left")
        for h in ("severity", "column", "expectation", "observed", "expected", "count", "examples"):
            table.add_column(h, justify="right" if h == "count" else "left")
        for v in self.violations:
            table.add_row(
                "[red]error[/red]" if v.severity == "error" else "[yellow]warn[/yellow]",
                _plain("" if v.column is None else v.column),
                v.expectation,
                _plain(_short(v.observed)),
                _plain(_short(v.expected)),
                f"{v.count:,}",
                _plain(_examples_text(v)),
            )
        return table


def _plain(text: str) -> Any:
    """Data shown as itself: ``[bold]`` in a column name is text, not Rich markup."""
    from rich.text import Text

    return Text(text)


def _examples_text(v: Violation) -> str:
    """``row 3: 'x'`` for each example, showing the value of the violation's own column."""
    parts = []
    for e in v.examples:
        values = e.get("values", {})
        if v.column is not None and v.column in values:
            shown = values[v.column]
        elif v.expectation == "key" and isinstance(v.expected, list):
            shown = {k: values.get(k) for k in v.expected}
        else:
            shown = values
        parts.append(f"row {e['row']}: {_short(shown, 40)}")
    return "; ".join(parts)
