"""Start-up figures: ``import loopml`` and ``loopml --help`` as whole processes.

Both are timed from outside (spawn to exit) and interleaved with a bare ``python -c pass``
so that a slow moment of the shared machine hits all three alike.
"""

from __future__ import annotations

from pathlib import Path

from _timing import (
    PYTHON,
    Options,
    clean_env,
    fmt_s,
    interleaved,
    judged,
    median,
    report,
    run_process,
)

IMPORT_BUDGET_S = 0.06
HELP_BUDGET_S = 0.2


def _loopml_command() -> list[str]:
    script = Path(PYTHON).parent / "loopml"
    if script.exists():
        return [str(script), "--help"]
    return [PYTHON, "-c", "from loopml.cli.main import main; main()", "--help"]


def bench_startup(opts: Options, workdir: Path) -> None:
    runs = opts.pick(20, 5)
    env = clean_env()
    help_cmd = _loopml_command()
    times = interleaved(
        {
            "bare": lambda i: run_process([PYTHON, "-c", "pass"], cwd=workdir, env=env),
            "import": lambda i: run_process([PYTHON, "-c", "import loopml"], cwd=workdir, env=env),
            "help": lambda i: run_process(help_cmd, cwd=workdir, env=env),
        },
        runs,
        warmup=2,
    )
    bare, imp, hlp = median(times["bare"]), median(times["import"]), median(times["help"])
    added = median([a - b for a, b in zip(times["import"], times["bare"], strict=True)])
    report(
        opts,
        "import loopml",
        f"{fmt_s(imp)} whole process (min {fmt_s(min(times['import']))}); +{fmt_s(added)} over bare "
        f"`python -c pass` ({fmt_s(bare)}), median of {runs}",
        f"≤ {IMPORT_BUDGET_S} s",
        judged(opts, imp <= IMPORT_BUDGET_S, size_dependent=False),
    )
    added_help = median([a - b for a, b in zip(times["help"], times["bare"], strict=True)])
    report(
        opts,
        "loopml --help",
        f"{fmt_s(hlp)} whole process (min {fmt_s(min(times['help']))}); +{fmt_s(added_help)} over bare python, "
        f"median of {runs}",
        f"≤ {HELP_BUDGET_S} s",
        judged(opts, hlp <= HELP_BUDGET_S, size_dependent=False),
    )
