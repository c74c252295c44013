"""The ``loopml`` command: a thin shell over the library.

Subcommands are imported only when used, so ``loopml --help`` stays fast. A
``LoopmlError`` prints ``Error: …`` and exits 1 without a traceback; anything else is a
bug and prints the traceback with a request to report it. ``--debug`` always shows it.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

import click

# command name -> (module, attribute, one-line help shown by `loopml --help`)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "init": ("loopml.cli.init", "init", "Create a project with a working example pipeline."),
    "run": ("loopml.cli.run", "run", "Run a pipeline: tracked, cached, with live progress."),
    "pipelines": (
        "loopml.cli.pipelines",
        "pipelines",
        "List the project's pipelines with their parameters.",
    ),
    "runs": (
        "loopml.cli.runs",
        "runs",
        "List, filter, show, compare, tag, rename and delete runs.",
    ),
    "lineage": (
        "loopml.cli.lineage",
        "lineage",
        "Show what produced an artifact or run, and what used it.",
    ),
    "artifacts": (
        "loopml.cli.artifacts",
        "artifacts",
        "List, inspect and export stored artifacts.",
    ),
    "fsck": (
        "loopml.cli.fsck",
        "fsck",
        "Check the store: every blob present and intact, no dangling rows.",
    ),
    "data": (
        "loopml.cli.data",
        "data",
        "Version datasets; profile, validate and compare them.",
    ),
    "suite": (
        "loopml.cli.evaluation",
        "suite",
        "Define evaluation suites: data, split and metrics fixed once.",
    ),
    "suites": ("loopml.cli.evaluation", "suites", "List evaluation suites."),
    "eval": (
        "loopml.cli.evaluation",
        "eval_",
        "Judge a model on a suite: metrics with confidence intervals, per slice.",
    ),
    "leaderboard": (
        "loopml.cli.evaluation",
        "leaderboard",
        "Rank the models evaluated on a suite, with statistically tied groups.",
    ),
    "compare": (
        "loopml.cli.evaluation",
        "compare",
        "Compare two models on a suite: paired difference, interval, p-value.",
    ),
    "models": (
        "loopml.cli.models",
        "models",
        "List registered models and their aliases; show a model's versions and history.",
    ),
    "register": (
        "loopml.cli.models",
        "register",
        "Register a run's step output as the next version of a model.",
    ),
    "promote": (
        "loopml.cli.models",
        "promote",
        "Move an alias to a model version through its gates, or refuse.",
    ),
    "rollback": (
        "loopml.cli.models",
        "rollback",
        "Give an alias back to the version it held before.",
    ),
    "serve": (
        "loopml.cli.serve",
        "serve",
        "Serve a registered model over HTTP: validated, logged, following its alias.",
    ),
    "server": (
        "loopml.cli.server",
        "server",
        "Serve the REST API and run the scheduler over this project's store.",
    ),
    "export": (
        "loopml.cli.export",
        "export",
        "Export a model version as ONNX or a Docker context.",
    ),
    "predict": (
        "loopml.cli.predict",
        "predict",
        "Score a CSV or Parquet file with a model, in chunks.",
    ),
    "sweep": (
        "loopml.cli.sweep",
        "sweep",
        "Run a pipeline over a grid or sample of parameters; report the best trial.",
    ),
    "token": (
        "loopml.cli.token",
        "token",
        "Create, list and revoke the API tokens of `loopml server`.",
    ),
    "gc": ("loopml.cli.gc", "gc", "Delete blobs no run, cache entry or dataset references."),
    "push": ("loopml.cli.sync", "push", "Copy blobs the remote in loopml.toml lacks to it."),
    "pull": ("loopml.cli.sync", "pull", "Fetch blobs missing here from the remote in loopml.toml."),
    "schedules": (
        "loopml.cli.schedule",
        "schedules",
        "List schedules: next fire, last status, duration and cost.",
    ),
    "schedule": (
        "loopml.cli.schedule",
        "schedule",
        "Add, pause, resume, remove, run or show a pipeline schedule.",
    ),
    "scheduler": (
        "loopml.cli.schedule",
        "scheduler",
        "Run the scheduler in the foreground (fires each due schedule once).",
    ),
    "monitors": (
        "loopml.cli.monitor",
        "monitors",
        "List monitors: the model they watch, last window, status, alerts.",
    ),
    "monitor": (
        "loopml.cli.monitor",
        "monitor",
        "Add, run, show, report or backfill a monitor of a served model.",
    ),
    "ui": (
        "loopml.cli.ui",
        "ui",
        "Open the web UI of this project's store in your browser.",
    ),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module, attr, _ = COMMANDS[name]
        command: click.Command = getattr(importlib.import_module(module), attr)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][2]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def resolve_command(self, ctx: click.Context, args: list[str]) -> Any:
        name = args[0] if args else ""
        if name and not name.startswith("-") and name not in COMMANDS:
            import difflib

            close = difflib.get_close_matches(name, COMMANDS, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise click.UsageError(
                f"No command {name!r}.{hint} Commands: {', '.join(sorted(COMMANDS))}.", ctx
            )
        return super().resolve_command(ctx, args)


@click.group(
    cls=LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.option("--debug", is_flag=True, help="Show full tracebacks for every error.")
@click.version_option(package_name="loopml", prog_name="loopml")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """loopml: pipelines that run, cache and track everything, locally first.

    \b
    Quick start:
      loopml init churn && cd churn
      loopml run train -p alpha=0.5
      loopml runs --filter "metrics.r2 > 0.4" --sort -metrics.r2
    """
    ctx.obj = {"debug": debug}


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI and turn errors into the documented exit codes."""
    debug = "--debug" in (argv if argv is not None else sys.argv[1:]) or bool(
        os.environ.get("LOOPML_DEBUG")
    )
    try:
        cli.main(args=argv, prog_name="loopml", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.Abort as exc:
        if isinstance(exc.__context__, KeyboardInterrupt):
            click.echo("Interrupted (Ctrl-C): stopped.", err=True)
        else:
            click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("Interrupted (Ctrl-C): stopped.", err=True)
        sys.exit(130)
    except Exception as exc:
        from loopml.errors import LoopmlError, StepFailedError

        if isinstance(exc, StepFailedError):
            click.echo(exc.traceback.rstrip(), err=True)
            click.secho(f"Error: {exc}", fg="red", err=True)
            click.echo(f"Details: loopml runs show {exc.run_id[:8]}", err=True)
            sys.exit(1)
        if isinstance(exc, LoopmlError):
            if debug:
                import traceback

                traceback.print_exc()
            click.secho(f"Error: {exc}", fg="red", err=True)
            sys.exit(1)
        import traceback

        traceback.print_exc()
        click.secho(
            "Internal error: this is a bug in loopml. Please report it with the traceback above.",
            fg="red",
            err=True,
        )
        sys.exit(2)
