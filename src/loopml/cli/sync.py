"""``loopml push`` and ``loopml pull``: blobs to and from the remote named in loopml.toml."""

from __future__ import annotations

from typing import Any

import click

from loopml.cli.output import console, esc, fmt_bytes, json_option, print_json, with_progress
from loopml.config import MAX_REMOTE_JOBS

_DRY_RUN = "List what would be transferred; transfer nothing."
_JOBS = "Blobs transferred at once [default: [remote] jobs in loopml.toml, else 8]."


def _transfer(label: str, work: Any, as_json: bool, dry_run: bool) -> None:
    """Run ``work(progress)`` under a byte progress bar and show its report.

    A cut transfer still shows what moved (``--json`` prints the whole report) before
    its ``Error:``.
    """
    from loopml.errors import RemoteError

    try:
        report = with_progress(label, work, show=not as_json and not dry_run)
    except RemoteError as exc:
        partial = getattr(exc, "report", None)
        if partial is None:
            raise
        if as_json:
            print_json(partial.as_dict())
        raise
    _show(report, as_json)


def _show(report: Any, as_json: bool) -> None:
    """Print the report; a failure becomes ``Error: …`` and exit status 1."""
    from loopml.errors import RemoteError

    if as_json:
        print_json(report.as_dict())
    else:
        out = console()
        moved = report.transferred
        for digest, size in moved[:50]:
            out.print(f"  {digest}  {fmt_bytes(size)}")
        if len(moved) > 50:
            out.print(f"  … and {len(moved) - 50} more (--json lists all)")
        blobs = f"{len(moved)} blob{'s' if len(moved) != 1 else ''}"
        verb = {"push": "Pushed", "pull": "Pulled"}[report.action]
        if report.dry_run:
            verb = f"Would {report.action}"
        where = "to" if report.action == "push" else "from"
        out.print(
            f"{verb} {blobs} ({fmt_bytes(report.bytes)}) {where} {esc(report.remote)}; "
            f"{len(report.skipped)} already in place."
        )
        if report.not_started:
            out.print(
                f"{len(report.not_started)} blob(s) were not started after repeated network "
                f"failures; run `loopml {report.action}` again."
            )
        if report.unavailable:
            out.print(
                f"{len(report.unavailable)} blob(s) are missing or damaged here and were not "
                "pushed; `loopml fsck` lists them (`loopml pull` restores them)."
            )
    if report.failed:
        lines = [f"  {digest}: {message}" for digest, message in report.failed[:20]]
        more = len(report.failed) - 20
        if more > 0:
            lines.append(f"  … and {more} more (--json lists all)")
        n = len(report.failed)
        raise RemoteError(
            f"{n} blob{'s' if n != 1 else ''} could not be {report.action}ed:\n" + "\n".join(lines)
        )


@click.command()
@click.option("--dry-run", is_flag=True, help=_DRY_RUN)
@click.option("--jobs", "-j", type=click.IntRange(1, MAX_REMOTE_JOBS), metavar="N", help=_JOBS)
@json_option
def push(dry_run: bool, jobs: int | None, as_json: bool) -> None:
    """Copy the blobs the remote lacks to the remote in loopml.toml, each verified.

    Only what is missing is sent (a blob the remote holds at the right size is skipped),
    each upload is read back and hashed, and an interrupted push resumes where it stopped
    when run again. The remote is `[remote] url` in loopml.toml (or LOOPML_REMOTE_URL):
    `s3://bucket/prefix` or a folder; endpoint and credentials come from the usual AWS
    variables or profile, or `[remote.options]`.

    \b
    Examples:
      loopml push --dry-run
      loopml push
      loopml push --jobs 16
      LOOPML_REMOTE_URL=/mnt/backup/loopml loopml push --json
    """
    from loopml.tracking.client import Client

    c = Client()
    _transfer(
        "pushing blobs",
        lambda progress: c.push(dry_run=dry_run, jobs=jobs, on_progress=progress),
        as_json,
        dry_run,
    )


@click.command()
@click.option("--dry-run", is_flag=True, help=_DRY_RUN)
@click.option("--jobs", "-j", type=click.IntRange(1, MAX_REMOTE_JOBS), metavar="N", help=_JOBS)
@json_option
def pull(dry_run: bool, jobs: int | None, as_json: bool) -> None:
    """Fetch the blobs that are missing or damaged here from the remote in loopml.toml.

    Every blob the metadata knows is checked; each one fetched is hashed while it
    downloads and installed only if it matches its digest. A blob that is corrupt or
    absent on the remote is named and not installed, and the command exits 1.

    \b
    Examples:
      loopml pull --dry-run
      loopml pull
    """
    from loopml.tracking.client import Client

    c = Client()
    _transfer(
        "pulling blobs",
        lambda progress: c.pull(dry_run=dry_run, jobs=jobs, on_progress=progress),
        as_json,
        dry_run,
    )
