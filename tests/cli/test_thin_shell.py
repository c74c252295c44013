"""The CLI is a thin shell over ``Client`` (issue 12 §2): it never reaches into the store.

The REST server and web UI will call the same ``Client`` methods, so the CLI and they can
never disagree. This scans the CLI's source for attribute chains into store internals.
"""

from __future__ import annotations

import ast
from pathlib import Path

import loopml.cli

CLI = Path(loopml.cli.__file__).parent


def test_cli_modules_use_the_client_api_only() -> None:
    offenders: list[str] = []
    for path in sorted(CLI.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            # client.metadata.<runs|metrics|steps|lineage|db> or anything.db: store internals
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Attribute)
                and node.value.attr == "metadata"
                and node.attr in ("runs", "metrics", "steps", "lineage", "datasets", "db", "search")
            ) or (isinstance(node, ast.Attribute) and node.attr == "db"):
                offenders.append(f"{path.name}:{node.lineno}: .{node.attr}")
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                ("loopml.store.engine", "loopml.store.runs", "loopml.store.lineage")
            ):
                offenders.append(f"{path.name}:{node.lineno}: imports {node.module}")
    assert offenders == [], offenders
