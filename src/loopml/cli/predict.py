"""``loopml predict``: score a CSV or Parquet file with a registered model, in chunks.

A thin shell over ``loopml.serving.batch.score_file``.
"""

from __future__ import annotations

from typing import Any

import click

from loopml.cli.output import (
    client,
    console,
    esc,
    fmt_duration,
    json_option,
    print_json,
    with_progress,
)


@click.command()
@click.argument("ref")
@click.argument("input_path", metavar="INPUT", type=click.Path(dir_okay=False))
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False),
    help="Where to write the scored rows: .parquet, .pq or .csv (replaced if it exists).",
)
@click.option(
    "--chunk-rows",
    type=click.IntRange(min=1),
    default=100_000,
    show_default=True,
    help="Rows read, checked and scored at a time; memory grows with it, not with the file.",
)
@click.option(
    "--rejects",
    type=click.Path(dir_okay=False),
    help="Write rows that do not fit the model here (.csv/.parquet, with an error column) "
    "and score the rest; without it the first such row stops the run.",
)
@click.option(
    "--runtime",
    type=click.Choice(["auto", "onnx", "native"]),
    default="auto",
    show_default=True,
    help="auto: ONNX Runtime when the model converts with matching answers, else native.",
)
@click.option(
    "--log-sample",
    type=click.FloatRange(0, 1),
    default=0.01,
    show_default=True,
    help="Share of rows logged to the prediction log (variant batch:REF), for monitoring.",
)
@json_option
def predict(
    ref: str,
    input_path: str,
    output: str,
    chunk_rows: int,
    rejects: str | None,
    runtime: str,
    log_sample: float,
    as_json: bool,
) -> None:
    """Score a CSV or Parquet file with a registered model, in chunks.

    REF names the version (churn@production, churn@4, churn). INPUT is a .csv or .parquet
    file; its rows are checked against the version's input schema and written to OUTPUT
    with their columns, then prediction, proba_<class> for each class of a classifier, and
    prediction_id. Memory stays flat in the file's size. A row that does not fit stops the
    run with its line (CSV) or row (Parquet), column and value, unless --rejects takes it.
    CSV output puts a ' before text cells a spreadsheet would run as formulas. A sample of
    the rows (--log-sample) is logged like the online server's predictions.

    \b
    Examples:
      loopml predict churn@production customers.parquet -o scored.parquet
      loopml predict churn@4 customers.csv -o scored.csv --rejects rejected.csv
      loopml predict churn customers.csv -o scored.parquet --runtime native --json
    """
    from loopml.serving.batch import score_file

    c = client(readonly=log_sample == 0)

    def work(on_progress: Any) -> Any:
        return score_file(
            ref,
            input_path,
            output,
            chunk_rows=chunk_rows,
            rejects=rejects,
            runtime=runtime,
            client=c,
            progress=on_progress,
            log_sample=log_sample,
        )

    result = with_progress(f"Scoring {input_path}", work, show=not as_json)
    if as_json:
        print_json(result.to_dict())
        return
    rejected = ""
    if result.rejects is not None:
        rejected = f", {result.rejected:,} rejected to {esc(result.rejects)}"
    console().print(
        f"Scored {result.scored:,} rows{rejected} with {esc(result.model)} ({result.runtime}) "
        f"in {fmt_duration(result.seconds)} ({result.rows_per_second:,.0f} rows/s); "
        f"wrote {esc(result.output)}"
    )
