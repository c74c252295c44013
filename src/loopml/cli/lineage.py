"""``loopml lineage REF``: where an artifact came from and where it went; or a run's graph."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import click

from loopml.cli.output import client, console, esc, fmt_time, json_option, print_json
from loopml.errors import InvalidParameterError, NotFoundError


@click.command()
@click.argument("ref")
@json_option
def lineage(ref: str, as_json: bool) -> None:
    """Show lineage of REF: an artifact digest (prefix), a run (id, prefix, PIPELINE#N) or a
    dataset version (NAME@N, NAME@latest).

    For an artifact: the runs and steps that produced it, the inputs they read, and
    what consumed it. For a run: each step with its inputs and outputs. For a dataset
    version: the runs that read it.

    \b
    Examples:
      loopml lineage train#3
      loopml lineage turbines@2
    """
    c = client()
    if "@" in ref:
        _dataset_lineage(c, ref, as_json)
        return
    artifact = None
    artifact_error: Exception | None = None
    if "#" not in ref:
        try:
            artifact = c.artifact(ref)
        except (NotFoundError, InvalidParameterError) as exc:
            artifact_error = exc
    if artifact is not None:
        links = c.links(digest=artifact.digest)
        producers = [lk for lk in links if lk.direction in ("output", "logged")]
        consumers = [lk for lk in links if lk.direction == "input"]
        upstream: list[Any] = []
        for p in producers:
            if p.step_run_id:
                upstream += [
                    lk
                    for lk in c.links(run=p.run_id)
                    if lk.step_run_id == p.step_run_id and lk.direction == "input"
                ]
        if as_json:
            print_json(
                {
                    "artifact": asdict(artifact),
                    "produced_by": [asdict(x) for x in producers],
                    "inputs": [asdict(x) for x in upstream],
                    "consumed_by": [asdict(x) for x in consumers],
                }
            )
            return
        out = console()
        out.print(
            f"[bold]artifact[/] {artifact.digest}  {esc(artifact.type_name)}  ({esc(artifact.materializer)}, {artifact.size} bytes)"
        )
        runs = c.runs_by_id(sorted({x.run_id for x in links} | {x.run_id for x in upstream}))
        for title, items in (
            ("produced by", producers),
            ("from inputs", upstream),
            ("consumed by", consumers),
        ):
            out.print(f"[bold]{title}[/]")
            for x in items:
                run = runs[x.run_id]
                out.print(
                    f"  {esc(run.label)} ({run.short_id}, {fmt_time(run.started_at)})  step {esc(x.step or '–')}  {esc(x.name)}  {x.digest[:12]}"
                )
            if not items:
                out.print("  –")
        return
    try:
        record = c.run_record(ref)
    except (NotFoundError, InvalidParameterError) as exc:
        ambiguous = [
            str(e) for e in (artifact_error, exc) if e is not None and "ambiguous" in str(e)
        ]
        if ambiguous:  # a prefix matching several artifacts or runs: list them
            raise InvalidParameterError(" ".join(ambiguous)) from None
        raise NotFoundError(
            f"No artifact or run matches {ref!r}. Give an artifact digest (prefix of at least 6 hex "
            "characters), a run id, or PIPELINE#N; list them with `loopml artifacts list` / `loopml runs`."
        ) from None
    links = c.links(run=record.id)
    steps = c.steps(record.id)
    if as_json:
        print_json(
            {
                "run": record.label,
                "id": record.id,
                "steps": [
                    {
                        "step": s.name,
                        "status": s.status,
                        "cached": s.cached,
                        "inputs": {
                            lk.name: lk.digest
                            for lk in links
                            if lk.step_run_id == s.id and lk.direction == "input"
                        },
                        "outputs": {
                            lk.name: lk.digest
                            for lk in links
                            if lk.step_run_id == s.id and lk.direction == "output"
                        },
                    }
                    for s in steps
                ],
            }
        )
        return
    from rich.tree import Tree

    tree = Tree(f"[bold]run {esc(record.label)}[/] ({record.short_id})")
    for s in steps:
        branch = tree.add(f"{esc(s.name)} [dim]{s.status}{', cached' if s.cached else ''}[/]")
        for lk in links:
            if lk.step_run_id == s.id:
                arrow = "←" if lk.direction == "input" else "→"
                branch.add(f"{arrow} {esc(lk.name)} {lk.digest[:12]}")
    console().print(tree)


def _dataset_lineage(c: Any, ref: str, as_json: bool) -> None:
    version = c.dataset_version(ref)
    readers = c.links(digest=version.digest)
    readers = [lk for lk in readers if lk.direction == "input"]
    runs = c.runs_by_id(sorted({lk.run_id for lk in readers}))
    if as_json:
        print_json(
            {
                "dataset": version.label,
                "digest": version.digest,
                "read_by": [{**asdict(lk), "run": runs[lk.run_id].label} for lk in readers],
            }
        )
        return
    out = console()
    out.print(
        f"[bold]dataset[/] {esc(version.label)}  {version.digest[:12]}  ({esc(version.source)})"
    )
    out.print("[bold]read by[/]")
    for lk in sorted(readers, key=lambda x: runs[x.run_id].started_at):
        run = runs[lk.run_id]
        out.print(
            f"  {esc(run.label)} ({run.short_id}, {fmt_time(run.started_at)})  step {esc(lk.step or '–')}  as {esc(lk.name)}"
        )
    if not readers:
        out.print("  –")
