"""Run the real ``loopml`` console script in a subprocess (shared by CLI-level tests)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def run_cli(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 120
):  # type: ignore[no-untyped-def]
    """Run the real ``loopml`` console script in a subprocess."""
    exe = Path(sys.executable).parent / "loopml"
    full_env = dict(os.environ)
    full_env.pop(
        "COLUMNS", None
    )  # the caller's terminal width must not leak in; ``env`` may set it
    full_env.update(env or {})
    return subprocess.run(
        [str(exe), *args], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout
    )
