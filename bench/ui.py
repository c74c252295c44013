"""loopml web UI benchmark: page loads in headless Chromium over a store with many runs.

Usage::

    .venv/bin/python bench/ui.py                 # 10,000 runs, 7 loads a page
    .venv/bin/python bench/ui.py --runs 100000   # the soak size of R30
    .venv/bin/python bench/ui.py --quick         # 1,000 runs, 2 loads a page (smoke test)

- ``pages``: fills a store with N finished runs (bulk insert, as ``bench/server.py`` does),
  starts the real server (``loopml server --port 0 --no-scheduler``, its own process), and
  opens each page of the UI in headless Chromium (the system's, as the UI tests use):
  ``/runs``, ``/runs`` filtered and sorted by a metric, ``/`` and every other page that is
  built (a page answering "no page" is listed as not built). For each page: first
  contentful paint (``performance.getEntriesByType('paint')``), DOMContentLoaded (from the
  navigation entry), both from the start of navigation, and the HTML's bytes, over several
  loads in one browser tab (the first load fetches the CSS and script, later ones hit the
  cache); median and max. The goal is DESIGN.md §6's: first paint under 1 s.

Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _cli import main as run  # noqa: E402
from _timing import PYTHON, Options, clean_env, fmt_ms, judged, median, report, temp_project  # noqa: E402
from _tracking import _fill  # noqa: E402

PAINT_BUDGET_S = 1.0
FILTER = "metrics.rmse < 3 and params.alpha >= 0.1"
CHROMIUM = os.environ.get("LOOPML_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]
#: Pages besides the runs list; ``{run}`` is a run id. Those not built yet are reported so.
OTHER_PAGES = [
    "/",
    "/runs/{run}",
    "/pipelines",
    "/pipelines/train",
    "/models",
    "/datasets",
    "/evaluations",
]
RUNS: list[int | None] = [None]  # --runs N
TIMING = """() => {
  const nav = performance.getEntriesByType('navigation')[0];
  const fcp = performance.getEntriesByType('paint')
    .find(e => e.name === 'first-contentful-paint');
  return {fcp: fcp ? fcp.startTime : null, dcl: nav.domContentLoadedEventEnd};
}"""


@contextlib.contextmanager
def _server(root: Path) -> Iterator[str]:
    """``loopml server --port 0 --no-scheduler`` over the project; its URL (printed)."""
    main = "from loopml.cli.main import main; main()"  # `loopml` of this Python
    proc = subprocess.Popen(
        [PYTHON, "-c", main, "server", "--port", "0", "--no-scheduler"],
        cwd=root,
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if " on " not in line:
            raise RuntimeError(f"loopml server did not start: {line!r}")
        yield line.split(" on ", 1)[1].split("/api", 1)[0]
    finally:
        proc.terminate()
        proc.communicate(timeout=30)


def _browser() -> Any:
    from playwright.sync_api import sync_playwright

    path = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
    if path is None:
        raise RuntimeError(f"Chromium is missing at {CHROMIUM}: run `make test` (it installs it).")
    return sync_playwright(), path


def _measure(tab: Any, url: str, loads: int) -> tuple[list[float], list[float], int, int]:
    """First paint and DOMContentLoaded (s) of each load, the HTML's bytes, the status."""
    paints, dcls, size, status = [], [], 0, 0
    for _ in range(loads):
        answer = tab.goto(url, wait_until="load")
        status = answer.status
        size = len(answer.body())
        figures = tab.evaluate(TIMING)
        for _ in range(100):  # polled: the page's policy forbids wait_for_function's eval
            if figures["fcp"] is not None:
                break
            time.sleep(0.05)
            figures = tab.evaluate(TIMING)
        if figures["fcp"] is None:
            raise RuntimeError(f"{url}: no first-contentful-paint entry after 5 s")
        paints.append(figures["fcp"] / 1000)
        dcls.append(figures["dcl"] / 1000)
    return paints, dcls, size, status


def bench_pages(opts: Options) -> None:
    from loopml.tracking.client import Client

    n = RUNS[0] or opts.pick(10_000, 1_000)
    loads = opts.pick(7, 2)
    with temp_project("ui-pages") as root:
        client = Client(readonly=False).open()
        facts = _fill(client.metadata, n)
        client.close()
        pages = [
            ("/runs", "/runs"),
            (
                "/runs?filter=…&sort=metrics.rmse",
                f"/runs?filter={quote(FILTER)}&sort=metrics.rmse",
            ),
        ] + [(p.replace("{run}", "ID"), p.replace("{run}", facts[-1][2])) for p in OTHER_PAGES]
        playwright, path = _browser()
        with _server(root) as base, playwright as p:
            # Chromium's singleton socket lives in TMPDIR: a long one (pytest's) is too long.
            short = {**os.environ, "TMPDIR": "/tmp"} if Path("/tmp").is_dir() else None
            browser = p.chromium.launch(executable_path=path, args=CHROMIUM_ARGS, env=short)
            context = browser.new_context(viewport={"width": 1360, "height": 900})
            tab = context.new_page()
            missing = []
            for label, page_path in pages:
                paints, dcls, size, status = _measure(tab, base + page_path, loads)
                if status == 404 and "There is no page at" in tab.content():
                    missing.append(label)
                    continue
                report(
                    opts,
                    f"UI {label} over {n:,} runs, first contentful paint",
                    f"median {fmt_ms(median(paints))}, max {fmt_ms(max(paints))}; "
                    f"DOMContentLoaded median {fmt_ms(median(dcls))}, max {fmt_ms(max(dcls))}; "
                    f"HTML {size / 1024:,.1f} KB, status {status} ({loads} loads, one tab, "
                    "headless Chromium, `loopml server` in its own process, SQLite)",
                    f"first paint < {PAINT_BUDGET_S:g} s",
                    judged(opts, median(paints) < PAINT_BUDGET_S),
                )
            browser.close()
        report(
            opts,
            "UI pages not built yet",
            ", ".join(missing) if missing else "none",
        )


BENCHMARKS = {"pages": bench_pages}


def main(argv: list[str] | None = None) -> int:
    own = argparse.ArgumentParser(add_help=False)
    own.add_argument("--runs", type=int, default=None)
    known, rest = own.parse_known_args(sys.argv[1:] if argv is None else argv)
    if known.runs is not None and known.runs < 1:
        own.error("--runs: expected 1 or more")
    RUNS[0] = known.runs
    return run("bench/ui.py", __doc__.splitlines()[0], BENCHMARKS, rest)


if __name__ == "__main__":
    sys.exit(main())
