"""The user-style modules the pipeline benchmarks write into their temp projects.

Each is what a practitioner would write: plain functions with ``@step``, a ``@pipeline``
that wires them, and a ``__main__`` block. A "bare" twin runs the same functions with no
loopml at all, as the yardstick. They are real files in the project folder (not code in
this package) so loopml fingerprints them as project code, as it would a user's.
"""

from __future__ import annotations

TINY_STEPS = 9  # transforms after the load step: 10 steps in all


def _tiny_functions(decorator: str) -> str:
    parts = [
        f"{decorator}def load(seed: int) -> pd.DataFrame:\n"
        "    return pd.DataFrame({'x': np.arange(100, dtype='float64') + seed, 'y': np.arange(100) * 0.5})\n"
    ]
    for i in range(1, TINY_STEPS + 1):
        parts.append(
            f"{decorator}def step_{i}(df: pd.DataFrame) -> pd.DataFrame:\n"
            f"    return df.assign(x=df['x'] + {i})\n"
        )
    return "\n\n".join(parts)


def _tiny_chain() -> str:
    lines = ["    df = load(seed)"]
    lines += [f"    df = step_{i}(df)" for i in range(1, TINY_STEPS + 1)]
    return "\n".join(lines) + "\n    return df\n"


TINY_PIPELINE = f'''"""10 tiny pandas steps on 100 rows (benchmark project module)."""
import sys

import numpy as np
import pandas as pd

from loopml import pipeline, step


{_tiny_functions("@step" + chr(10))}

@pipeline
def tiny(seed: int = 0):
{_tiny_chain()}

def bare(seed: int):
{_tiny_chain()}

@step
def inc(x: int) -> int:
    return x + 1


@pipeline
def tiny_ints(seed: int = 0):
    x = inc(seed)
    for _ in range(9):
        x = inc(x)
    return x


if __name__ == "__main__":
    run = tiny(seed=int(sys.argv[1]))
    if run.status != "succeeded":
        raise SystemExit(f"run {{run.status}}")
'''

TINY_BARE = f'''"""The same 10 functions as tiny_pipeline.py, without loopml."""
import sys

import numpy as np
import pandas as pd


{_tiny_functions("")}

def bare(seed: int):
{_tiny_chain()}

if __name__ == "__main__":
    bare(int(sys.argv[1]))
'''


def _hamilton_functions() -> str:
    parts = [
        "def load(seed: int) -> pd.DataFrame:\n"
        "    return pd.DataFrame({'x': np.arange(100, dtype='float64') + seed, 'y': np.arange(100) * 0.5})\n"
    ]
    previous = "load"
    for i in range(1, TINY_STEPS + 1):
        parts.append(
            f"def step_{i}({previous}: pd.DataFrame) -> pd.DataFrame:\n"
            f"    return {previous}.assign(x={previous}['x'] + {i})\n"
        )
        previous = f"step_{i}"
    return "\n\n".join(parts)


# Hamilton (only when it is installed, never a dependency): the same 10 functions as a
# dataflow, with Hamilton's own cache so "cached" means what it means for loopml.
HAMILTON_STEPS = f'''"""The same 10 functions as tiny_pipeline.py, as Hamilton nodes."""
import numpy as np
import pandas as pd


{_hamilton_functions()}
'''

HAMILTON_SCRIPT = f'''"""Run hamilton_steps.py with Hamilton's cache, as ``python hamilton_tiny.py SEED``."""
import sys

from hamilton import driver

import hamilton_steps

if __name__ == "__main__":
    dr = driver.Builder().with_modules(hamilton_steps).with_cache(path=".hamilton_cache").build()
    out = dr.execute(["step_{TINY_STEPS}"], inputs={{"seed": int(sys.argv[1])}})
    assert len(out["step_{TINY_STEPS}"]) == 100
'''


BIG_TRANSFORMS = 9


def _big_chain() -> str:
    lines = ["    df = make(rows, seed)"]
    lines += [f"    df = scale_{i}(df)" for i in range(1, BIG_TRANSFORMS + 1)]
    return "\n".join(lines) + "\n    return df\n"


BIG_PIPELINE = (
    '''"""A 1M x 20 float frame through 10 steps (benchmark project module)."""
import numpy as np
import pandas as pd

from loopml import pipeline, step

COLUMNS = [f"f{i}" for i in range(20)]


@step
def make(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(rng.random((rows, len(COLUMNS))), columns=COLUMNS)

'''
    + "".join(
        f"\n@step\ndef scale_{i}(df: pd.DataFrame) -> pd.DataFrame:\n    return df * {1 + i / 100}\n\n"
        for i in range(1, BIG_TRANSFORMS + 1)
    )
    + f'''
@pipeline
def big(rows: int = 1_000_000, seed: int = 0):
{_big_chain()}

def bare(rows: int, seed: int) -> list:
    """The same functions called directly; returns every intermediate frame."""
    out = [make(rows, seed)]
'''
    + "".join(f"    out.append(scale_{i}(out[-1]))\n" for i in range(1, BIG_TRANSFORMS + 1))
    + "    return out\n"
)

FANOUT_WIDTH = 20
_JOIN_PARAMS = ", ".join(f"a{i}: int" for i in range(FANOUT_WIDTH))
_JOIN_SUM = " + ".join(f"a{i}" for i in range(FANOUT_WIDTH))

FANOUT_PIPELINE = f'''"""{FANOUT_WIDTH} independent sleeping steps, then a join (benchmark project module)."""
import sys
import time

import pandas as pd  # a real pipeline script imports its data library; the bare twin does too

from loopml import pipeline, step


@step
def wait(i: int, nonce: int, seconds: float) -> int:
    time.sleep(seconds)
    return i


@step
def join({_JOIN_PARAMS}) -> int:
    return {_JOIN_SUM}


@pipeline
def fanout(nonce: int = 0, seconds: float = 0.5):
    parts = [wait(i, nonce, seconds) for i in range({FANOUT_WIDTH})]
    return join(*parts)


if __name__ == "__main__":
    nonce, seconds, workers = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
    params = {{"nonce": nonce, "seconds": seconds}}
    if workers == "default":
        run = fanout(**params)
    else:
        run = fanout.run(params, workers=int(workers))
    if run.status != "succeeded" or run.output("join") != sum(range({FANOUT_WIDTH})):
        raise SystemExit(f"run {{run.status}}")
'''

FANOUT_BARE = f'''"""{FANOUT_WIDTH} bare threads sleeping, then a join: the yardstick."""
import sys
import threading
import time

import pandas as pd


def wait(i, seconds, out):
    time.sleep(seconds)
    out[i] = i


if __name__ == "__main__":
    seconds = float(sys.argv[2])
    out = [0] * {FANOUT_WIDTH}
    threads = [threading.Thread(target=wait, args=(i, seconds, out)) for i in range({FANOUT_WIDTH})]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(out) == sum(range({FANOUT_WIDTH}))
'''
