"""``EvaluationResult``: one model judged by one suite, as people look at it.

A DataFrame view (``frame()``, ``slices()``), a terminal table (Rich), a notebook display
and a self-contained HTML report (``to_html``) with the task's charts. The figures come
from the stored result; the charts are drawn from the stored predictions, read on demand.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    from rich.table import Table

    from loopml.evaluation.metrics import Predictions
    from loopml.evaluation.suites import Suite
    from loopml.store.suites import Evaluation
    from loopml.tracking.client import Client


@dataclass(frozen=True)
class Figure:
    """A metric's value with its confidence interval (``low``/``high`` NaN without one)."""

    value: float
    low: float
    high: float

    def __str__(self) -> str:
        if math.isnan(self.low):
            return fmt(self.value)
        return f"{fmt(self.value)} [{fmt(self.low)}, {fmt(self.high)}]"


def fmt(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.4g}"


def _figure(d: dict[str, Any] | None) -> Figure:
    d = d or {}

    def num(key: str) -> float:
        v = d.get(key)
        return math.nan if v is None else float(v)

    return Figure(num("value"), num("low"), num("high"))


class EvaluationResult:
    """The figures of one evaluation (see the module doc)."""

    def __init__(
        self,
        evaluation: Evaluation,
        suite: Suite,
        client: Client,
        figures: dict[str, Any],
        *,
        reused: bool,
    ) -> None:
        self.evaluation = evaluation
        self.suite = suite
        self._client = client
        self._figures = figures
        self.reused = reused  # True: found stored, not computed now
        self._predictions: tuple[np.ndarray, Predictions] | None = None

    @classmethod
    def stored(
        cls, evaluation: Evaluation, suite: Suite, client: Client, *, reused: bool = True
    ) -> EvaluationResult:
        figures = client.load_artifact(evaluation.result_digest)
        return cls(evaluation, suite, client, figures, reused=reused)

    # -- figures --------------------------------------------------------------------------

    @property
    def id(self) -> int:
        return self.evaluation.id

    @property
    def model(self) -> str:
        return self.evaluation.model_label

    @property
    def metrics(self) -> dict[str, Figure]:
        """Each metric's value and interval, by name."""
        return {k: _figure(v) for k, v in self._figures["metrics"].items()}

    @property
    def confidence(self) -> float:
        return float(self._figures["confidence"])

    @property
    def resamples(self) -> int:
        return int(self._figures["resamples"])

    @property
    def worse_slices(self) -> list[tuple[str, str]]:
        """(column, value) of the slices clearly worse than the overall figure."""
        return [(s["column"], s["value"]) for s in self._figures["slices"] if s["worse"]]

    def __getitem__(self, metric: str) -> Figure:
        try:
            return self.metrics[metric]
        except KeyError:
            raise KeyError(
                f"No metric {metric!r}; this evaluation has {', '.join(self.metrics)}."
            ) from None

    def frame(self) -> pd.DataFrame:
        """One row per metric: value, low, high, and which way is better."""
        import pandas as pd

        higher = self._figures.get("higher_is_better", {})
        return pd.DataFrame(
            [
                {
                    "metric": name,
                    "value": f.value,
                    "low": f.low,
                    "high": f.high,
                    "higher_is_better": higher.get(name),
                }
                for name, f in self.metrics.items()
            ]
        ).set_index("metric")

    def slices(self) -> pd.DataFrame:
        """One row per slice value and metric; ``worse`` marks slices clearly worse overall."""
        import pandas as pd

        rows = []
        for s in self._figures["slices"]:
            for name, d in s["metrics"].items():
                f = _figure(d)
                rows.append(
                    {
                        "column": s["column"],
                        "value": s["value"],
                        "rows": s["rows"],
                        "metric": name,
                        "metric_value": f.value,
                        "low": f.low,
                        "high": f.high,
                        "worse": s["worse"] and name == self._figures["primary"],
                    }
                )
        columns = ["column", "value", "rows", "metric", "metric_value", "low", "high", "worse"]
        return pd.DataFrame(rows, columns=columns)

    def predictions(self) -> tuple[np.ndarray, Predictions]:
        """The test rows' truth and the model's stored predictions."""
        if self._predictions is None:
            from loopml.evaluation.evaluate import load_predictions

            data = self._client.load_artifact(self.evaluation.predictions_digest)
            y_true, pred, _ = load_predictions(data)
            self._predictions = (y_true, pred)
        return self._predictions

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "suite": self.suite.label,
            "model": self.model,
            "model_digest": self.evaluation.model_digest,
            "run_id": self.evaluation.run_id,
            "reused": self.reused,
            **{k: v for k, v in self._figures.items() if k != "suite"},
        }

    # -- views ----------------------------------------------------------------------------

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={fmt(v.value)}" for k, v in list(self.metrics.items())[:4])
        return f"<EvaluationResult #{self.id} {self.model} on {self.suite.label}: {shown}>"

    def __rich__(self) -> Table:
        from rich.table import Table
        from rich.text import Text

        level = f"{self.confidence:.0%} interval"
        table = Table(
            title=Text(f"#{self.id} {self.model} on {self.suite.label}"),
            box=None,
            pad_edge=False,
            caption=Text(
                f"{self._figures['test_rows']:,} test rows; {self.resamples:,} bootstrap resamples"
                + ("; stored result (use --force to compute again)" if self.reused else "")
            ),
        )
        table.add_column("metric")
        table.add_column("value", justify="right")
        table.add_column(level, justify="right")
        for name, f in self.metrics.items():
            ci = "–" if math.isnan(f.low) else f"{fmt(f.low)} – {fmt(f.high)}"
            table.add_row(Text(name), fmt(f.value), ci)
        return table

    def slices_table(self) -> Table | None:
        """The primary metric per slice, worst first; None without slices."""
        from rich.table import Table
        from rich.text import Text

        primary = self._figures["primary"]
        rows = [s for s in self._figures["slices"] if primary in s["metrics"]]
        if not rows:
            return None
        higher = self._figures["higher_is_better"].get(primary, True)
        rows.sort(key=lambda s: _sort_key(s["metrics"][primary]["value"], higher))
        table = Table(title=Text(f"{primary} by slice"), box=None, pad_edge=False)
        for column in ("slice", "rows", primary, "interval", ""):
            table.add_column(column, justify="right" if column in ("rows", primary) else "left")
        for s in rows:
            f = _figure(s["metrics"][primary])
            ci = "–" if math.isnan(f.low) else f"{fmt(f.low)} – {fmt(f.high)}"
            table.add_row(
                Text(f"{s['column']}={s['value']}"),
                f"{s['rows']:,}",
                fmt(f.value),
                ci,
                Text("clearly worse", style="bold red") if s["worse"] else "",
            )
        return table

    def _repr_html_(self) -> str:
        from loopml.evaluation.report import result_html

        return result_html(self)

    def to_html(self, path: str | Path) -> Path:
        """Write the report (self-contained HTML: tables and charts, no network)."""
        from loopml.evaluation.report import page_html

        out = Path(path)
        out.write_text(page_html(self), encoding="utf-8")
        return out


def _sort_key(value: float | None, higher: bool) -> float:
    if value is None:
        return math.inf
    return value if higher else -value
