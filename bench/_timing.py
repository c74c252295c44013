"""Shared helpers for the benchmarks: clocks, statistics, processes, temp projects, output.

Every figure is printed as one line ``<name>: <value> (budget <rule>) MET|MISSED``; a
figure without a budget (context only) ends in ``(info)``. Budgets are never asserted:
the script prints what it measured and leaves the judgement to whoever reads it.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PYTHON = sys.executable


@dataclass
class Options:
    """Sizes and repeat counts; ``--quick`` shrinks them about 10x for the smoke test."""

    quick: bool = False
    lines: list[str] = field(default_factory=list)

    def pick(self, full: Any, quick: Any) -> Any:
        return quick if self.quick else full


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile ``q`` in [0, 100] (numpy's default method)."""
    data = sorted(values)
    if len(data) == 1:
        return data[0]
    pos = (len(data) - 1) * q / 100
    low = int(pos)
    high = min(low + 1, len(data) - 1)
    return data[low] + (data[high] - data[low]) * (pos - low)


def time_call(fn: Callable[[], Any]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def repeat(fn: Callable[[], Any], times: int, *, warmup: int = 0) -> list[float]:
    """Seconds taken by each of ``times`` calls of ``fn``, after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    return [time_call(fn) for _ in range(times)]


_pycache: list[str] = []


def pycache_prefix() -> str:
    """A private bytecode cache for child processes, removed when the benchmark exits.

    Installed packages ship compiled bytecode, so users never pay for compiling loopml.
    With ``PYTHONDONTWRITEBYTECODE`` set (as on some CI machines) every child would
    recompile loopml's sources (~40 ms), so children write their bytecode here instead:
    next to nothing in the repository changes, and warm-up runs fill the cache.
    """
    if not _pycache:
        _pycache.append(tempfile.mkdtemp(prefix="loopml-bench-pycache-"))
        atexit.register(shutil.rmtree, _pycache[0], True)
    return _pycache[0]


def clean_env(**extra: str) -> dict[str, str]:
    """The environment for child processes: no inherited loopml store settings, bytecode cached."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPML_")}
    env.pop("PYTHONSTARTUP", None)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = pycache_prefix()
    env.update(extra)
    return env


def run_process(
    cmd: Sequence[str],
    *,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 600,
) -> float:
    """Wall seconds of one whole child process, start to exit; raises if it fails."""
    started = time.perf_counter()
    done = subprocess.run(
        list(cmd),
        cwd=cwd,
        env=env if env is not None else clean_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        timeout=timeout,
        check=False,
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        tail = done.stderr.decode("utf-8", "replace")[-2000:]
        raise RuntimeError(f"{' '.join(cmd)} exited {done.returncode}:\n{tail}")
    return elapsed


def interleaved(
    commands: dict[str, Callable[[int], float]], runs: int, *, warmup: int = 1
) -> dict[str, list[float]]:
    """Time several process commands in turn (A B C A B C …) so machine drift hits all alike.

    Each value is called with the run index (so a command can vary its arguments) and
    returns the seconds it took.
    """
    for i in range(warmup):
        for fn in commands.values():
            fn(-1 - i)
    times: dict[str, list[float]] = {name: [] for name in commands}
    for i in range(runs):
        for name, fn in commands.items():
            times[name].append(fn(i))
    return times


@contextlib.contextmanager
def temp_project(name: str = "bench") -> Iterator[Path]:
    """A fresh project folder (``loopml.toml``, store in ``.loopml/``) as the working directory.

    Store environment variables are cleared for the block so the project's own store is
    used, and the default-client cache is emptied so no earlier project's client is reused.
    """
    root = Path(tempfile.mkdtemp(prefix=f"loopml-bench-{name}-"))
    (root / "loopml.toml").write_text(f'[project]\nname = "{name}"\n', encoding="utf-8")
    saved_env = {
        k: os.environ.pop(k)
        for k in list(os.environ)
        if k in ("LOOPML_STORE_URI", "LOOPML_ARTIFACTS_URI")
    }
    old_cwd = Path.cwd()
    os.chdir(root)
    sys.path.insert(0, str(root))
    try:
        yield root
    finally:
        os.chdir(old_cwd)
        with contextlib.suppress(ValueError):
            sys.path.remove(str(root))
        os.environ.update(saved_env)
        _forget_clients()
        shutil.rmtree(root, ignore_errors=True)


def _forget_clients() -> None:
    from loopml.tracking import client as client_module

    for client in list(client_module._clients.values()):
        with contextlib.suppress(Exception):
            client.close()
    client_module._clients.clear()


def fmt_s(seconds: float) -> str:
    if seconds >= 10:
        return f"{seconds:.1f} s"
    if seconds >= 1:
        return f"{seconds:.2f} s"
    return f"{seconds:.3f} s"


def fmt_ms(seconds: float) -> str:
    ms = seconds * 1000
    return f"{ms:.1f} ms" if ms >= 1 else f"{ms:.2f} ms"


def report(
    opts: Options, name: str, value: str, budget: str | None = None, met: bool | None = None
) -> None:
    """Print one figure line and keep it for the summary.

    ``budget`` is the rule from DESIGN.md §6; ``met`` decides MET/MISSED. In ``--quick``
    mode sizes are not the budget's, so size-dependent verdicts print ``n/a (--quick)``.
    """
    if budget is None:
        verdict = "(info)"
    elif met is None:
        verdict = f"(budget {budget}) n/a (--quick)"
    else:
        verdict = f"(budget {budget}) {'MET' if met else 'MISSED'}"
    line = f"{name}: {value} {verdict}"
    opts.lines.append(line)
    print(line, flush=True)


def judged(opts: Options, met: bool, *, size_dependent: bool = True) -> bool | None:
    """The verdict to print: None (n/a) for size-dependent figures in --quick mode."""
    return None if (opts.quick and size_dependent) else met


def git_init(root: Path) -> bool:
    """Make ``root`` a git repository with one clean commit, as most user projects are.

    A run records the commit and the dirty flag, so inside a repository each run spawns
    git; a benchmark outside one would leave that cost out. False if git is unavailable.
    """
    env = clean_env(
        GIT_AUTHOR_NAME="bench",
        GIT_AUTHOR_EMAIL="bench@example.invalid",
        GIT_COMMITTER_NAME="bench",
        GIT_COMMITTER_EMAIL="bench@example.invalid",
    )
    (root / ".gitignore").write_text(".loopml/\n__pycache__/\n", encoding="utf-8")
    try:
        for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "bench project"]):
            subprocess.run(
                ["git", *args], cwd=root, env=env, check=True, capture_output=True, timeout=60
            )
    except (OSError, subprocess.SubprocessError):
        return False
    return True


def write_module(root: Path, name: str, text: str) -> Path:
    path = root / name
    path.write_text(text, encoding="utf-8")
    return path
