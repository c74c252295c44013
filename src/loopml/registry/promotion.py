"""Promotion: a version takes an alias only through its gates; rollback; the audit history.

The gates of ``[models.NAME.gates.ALIAS]`` in ``loopml.toml``:

- ``suite``: the evaluation suite that judges the version (its stored result is reused; a
  version not yet judged is evaluated now);
- ``require``: thresholds on that suite's metrics, ``"roc_auc >= 0.80"`` (``>=``, ``>``,
  ``<=``, ``<``);
- ``beats``: the version must beat the one holding ``beats.alias`` on ``beats.metric`` by
  a paired comparison on the suite, significant at ``beats.confidence``; passes when the
  alias holds nothing yet;
- ``validated_data``: every dataset version it was trained on passed its latest validation;
- ``checks``: ``module:function`` called with the version; ``False`` or an exception fails.

Each gate gives a row (gate, required, observed, passed). A gate that cannot be evaluated (a
missing suite or metric, a check that cannot be imported) fails with the reason, so
``--force --reason`` can still override it in an emergency: the override is recorded.

The alias moves in one transaction that first checks it still holds the version it held
when the gates ran (``store/models.py``), so two racing promotions cannot both win.
"""

from __future__ import annotations

import operator
import re
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from loopml.errors import ConflictError, InvalidParameterError, LoopmlError, NotFoundError
from loopml.registry.versions import who
from loopml.store.models import AliasEvent, ModelVersion, check_alias

if TYPE_CHECKING:
    from rich.table import Table

    from loopml.config import GateSection
    from loopml.tracking.client import Client

_REQUIRE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_.]*)\s*(>=|<=|>|<)\s*([-+0-9.eE]+)\s*$")
_OPS = {">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt}


@dataclass(frozen=True)
class GateResult:
    gate: str  # "require roc_auc >= 0.8", "beats @production on roc_auc", …
    required: str
    observed: str
    passed: bool

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class Promotion:
    """What ``promote`` decided: the gates' rows, and whether the alias moved."""

    model: str
    alias: str
    version: ModelVersion
    previous: int | None
    gates: list[GateResult] = field(default_factory=list)
    dry_run: bool = False
    forced: bool = False
    event: AliasEvent | None = None

    @property
    def passed(self) -> bool:
        return all(g.passed for g in self.gates)

    @property
    def moved(self) -> bool:
        return self.event is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "alias": self.alias,
            "version": self.version.number,
            "previous": self.previous,
            "passed": self.passed,
            "moved": self.moved,
            "dry_run": self.dry_run,
            "forced": self.forced,
            "gates": [g.to_dict() for g in self.gates],
        }

    def __rich__(self) -> Table:
        from rich.table import Table
        from rich.text import Text

        was = "nothing" if self.previous is None else f"@{self.previous}"
        table = Table(
            title=Text(f"{self.version.label} → {self.model}@{self.alias} (now {was})"),
            box=None,
            pad_edge=False,
        )
        for column in ("gate", "required", "observed", ""):
            table.add_column(column)
        for g in self.gates:
            table.add_row(
                Text(g.gate),
                Text(g.required),
                Text(g.observed),
                Text("pass", style="green") if g.passed else Text("FAIL", style="bold red"),
            )
        if not self.gates:
            table.add_row(Text(f"no gates for {self.alias} in loopml.toml"), "", "", "pass")
        return table


class PromotionRefusedError(ConflictError):
    """A gate failed and the promotion was not forced; ``promotion`` holds every gate's row."""

    def __init__(self, message: str, promotion: Promotion) -> None:
        super().__init__(message)
        self.promotion = promotion


def _client(client: Client | None) -> Client:
    from loopml.tracking.client import given_or_default

    return given_or_default(client)


def _version(c: Client, name: str, version: int | str) -> ModelVersion:
    """``4``, ``"4"``, ``"staging"``, ``"@staging"`` or ``"churn@4"`` -> a version of ``name``."""
    text = str(version).strip()
    other, at, rest = text.partition("@")
    if at and other:
        if other != name:
            raise InvalidParameterError(
                f"{text} is a version of model {other!r}, not of {name!r}: an alias of "
                f"{name} can only hold versions of {name}."
            )
        text = rest
    return c.model_version(f"{name}@{text.removeprefix('@')}")


def promote(
    name: str,
    version: int | str,
    *,
    to: str,
    dry_run: bool = False,
    force: bool = False,
    reason: str = "",
    by: str | None = None,
    client: Client | None = None,
) -> Promotion:
    """Check the gates of ``to`` for version ``version`` of ``name`` and move the alias.

    ``dry_run`` only evaluates the gates (``promotion.passed`` says whether it would move).
    ``by`` is who the audit history names (default: this user on this host; the REST API
    passes ``token:NAME``).

    Raises:
        PromotionRefusedError: a gate failed and ``force`` is not set (no alias moved).
        ConflictError: another promotion moved the alias while the gates ran.
        InvalidParameterError: ``force`` without a ``reason``; a bad alias.
    """
    check_alias(to)
    if force and not reason.strip():
        raise InvalidParameterError(
            "A forced promotion needs a reason for the audit history: --reason 'hotfix for …'."
        )
    c = _client(client)
    candidate = _version(c, name, version)
    previous = c.model_aliases(name).get(to)
    section = c.settings.config.models.get(name)
    gate = section.gates.get(to) if section is not None else None
    promotion = Promotion(name, to, candidate, previous, dry_run=dry_run)
    if gate is not None:
        promotion.gates = evaluate_gates(c, candidate, gate)
    if dry_run:
        return promotion
    if not promotion.passed and not force:
        failed = [g.gate for g in promotion.gates if not g.passed]
        raise PromotionRefusedError(
            f"{candidate.label} did not pass {len(failed)} gate(s) of {name}@{to}: "
            f"{'; '.join(failed)}. Nothing moved. Fix it, or override with --force --reason.",
            promotion,
        )
    promotion.forced = force and not promotion.passed
    promotion.event = c.open().metadata.models.move_alias(
        name,
        to,
        candidate.number,
        expected=previous,
        by=by or who(),
        action="promote",
        at=time.time(),
        forced=promotion.forced,
        reason=reason,
        gates=[g.to_dict() for g in promotion.gates],
    )
    return promotion


def rollback(
    name: str,
    *,
    alias: str,
    reason: str = "",
    by: str | None = None,
    client: Client | None = None,
) -> AliasEvent:
    """Give ``alias`` back to the version it held before the promotion that gave it its
    current holder (no gates: going back is always allowed, and recorded).

    Raises:
        NotFoundError: the alias holds nothing, or nothing held it before.
        ConflictError: another move happened meanwhile.
    """
    check_alias(alias)
    c = _client(client)
    current = c.model_aliases(name).get(alias)
    if current is None:
        raise NotFoundError(f"{name}@{alias} holds no version: nothing to roll back.")
    made = [
        e for e in c.alias_history(name, alias) if e.to_number == current and e.action == "promote"
    ]
    previous = made[-1].from_number if made else None
    if previous is None:
        raise NotFoundError(
            f"{name}@{alias} has held only {name}@{current}: there is no earlier version to "
            "go back to."
        )
    return c.open().metadata.models.move_alias(
        name,
        alias,
        previous,
        expected=current,
        by=by or who(),
        action="rollback",
        at=time.time(),
        reason=reason,
    )


# -- the gates ----------------------------------------------------------------------------


def evaluate_gates(c: Client, version: ModelVersion, gate: GateSection) -> list[GateResult]:
    """Every configured gate's row, in the order of the table above."""
    rows: list[GateResult] = []
    result = None
    judged_on = None
    if gate.suite is not None:
        result, judged_on, row = _judge(c, version, gate.suite)
        rows.append(row)
    for text in gate.require:
        rows.append(_require(text, result, gate.suite))
    if gate.beats is not None:
        rows.append(_beats(c, version, gate, judged_on))
    if gate.validated_data:
        rows.append(_validated(c, version))
    if gate.checks:
        from loopml.pipelines.discovery import project_on_path

        project_on_path(c.settings.root)  # checks import from the project, as pipelines do
    for path in gate.checks:
        rows.append(_check(path, version))
    return rows


def _judge(c: Client, version: ModelVersion, suite_ref: str) -> tuple[Any, Any, GateResult]:
    from loopml.evaluation.suites import suite

    try:
        judged_on = suite(suite_ref, client=c)
        result = judged_on.evaluate(version.digest, label=version.label)
    except LoopmlError as exc:
        return None, None, GateResult(f"suite {suite_ref}", "evaluated", str(exc), False)
    shown = "reused" if result.reused else "evaluated now"
    return (
        result,
        judged_on,
        GateResult(
            f"suite {suite_ref}", "evaluated", f"#{result.id} on {judged_on.label} ({shown})", True
        ),
    )


def _require(text: str, result: Any, suite_ref: str | None) -> GateResult:
    parsed = _REQUIRE.match(text)
    if parsed is None:
        return GateResult(f"require {text}", text, "not a threshold: write 'metric >= 0.8'", False)
    metric, op, bound = parsed.group(1), parsed.group(2), float(parsed.group(3))
    if result is None:
        why = "no suite in this gate" if suite_ref is None else "the suite was not evaluated"
        return GateResult(f"require {metric}", f"{op} {bound:g}", why, False)
    figures = result.metrics
    if metric not in figures:
        return GateResult(
            f"require {metric}",
            f"{op} {bound:g}",
            f"suite has no metric {metric!r} (it has {', '.join(figures)})",
            False,
        )
    value = figures[metric].value
    return GateResult(
        f"require {metric}", f"{op} {bound:g}", f"{value:.4g}", bool(_OPS[op](value, bound))
    )


def _beats(c: Client, version: ModelVersion, gate: GateSection, judged_on: Any) -> GateResult:
    assert gate.beats is not None
    beats = gate.beats
    name = f"beats @{beats.alias} on {beats.metric}"
    required = f"better at {beats.confidence:.0%}"
    holder = c.model_aliases(version.name).get(beats.alias)
    if holder is None:
        return GateResult(name, required, f"@{beats.alias} holds nothing yet", True)
    if holder == version.number:
        return GateResult(name, required, f"{version.label} is the holder", True)
    if judged_on is None:
        return GateResult(name, required, "no suite in this gate to compare on", False)
    try:
        held = c.model_version(f"{version.name}@{holder}")
        comparison = judged_on.compare(version.digest, held.digest, confidence=beats.confidence)
        d = comparison[beats.metric]
    except (LoopmlError, KeyError) as exc:
        return GateResult(name, required, str(exc), False)
    observed = f"{d.diff:+.4g} vs @{holder} (p={d.p_value:.3g})"
    return GateResult(name, required, observed, d.verdict == "a")


def _validated(c: Client, version: ModelVersion) -> GateResult:
    if not version.datasets:
        return GateResult("validated data", "passed validation", "no training data recorded", False)
    found = c.dataset_validations([c.dataset_version(label) for label in version.datasets])
    bad = []
    for label in version.datasets:
        checks = found.get(label, [])
        if not checks:
            bad.append(f"{label} never validated")
        elif not checks[-1].ok:
            bad.append(f"{label}: {checks[-1].errors} errors")
    observed = "; ".join(bad) if bad else ", ".join(version.datasets) + " passed"
    return GateResult("validated data", "passed validation", observed, not bad)


def _check(path: str, version: ModelVersion) -> GateResult:
    from loopml.evaluation.suites import resolve_metric

    try:
        fn = resolve_metric(path, "Check")  # the same import rule as custom metrics
        outcome = fn(version)
    except Exception as exc:  # a user's check: any failure fails the gate, with its text
        return GateResult(f"check {path}", "True", f"{type(exc).__name__}: {exc}", False)
    return GateResult(f"check {path}", "True", repr(outcome), outcome is not False)
