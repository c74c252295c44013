"""Pipelines whose parameters name data on disk, and a small chain for damaged-blob tests.

``scan`` reads the ``*.txt`` files directly inside a folder given as a ``Path``;
``concat`` reads the files of a ``list[Path]``; ``read_text`` reads a file named by a
plain ``str``; ``fmt`` takes ``decimal``, a ``str``
that happens to name the working directory (``"."``) but is only text.
"""

from __future__ import annotations

import os
from pathlib import Path

from loopml import pipeline, step


@step
def scan(folder: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(Path(folder).glob("*.txt"))}


@step
def read_tree(folder: Path) -> dict[str, str]:
    """Every ``*.txt`` file under the folder, following symlinked sub-folders once each."""
    found, seen = {}, set()
    for where, dirs, names in os.walk(folder, followlinks=True):
        if os.path.realpath(where) in seen:  # a symlink loop
            dirs[:] = []
            continue
        seen.add(os.path.realpath(where))
        for name in sorted(n for n in names if n.endswith(".txt")):
            path = Path(where, name)
            found[path.relative_to(folder).as_posix()] = path.read_text()
    return found


@step
def concat(files: list[Path]) -> str:
    """Several files given as one ``list[Path]`` parameter."""
    return "".join(Path(f).read_text() for f in files)


@step
def read_text(path: str) -> str:
    with open(path) as fh:
        return fh.read()


@step
def fmt(x: float, decimal: str) -> str:
    return f"{x:.2f}".replace(".", decimal)


@step
def numbers(n: int) -> list[int]:
    return list(range(n))


@step
def total(values: list[int]) -> int:
    return sum(values)


@step(cache=False)
def echo(values: list[int]) -> list[int]:
    """Always runs, so it always receives its input: it must never see damaged bytes."""
    return values


@pipeline
def folder_flow(folder: Path = Path("data")):
    return scan(folder)


@pipeline
def tree_flow(folder: Path = Path("data")):
    return read_tree(folder)


@pipeline
def files_flow(files: list[Path] = [Path("data/a.txt"), Path("data/b.txt")]):  # noqa: B006
    return concat(files)


@pipeline
def text_folder_flow(folder: str = "data"):
    """A ``str`` pipeline parameter handed to ``scan``, whose parameter is annotated ``Path``."""
    return scan(folder)


@pipeline
def file_flow(path: str = "notes.txt"):
    return read_text(path)


@pipeline
def decimal_flow(x: float = 1.5, decimal: str = "."):
    return fmt(x, decimal)


@pipeline
def chain(n: int = 200):
    values = numbers(n)
    echo(values)
    return total(values)
