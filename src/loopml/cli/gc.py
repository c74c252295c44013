"""``loopml gc``: free the blobs that nothing references any more."""

from __future__ import annotations

import click

from loopml.cli.output import console, esc, fmt_bytes, json_option, print_json, with_progress


def _seconds(text: str) -> float:
    from loopml.errors import InvalidParameterError

    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    raw = text.strip().lower()
    number, unit = (raw[:-1], raw[-1]) if raw and raw[-1] in units else (raw, "s")
    try:
        value = float(number) * units[unit]
    except ValueError:
        value = -1.0
    if not 0 <= value < 10**9:
        raise InvalidParameterError(
            f"--grace: got {text!r}; expected a duration such as 30m, 1h, 2d or 0."
        )
    return value


@click.command()
@click.option("--dry-run", is_flag=True, help="List what would be deleted; delete nothing.")
@click.option(
    "--grace",
    default="1h",
    show_default=True,
    metavar="DURATION",
    help="Keep blobs written or used more recently than this (e.g. 30m, 1h, 2d, 0).",
)
@json_option
def gc(dry_run: bool, grace: str, as_json: bool) -> None:
    """Delete blobs that no run, step-cache entry or (later) dataset or model version uses.

    On S3 (the artifact store or the [remote]) it also aborts multipart uploads older
    than the grace period that never completed, e.g. those of a cut push.

    Delete runs first (`loopml runs delete`) to free what only they used. Safe while other
    processes run pipelines: a blob written or reused during gc is kept.

    \b
    Examples:
      loopml gc --dry-run
      loopml gc --grace 0
    """
    from loopml.tracking.client import Client

    c = Client()
    grace_s = _seconds(grace)
    report = with_progress(
        "deleting blobs",
        lambda progress: c.gc(dry_run=dry_run, grace_s=grace_s, on_progress=progress),
        show=not as_json and not dry_run,
    )
    chosen = [d for d, _ in report.candidates] if dry_run else report.deleted
    if as_json:
        print_json(
            {
                "dry_run": dry_run,
                "digests": chosen,
                "bytes": report.bytes,
                "uploads": report.uploads,
                "warnings": report.warnings,
            }
        )
        return
    out = console()
    for digest in chosen[:50]:
        out.print(f"  {digest}")
    if len(chosen) > 50:
        out.print(f"  … and {len(chosen) - 50} more (--json lists all)")
    verb = "Would delete" if dry_run else "Deleted"
    out.print(
        f"{verb} {len(chosen)} blob{'s' if len(chosen) != 1 else ''} ({fmt_bytes(report.bytes)})."
    )
    if report.uploads:
        n = len(report.uploads)
        aborted = "Would abort" if dry_run else "Aborted"
        out.print(
            f"{aborted} {n} stale multipart upload{'s' if n != 1 else ''} (started more than "
            f"{grace} ago, never completed)."
        )
    for warning in report.warnings:
        out.print(f"Warning: {esc(warning)}")
