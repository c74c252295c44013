"""Cache keys: a pure function of step identity, code, parameters and input digests.

The code fingerprint covers the step's own source *and* the project-local code it uses:
functions and classes it calls (followed recursively), attributes of project-local
modules it reads, and simple global constants (``THRESHOLD = 3``). Editing any of them
changes the key. Library code (site-packages, the standard library) is not followed:
its version is recorded with the run instead.

Source is compared as an AST dump without docstrings, so comments, formatting and
docstring edits keep the cache. This module is the only place loopml reads user source,
and it only hashes it. Functions defined in notebook cells work too: IPython keeps cell
source where ``inspect`` finds it.
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import json
import os
import sys
import sysconfig
import textwrap
import types
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

_SOURCE_MEMO: dict[types.CodeType, str] = {}
_FILE_MEMO: dict[tuple[str, int, int, int], str] = {}
_SIMPLE = (int, float, str, bytes, bool, type(None))


def _library_roots() -> tuple[str, ...]:
    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix}
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        p = sysconfig.get_paths().get(key)
        if p:
            paths.add(p)
    return tuple(sorted({os.path.realpath(p) + os.sep for p in paths}))


_LIBRARY_ROOTS = _library_roots()


def is_project_code(obj: Any) -> bool:
    """True for code the user owns: ``__main__``, notebook cells, files outside site-packages."""
    module = getattr(obj, "__module__", None)
    if module is None:
        return False
    if module == "__main__":
        return True
    mod = sys.modules.get(module)
    file = getattr(mod, "__file__", None) if mod else None
    if file is None:  # built-in and frozen modules
        return False
    real = os.path.realpath(file)
    return not real.startswith(_LIBRARY_ROOTS) and not module.startswith("loopml.")


def _strip_docstrings(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Module):
            body = node.body
            if (
                body
                and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)
            ):
                node.body = body[1:] or [ast.Pass()]
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            node.decorator_list = []
    return tree


def _code_bytes(code: types.CodeType) -> str:
    """Fallback when source is unavailable: bytecode, constants and names, recursively."""
    parts = [code.co_code.hex(), repr(code.co_names)]
    for const in code.co_consts:
        parts.append(_code_bytes(const) if isinstance(const, types.CodeType) else repr(const))
    return "|".join(parts)


def source_hash(obj: Any) -> str:
    """Hash of a function's or class's source, ignoring comments, layout and docstrings."""
    code = getattr(obj, "__code__", None)
    if code is not None and code in _SOURCE_MEMO:
        return _SOURCE_MEMO[code]
    try:
        text = textwrap.dedent(inspect.getsource(obj))
        digest = hashlib.sha256(ast.dump(_strip_docstrings(ast.parse(text))).encode()).hexdigest()
    except (OSError, TypeError, SyntaxError):
        raw = _code_bytes(code) if code is not None else repr(obj)
        digest = hashlib.sha256(raw.encode()).hexdigest()
    if code is not None:
        _SOURCE_MEMO[code] = digest
    return digest


def _names(code: types.CodeType) -> Iterable[str]:
    yield from code.co_names
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _names(const)


def code_fingerprint(fn: Any) -> str:
    """Fingerprint of ``fn`` and every project-local function, class and constant it uses."""
    parts: list[str] = []
    _collect(getattr(fn, "fn", fn), parts, set())
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def _collect(fn: Any, parts: list[str], seen: set[int]) -> None:
    if id(fn) in seen:
        return
    seen.add(id(fn))
    parts.append(f"{getattr(fn, '__qualname__', '?')}:{source_hash(fn)}")
    code = getattr(fn, "__code__", None)
    if code is None:
        return
    names = sorted(set(_names(code)))
    glb = getattr(fn, "__globals__", {})
    for name in names:
        if name in glb:
            _visit(name, glb[name], names, parts, seen)
    for cell in getattr(fn, "__closure__", None) or ():
        try:
            _visit("<closure>", cell.cell_contents, names, parts, seen)
        except ValueError:  # empty cell
            continue


def _visit(name: str, obj: Any, names: list[str], parts: list[str], seen: set[int]) -> None:
    obj = getattr(obj, "fn", obj) if type(obj).__name__ == "Step" else obj
    if isinstance(obj, types.FunctionType):
        if is_project_code(obj):
            _collect(obj, parts, seen)
    elif isinstance(obj, type):
        if is_project_code(obj) and id(obj) not in seen:
            seen.add(id(obj))
            parts.append(f"class {obj.__qualname__}:{source_hash(obj)}")
            for member in vars(obj).values():
                if isinstance(member, types.FunctionType):
                    _collect(member, parts, seen)
    elif isinstance(obj, types.ModuleType):
        file = getattr(obj, "__file__", None)
        if (
            file
            and not os.path.realpath(file).startswith(_LIBRARY_ROOTS)
            and not obj.__name__.startswith("loopml")
        ):
            for attr in names:
                if hasattr(obj, attr):
                    _visit(f"{name}.{attr}", getattr(obj, attr), names, parts, seen)
    elif isinstance(obj, _SIMPLE) or (
        isinstance(obj, tuple | frozenset) and all(isinstance(x, _SIMPLE) for x in obj)
    ):
        parts.append(f"{name}={obj!r}")


def file_digest(path: Path) -> str:
    """SHA-256 of a file, or of a folder's sorted (relative path, file digest) list; memoized by stat."""
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns, st.st_ino)
    if key in _FILE_MEMO:
        return _FILE_MEMO[key]
    if path.is_dir():
        entries = [
            f"{p.relative_to(path).as_posix()}:{file_digest(p)}"
            for p in sorted(path.rglob("*"))
            if p.is_file()
        ]
        digest = hashlib.sha256("\n".join(entries).encode()).hexdigest()
    else:
        with path.open("rb") as fh:
            digest = hashlib.file_digest(fh, "sha256").hexdigest()
    _FILE_MEMO[key] = digest
    return digest


def canonical_param(value: Any) -> Any:
    """A JSON-able, canonical form of a step parameter for the cache key.

    A ``Path``, or a string naming an existing file or folder, also contributes the
    content digest, so editing ``data.csv`` invalidates the steps that read it.
    """
    if isinstance(value, Path) or (
        isinstance(value, str) and 0 < len(value) < 4096 and "\n" not in value
    ):
        path = Path(value)
        try:
            if path.exists():
                return {"path": str(value), "content": file_digest(path)}
        except (OSError, ValueError):
            pass
        return str(value) if isinstance(value, Path) else value
    return value


def params_json(params: Mapping[str, Any]) -> str:
    """Canonical JSON of step parameters; raises TypeError for values JSON cannot hold."""
    return json.dumps(
        {k: canonical_param(v) for k, v in params.items()},
        sort_keys=True,
        separators=(",", ":"),
        allow_nan=True,
    )


def cache_key(
    step_id: str, code_fingerprint: str, params: str, input_digests: Mapping[str, str]
) -> str:
    """The step cache key: SHA-256 over identity, code, canonical params and input digests."""
    payload = json.dumps(
        {
            "step": step_id,
            "code": code_fingerprint,
            "params": params,
            "inputs": dict(sorted(input_digests.items())),
        },
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(payload.encode()).hexdigest()
