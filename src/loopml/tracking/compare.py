"""Comparing runs side by side: the rows of ``loopml runs compare`` and of the web UI's
``/runs/compare`` (one implementation, so both show the same rows and flag the same ones).

A comparison is a list of rows ``(name, values)``, one value per run in the order given:
``status``, ``duration``, ``executor`` and ``git_commit``, then every ``params.*``,
``metrics.*`` and ``tags.*`` key any of the runs has (a run without the key has ``None``),
then with a client ``outputs.*``: the digest of each step output. A row *differs* when its
values are not all equal; the UI and the CLI show only those unless asked for all.
Identical output digests are how a run on a cluster is shown to match a local one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from loopml.store.records import RunRecord
    from loopml.tracking.client import Client

#: Fewer runs than this is not a comparison.
MIN_RUNS = 2
KINDS = ("params", "metrics", "tags")

Row = tuple[str, list[Any]]


def load_runs(client: Client, refs: Sequence[str]) -> list[RunRecord]:
    """The records of ``refs`` (ids, id prefixes or ``PIPELINE#N``), in the order given;
    a reference named twice is compared once."""
    records = [client.run_record(ref) for ref in refs]
    return list({r.id: r for r in records}.values())


def comparison_rows(
    records: Sequence[RunRecord],
    *,
    duration: Callable[[float | None], str],
    client: Client | None = None,
) -> list[Row]:
    """Every row of the comparison of ``records`` (see the module doc); ``duration``
    formats the runs' durations (the CLI and the UI write them their own way); with
    ``client``, the step outputs' digests too."""
    rows: list[Row] = [
        ("status", [str(r.status) for r in records]),
        ("duration", [duration(r.duration_s) for r in records]),
        ("executor", [r.executor for r in records]),
        ("git_commit", [(r.git_commit or "")[:12] for r in records]),
    ]
    for kind in KINDS:
        keys = sorted({k for r in records for k in getattr(r, kind)})
        rows += [(f"{kind}.{k}", [getattr(r, kind).get(k) for r in records]) for k in keys]
    if client is not None:
        rows += output_rows(client, records)
    return rows


def output_rows(client: Client, records: Sequence[RunRecord]) -> list[Row]:
    """``outputs.STEP``: each step output's digest (12 characters) in each run."""
    found = [
        {
            link.name: link.digest[:12]
            for link in client.links(run=r.id)
            if link.direction == "output"
        }
        for r in records
    ]
    names = sorted({name for outputs in found for name in outputs})
    return [(f"outputs.{name}", [outputs.get(name) for outputs in found]) for name in names]


def outputs_verdict(rows: Sequence[Row]) -> str | None:
    """One line on the ``outputs.*`` rows: all identical, or which differ (None: no outputs)."""
    outputs = [
        (name.removeprefix("outputs."), values)
        for name, values in rows
        if name.startswith("outputs.")
    ]
    if not outputs:
        return None
    different = [name for name, values in outputs if differs(values)]
    if not different:
        return f"Outputs: identical in every run ({len(outputs)} of {len(outputs)} digests equal)."
    return (
        f"Outputs: {len(different)} of {len(outputs)} differ ({', '.join(different)}); the "
        f"other {len(outputs) - len(different)} are identical."
    )


def differs(values: Sequence[Any]) -> bool:
    """True if the values of a row are not all the same (``None`` counts as a value)."""
    return len({repr(v) for v in values}) > 1


def shared_metrics(records: Sequence[RunRecord]) -> list[str]:
    """Metric keys at least two of ``records`` have, the ones most runs have first (plain
    keys before namespaced ones like ``suite.auc``, interval bounds ``.low``/``.high`` last)."""
    counts = Counter(k for r in records for k in r.metrics)
    keys = [k for k, n in counts.items() if n >= MIN_RUNS]
    return sorted(keys, key=lambda k: (k.endswith((".low", ".high")), -counts[k], "." in k, k))
