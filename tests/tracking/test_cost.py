"""The one cost formula and how costs read (issue 12 §2 "one cost computation", §3 costs)."""

from __future__ import annotations

import math

import pytest

from loopml.config import Prices
from loopml.tracking.cost import GB, Usage, format_cost, run_cost

PRICES = Prices(cpu_hour=1.0, gpu_hour=10.0, gb_hour=0.5, currency="EUR")


def test_each_step_pays_what_it_declared() -> None:
    usages = [
        Usage(3600, cpus=2, gpus=1, memory_bytes=4 * GB),
        Usage(1800, cpus=1, memory_bytes=GB),
    ]
    # 1 h × (2 CPU + 1 GPU×10 + 4 GB×0.5) + 0.5 h × (1 CPU + 1 GB×0.5)
    assert run_cost(PRICES, usages, run_wall_s=3600, peak_bytes=64 * GB) == pytest.approx(
        14.0 + 0.75
    )


def test_undeclared_memory_is_charged_once_for_the_run_not_per_step() -> None:
    """Overlapping steps share one process: its peak is billed once, over the run's wall time."""
    parallel = [Usage(3600, cpus=1), Usage(3600, cpus=1)]  # two steps at the same time
    cost = run_cost(PRICES, parallel, run_wall_s=3600, peak_bytes=2 * GB)
    assert cost == pytest.approx(2 * 1.0 + 1 * 2 * 0.5)  # CPUs each; 2 GB once, not twice


def test_an_adhoc_run_is_one_cpu_for_its_duration() -> None:
    assert run_cost(PRICES, [Usage(7200)], run_wall_s=7200, peak_bytes=0) == pytest.approx(2.0)


@pytest.mark.parametrize(
    ("cost", "text"),
    [
        (None, "–"),
        (math.nan, "–"),
        (0.0, "0 EUR"),
        (5.6e-05, "< 0.01 EUR"),
        (0.01, "0.01 EUR"),
        (1.3749, "1.37 EUR"),
        (12345.678, "12,345.68 EUR"),
    ],
)
def test_costs_read_as_money(cost: float | None, text: str) -> None:
    assert format_cost(cost, "EUR") == text


def test_runs_show_prints_the_cost_in_the_project_currency(project) -> None:  # type: ignore[no-untyped-def]
    import json

    from cli_runner import run_cli

    (project / "loopml.toml").write_text(
        '[project]\nname = "t"\n[cost]\ncpu_hour = 0.048\ncurrency = "CHF"\n'
    )
    import loopml

    with loopml.start_run("priced") as run:
        pass
    shown = run_cli("runs", "show", run.id, cwd=project)
    assert shown.returncode == 0, shown.stderr
    assert "< 0.01 CHF" in shown.stdout
    listed = run_cli("runs", cwd=project)
    assert "< 0.01 CHF" in listed.stdout
    raw = json.loads(run_cli("runs", "show", run.id, "--json", cwd=project).stdout)
    assert 0 < raw["cost"] < 0.01  # the exact figure stays available to scripts
