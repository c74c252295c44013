"""House-style checks a machine can make: module size, and pickle loads only where allowed."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).parent.parent / "src" / "loopml"
MAX_LINES = 800
# The one module allowed to unpickle: it loads only blobs whose digest was just verified, and
# model files the user explicitly trusted (`loopml register --file … --trust`).
PICKLE_LOADERS = {SRC / "artifacts" / "materializers" / "sklearn.py"}


def test_no_module_exceeds_800_lines() -> None:
    too_long = {
        str(p.relative_to(SRC)): n
        for p in SRC.rglob("*.py")
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert too_long == {}, f"split these modules by noun (STYLE.md rule 2): {too_long}"


def test_unsafe_loads_and_eval_appear_only_in_the_allowed_loader() -> None:
    found = []
    for path in SRC.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            fn = node.func
            name = fn.attr if isinstance(fn, ast.Attribute) else getattr(fn, "id", "")
            owner = getattr(fn.value, "id", "") if isinstance(fn, ast.Attribute) else ""
            unsafe = name in ("eval", "exec") and not owner
            unsafe |= owner in ("pickle", "cloudpickle", "joblib", "dill") and name in (
                "load",
                "loads",
            )
            if unsafe and path not in PICKLE_LOADERS:
                found.append(
                    f"{path.relative_to(SRC)}:{node.lineno} {owner}.{name}".replace("..", ".")
                )
    assert found == []
