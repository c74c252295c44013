"""numpy arrays and scalars → ``.npy``, never with pickle.

``allow_pickle=False`` both ways: an object array would need pickle, so it is refused
with a fix instead. ndarray subclasses (masked arrays, ``np.matrix``) are refused too,
because ``.npy`` would silently drop what makes them special.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from loopml.artifacts.materializers import require


class NumpyMaterializer:
    """``numpy.ndarray`` and numpy scalars ↔ a ``.npy`` file."""

    name = "numpy.npy"
    extension = ".npy"

    def problem(self, value: Any) -> str | None:
        np = require("numpy", "Storing numpy values", "data")
        if isinstance(value, np.ndarray) and type(value) is not np.ndarray:
            return f"{type(value).__qualname__} is an ndarray subclass that .npy cannot store losslessly"
        if value.dtype.hasobject:
            return "arrays of dtype=object need pickle; convert to a concrete dtype, e.g. arr.astype(str)"
        return None

    def save(self, value: Any, path: Path) -> dict[str, Any]:
        np = require("numpy", "Storing numpy values", "data")
        scalar = isinstance(value, np.generic)
        # C order always: an equal array must give equal bytes whatever its memory layout.
        array = np.asarray(value, order="C")
        # np.save(path) would append ".npy" to the name, so hand it an open file.
        with open(path, "wb") as f:
            np.save(f, array, allow_pickle=False)
        return {"shape": [int(n) for n in array.shape], "dtype": str(array.dtype), "scalar": scalar}

    def load(self, path: Path, metadata: dict[str, Any]) -> Any:
        np = require("numpy", "Loading numpy values", "data")
        with open(path, "rb") as f:
            array = np.load(f, allow_pickle=False)
        return array[()] if metadata.get("scalar") else array
