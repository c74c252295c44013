"""``loopml export``: a registered version as an ONNX file (with parity and speed) or as a
Docker build context. A thin shell over ``loopml.serving.export``."""

from __future__ import annotations

import sys
from typing import Any

import click

from loopml.cli.output import client, console, esc, fmt_bytes, json_option, print_json

FORMATS = ("onnx", "docker")


@click.command()
@click.argument("ref")
@click.option(
    "--format",
    "fmt",
    required=True,
    type=click.Choice(FORMATS),
    help="onnx: an ONNX model file; docker: a Docker build context folder.",
)
@click.option(
    "--quantize",
    type=click.Choice(["int8"]),
    default=None,
    help="onnx only: write an int8 dynamically quantized model; prints its parity, its change "
    "on the model's suite and its speed.",
)
@click.option(
    "-o", "--output", "out", required=True, type=click.Path(), help="The file or folder to write."
)
@click.option(
    "--allow-mismatch",
    is_flag=True,
    help="onnx only: exit 0 even when the ONNX model does not match the native one.",
)
@click.option(
    "--force", is_flag=True, help="Replace an existing file, or write into a non-empty folder."
)
@json_option
def export(
    ref: str,
    fmt: str,
    quantize: str | None,
    out: str,
    allow_mismatch: bool,
    force: bool,
    as_json: bool,
) -> None:
    """Export a model version as ONNX or as a Docker build context.

    ONNX works for scikit-learn, XGBoost and LightGBM models. The ONNX model is checked
    against the native one on up to 1,000 rows of its training data (rows made up from its
    schema when that data is not in the store), and both are timed on one row and on
    1,000 rows. A mismatch is still written, but the command exits 1 unless
    --allow-mismatch. With --quantize int8 it also prints the change in the main metric of
    the suite the version was evaluated on.

    The Docker context holds a Dockerfile (python:3.11-slim, a non-root user, `loopml serve`
    on port 8000 with the token from LOOPML_SERVE_TOKEN), requirements.txt pinning the
    model's library, and a store holding only this version.

    \b
    Examples:
      loopml export churn@4 --format onnx -o churn.onnx
      loopml export churn@4 --format onnx --quantize int8 -o churn-int8.onnx
      loopml export churn@production --format docker -o serve-image/
    """
    if fmt == "docker":
        if quantize is not None:
            raise click.UsageError("--quantize applies to --format onnx only.")
        from loopml.serving.export import export_docker

        folder = export_docker(ref, out, client=client(), force=force)
        if as_json:
            print_json({"format": "docker", "path": str(folder), "files": _files(folder)})
            return
        console().print(
            f"Wrote a Docker build context to {esc(folder)}/\n"
            f"  docker build -t serve-model {esc(folder)}\n"
            "  docker run -p 8000:8000 -e LOOPML_SERVE_TOKEN=<secret> serve-model"
        )
        return
    from loopml.serving.export import export_onnx

    result = export_onnx(ref, out, quantize=quantize, client=client(), force=force)
    if as_json:
        print_json({"format": "onnx", **result.to_dict()})
    else:
        _print(result)
    if not result.ok:
        message = f"Error: the ONNX model of {result.version} does not match it ({result.parity})."
        hint = " It was written; pass --allow-mismatch to accept it." if not allow_mismatch else ""
        click.secho(message + hint, fg="red", err=True)
        if not allow_mismatch:
            sys.exit(1)


def _files(folder: Any) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.iterdir())


def _print(result: Any) -> None:
    from rich.table import Table

    out = console()
    size = fmt_bytes(result.size)
    if result.quantized:
        size += f" (float model {fmt_bytes(result.float_size)})"
    out.print(f"Wrote {esc(result.path)}: {esc(result.version)} as ONNX, {size}")
    style = "green" if result.parity.ok else "red"
    out.print(f"[{style}]{esc(result.parity)}[/]  [dim]({esc(result.sample)})[/]")
    if result.quantized:
        out.print(f"int8: {esc(result.quantize_note)}")
        out.print(f"int8 {esc(result.quantized_parity)}")
        if result.score is not None:
            out.print(f"int8 change: {esc(result.score)}")
    table = Table(box=None, header_style="bold", pad_edge=False, title_justify="left")
    for column in ("runtime", "1 row", "1,000 rows", "rows/s"):
        table.add_column(column, justify="left" if column == "runtime" else "right")
    native = result.latency[0]
    for t in result.latency:
        speedup = "" if t is native else f" ({native.single_row_ms / t.single_row_ms:.1f}x)"
        table.add_row(
            t.runtime,
            f"{t.single_row_ms:.3f} ms{speedup}",
            f"{t.batch_ms:.2f} ms",
            f"{t.rows_per_s:,.0f}",
        )
    out.print(table)
