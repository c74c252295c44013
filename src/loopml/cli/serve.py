"""``loopml serve``: a registered model over HTTP (a thin shell over ``loopml.serving``)."""

from __future__ import annotations

import click

from loopml.cli.output import client, console, esc


@click.command()
@click.argument("ref")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    default=8000,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port to listen on (0: any free port; the URL is printed).",
)
@click.option(
    "--split",
    "splits",
    multiple=True,
    metavar="REF=PERCENT",
    help="Send PERCENT of requests to REF (a challenger); repeat for several.",
)
@click.option("--shadow", metavar="REF", help="Also score every request with REF, unanswered.")
@click.option(
    "--runtime",
    type=click.Choice(["auto", "onnx", "native"]),
    default="auto",
    show_default=True,
    help="auto: ONNX Runtime when its answers match the native model's, else native.",
)
@click.option(
    "--token",
    envvar="LOOPML_SERVE_TOKEN",
    metavar="TOKEN",
    help="Require 'Authorization: Bearer TOKEN' (needed off loopback). "
    "Prefer the LOOPML_SERVE_TOKEN variable: arguments show in `ps`.",
)
@click.option(
    "--log-sample",
    default=1.0,
    show_default=True,
    type=click.FloatRange(0, 1),
    help="Share of requests whose predictions are logged to the store (0: none).",
)
@click.option(
    "--max-body-mb",
    default=16.0,
    show_default=True,
    type=click.FloatRange(0.001, 4096),
    help="Largest request body, in MiB (413 above it).",
)
@click.option(
    "--max-rows",
    default=100_000,
    show_default=True,
    type=click.IntRange(1),
    help="Most rows per request (413 above it).",
)
@click.option(
    "--follow-seconds",
    default=2.0,
    show_default=True,
    type=click.FloatRange(0),
    help="How often a served alias is checked for a new version (0: never).",
)
@click.option("--access-log", is_flag=True, help="Log every request (costs throughput).")
@click.option("--no-docs", is_flag=True, help="Do not serve /docs and /openapi.json.")
def serve(
    ref: str,
    host: str,
    port: int,
    splits: tuple[str, ...],
    shadow: str | None,
    runtime: str,
    token: str | None,
    log_sample: float,
    max_body_mb: float,
    max_rows: int,
    follow_seconds: float,
    access_log: bool,
    no_docs: bool,
) -> None:
    """Serve model REF over HTTP: POST rows to /predict, get predictions and ids.

    REF is NAME@ALIAS (followed: a promotion is picked up without a restart, after the new
    version is loaded), NAME@N (fixed) or NAME (the latest version). Input is checked
    against the version's schema: a bad request gets a 422 naming each column and row.
    Predictions are logged (see loopml.predictions) for monitoring; /feedback attaches the
    ground truth.

    \b
    Endpoints: POST /predict, POST /feedback, GET /health, /ready, /metrics (Prometheus),
    /schema, /docs.

    \b
    Examples:
      loopml serve churn@production --port 8000
      curl -X POST localhost:8000/predict -H 'content-type: application/json' \\
           -d '{"records": [{"age": 41, "plan": "pro"}]}'
      curl -X POST localhost:8000/feedback -H 'content-type: application/json' \\
           -d '{"prediction_id": "…", "label": 1}'
      loopml serve churn@production --split churn@staging=10
      loopml serve churn@production --shadow churn@staging
      LOOPML_SERVE_TOKEN=… loopml serve churn@production --host 0.0.0.0
    """
    try:
        import fastapi  # noqa: F401
        import orjson  # noqa: F401
        import prometheus_client  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        raise click.ClickException(
            f"loopml serve needs the serve extra ({exc.name} is not installed): "
            "pip install 'loopml[serve]' (and 'loopml[onnx]' for ONNX Runtime)."
        ) from None
    from loopml.serving.app import create_app, parse_split
    from loopml.serving.bodies import Limits
    from loopml.serving.server import bind, check_bind, run

    check_bind(host, token)
    split = parse_split(list(splits))
    limits = Limits(max_body_bytes=int(max_body_mb * 1024 * 1024), max_rows=max_rows)
    c = client(readonly=False)
    with console().status(f"Loading {esc(ref)}…", spinner="dots"):
        app = create_app(
            ref,
            split=split,
            shadow=shadow,
            runtime=runtime,
            limits=limits,
            log_sample=log_sample,
            follow_seconds=follow_seconds,
            token=token,
            client=c,
            docs=not no_docs,
        )
    sock = bind(host, port)
    state = app.state.serve

    def started(url: str) -> None:
        for v in state.variants + ([state.shadow] if state.shadow else []):
            served = v.served
            why = ""
            if served.runtime == "native" and served.onnx_error and runtime == "auto":
                why = f" (ONNX not used: {served.onnx_error.splitlines()[0][:160]})"
            role = "shadow" if v is state.shadow else f"{v.percent:g} %"
            console().print(
                f"  {esc(v.ref)} → {esc(served.label)} on {served.runtime}{esc(why)} [{role}]"
            )
        console().print(f"Serving on {url}  (POST {url}/predict; docs at {url}/docs)")
        console().file.flush()

    run(app, sock, access_log=access_log, on_started=started)
