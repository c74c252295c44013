"""``/datasets`` and ``/datasets/<name>``: versions, the stored profile of one, its
validations, and the drift between two versions (what ``loopml data diff`` prints).

The profile is the one stored when the version was added (``loopml data show``): nothing
is profiled per request. Drift (``loopml.data.drift.drift``) needs both tables whole, as
the CLI does; so that a large dataset never blocks a page, the report is computed on a
small worker pool, remembered by the two digests (versions never change), and the page
waits for it at most ``DIFF_WAIT_S`` seconds — past that it says the report is being
computed and reloads itself. Versions larger than ``MAX_DIFF_BYTES`` together are not
compared here: the page gives the ``loopml data diff`` command instead.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Query, Request
from markupsafe import Markup
from starlette.responses import HTMLResponse

from loopml.data.datasets import TABULAR
from loopml.server.api.limits import Name
from loopml.server.ui import page_router
from loopml.server.ui.render import render

if TYPE_CHECKING:
    from loopml.store.datasets import DatasetVersion
    from loopml.tracking.client import Client

router = page_router()

#: Runs named per version in a table cell; the rest are counted.
MAX_READERS = 6
#: Seconds a page waits for a drift report before answering "being computed".
DIFF_WAIT_S = 15.0
#: Versions larger than this together are compared with the CLI, not in the server.
MAX_DIFF_BYTES = 512 * 1024**2
#: Drift reports kept in memory (by the two digests).
KEPT_REPORTS = 32


@dataclass(frozen=True, slots=True)
class Readers:
    """The runs that read a version: the first few as records, and how many in all."""

    shown: list[Any]
    total: int


def _readers(client: Client, by_digest: dict[str, list[str]]) -> dict[str, Readers]:
    """Per digest, the newest runs that read it (labels need the run records)."""
    wanted = {d: list(reversed(ids))[:MAX_READERS] for d, ids in by_digest.items()}
    records = client.runs_by_id(sorted({i for ids in wanted.values() for i in ids}))
    return {
        d: Readers([records[i] for i in wanted[d] if i in records], len(by_digest[d]))
        for d in by_digest
    }


@router.get("/datasets")
def datasets_page(request: Request) -> HTMLResponse:
    client: Client = request.app.state.loopml.client
    rows = []
    for latest in client.datasets():
        versions = client.dataset_versions(latest.name)
        by_digest = client.dataset_readers(versions)
        newest_first: list[str] = []  # the newest version's readers first, each run once
        for v in reversed(versions):
            for run_id in reversed(by_digest.get(v.digest, [])):
                if run_id not in newest_first:
                    newest_first.append(run_id)
        rows.append(
            {
                "latest": latest,
                "versions": len(versions),
                "readers": _readers(client, {"all": list(reversed(newest_first))})["all"],
            }
        )
    return render(request, "datasets/list.html", title="Datasets", datasets=rows)


@router.get("/datasets/{name}")
def dataset_page(
    request: Request,
    name: Name,
    version: Annotated[int | None, Query(ge=1, le=10**12)] = None,
    diff: Annotated[int | None, Query(ge=1, le=10**12)] = None,
    against: Annotated[int | None, Query(ge=1, le=10**12)] = None,
) -> HTMLResponse:
    client: Client = request.app.state.loopml.client
    versions = client.dataset_versions(name)
    if not versions:
        client.dataset_version(name)  # raises the "no dataset named …" message (404)
    by_number = {v.number: v for v in versions}
    selected = client.dataset_version(f"{name}@{version}") if version else versions[-1]
    readers = _readers(client, client.dataset_readers(versions))
    checks = client.dataset_validations(versions)
    context: dict[str, Any] = {
        "name": name,
        "versions": list(reversed(versions)),
        "selected": selected,
        "readers": readers,
        "checks": checks,
        "diff": diff,
        "against": against,
        "tabular": [v.number for v in versions if v.format in TABULAR],
    }
    status = 200
    if diff is not None or against is not None:
        context.update(_diff(client, by_number, name, diff, against))
        status = context.pop("status")
    else:
        context.update(_profile(client, selected))
        context["violations"] = _violations(client, checks.get(selected.label, []))
    title = f"{name} · diff" if "report" in context else name
    return render(request, "datasets/detail.html", title=title, status_code=status, **context)


def _profile(client: Client, v: DatasetVersion) -> dict[str, Any]:
    """The stored profile as the HTML table of ``loopml data show --html``, or why none."""
    if v.profile_digest is None:
        if v.format in TABULAR:
            why = "it was added with --no-profile; `loopml data show` computes one"
        else:
            why = f"it is a {v.kind} of format {v.format}, not a table"
        return {"profile": None, "no_profile": why}
    from loopml.data.datasets import stored_profile
    from loopml.data.profile_view import html_table

    profile = stored_profile(v.label, client)
    return {"profile": Markup(html_table(profile)), "no_profile": None}


def _violations(client: Client, checks: list[Any]) -> list[Any]:
    """What the newest validation of the version found (its stored report)."""
    if not checks or checks[-1].ok and not checks[-1].warnings:
        return []
    from loopml.data.validate_report import ValidationReport

    report = ValidationReport.from_dict(client.load_artifact(checks[-1].report_digest))
    return list(report.violations)


def _diff(
    client: Client,
    by_number: dict[int, DatasetVersion],
    name: str,
    diff: int | None,
    against: int | None,
) -> dict[str, Any]:
    """The drift report of @diff (reference) → @against (current), or why not (yet)."""
    out: dict[str, Any] = {"report": None, "problem": None, "computing": False, "status": 200}
    missing = [n for n in (diff, against) if n is None or n not in by_number]
    if missing:
        known = ", ".join(f"@{n}" for n in by_number)
        out.update(
            problem=f"Choose two versions of {name} to compare (it has {known}).", status=400
        )
        return out
    assert diff is not None and against is not None
    reference, current = by_number[diff], by_number[against]
    out.update(reference=reference, current=current)
    command = f"loopml data diff {reference.label} {current.label} --html drift.html"
    out["command"] = command
    not_tables = [v.label for v in (reference, current) if v.format not in TABULAR]
    if not_tables:
        out.update(
            problem=f"Only tables (CSV, Parquet, JSON lines) can be compared: "
            f"{', '.join(not_tables)} is not one.",
            status=400,
        )
        return out
    if reference.size + current.size > MAX_DIFF_BYTES:
        out.update(
            problem=f"These versions are too large together to compare in the server "
            f"(more than {MAX_DIFF_BYTES // 1024**2} MiB). Run `{command}` on a machine "
            "with the store, and open drift.html.",
            status=413,
        )
        return out
    future = _drift_future(client, reference, current)
    try:
        report = future.result(timeout=DIFF_WAIT_S)
    except FutureTimeout:
        out.update(computing=True, status=202)
        return out
    except Exception as exc:  # the report failed: say why, and let a reload try again
        _forget(reference, current)
        out.update(problem=f"Could not compare the versions: {exc}", status=409)
        return out
    from loopml.data.drift_html import report_html

    out["report"] = Markup(report_html(report))
    out["drifted"] = report.drifted
    return out


_lock = threading.Lock()
_reports: OrderedDict[tuple[str, str], Future[Any]] = OrderedDict()
_pool: list[ThreadPoolExecutor] = []


def _drift_future(
    client: Client, reference: DatasetVersion, current: DatasetVersion
) -> Future[Any]:
    """The drift report of two versions, computing (once) or computed; versions never change."""
    key = (reference.digest, current.digest)
    with _lock:
        found = _reports.get(key)
        if found is not None:
            _reports.move_to_end(key)
            return found
        if not _pool:  # made on first use: importing the module starts no thread
            _pool.append(ThreadPoolExecutor(2, thread_name_prefix="loopml-ui-drift"))
        future = _pool[0].submit(_compute_drift, client, reference.digest, current.digest)
        _reports[key] = future
        while len(_reports) > KEPT_REPORTS:
            oldest = next(iter(_reports))
            if not _reports[oldest].done():
                break
            del _reports[oldest]
        return future


def _forget(reference: DatasetVersion, current: DatasetVersion) -> None:
    with _lock:
        _reports.pop((reference.digest, current.digest), None)


def _compute_drift(client: Client, reference: str, current: str) -> Any:
    """``loopml data diff`` on two stored tables (their verified files)."""
    from loopml.data.drift import drift

    return drift(Path(client.load_artifact(reference)), Path(client.load_artifact(current)))
