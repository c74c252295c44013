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

Parameters that are data (the rule users can predict, documented in docs/caching.md):

- a ``Path`` value, or any value of a parameter annotated ``Path``, is content-hashed:
  a file's bytes, or every file under a folder (by relative path and content,
  following symlinked sub-folders);
- a plain ``str`` is a value, unless it names an existing regular *file*, whose content
  is then hashed too (``"data.csv"``); a string naming a folder (``"."``) is just text;
- lists, tuples and dict values follow the same rules element by element, with the
  element annotation (``list[Path]``, ``dict[str, Path]``);
- the store's own folder (``.loopml``), ``.git``, virtual environments and
  ``__pycache__`` are never hashed.

Each file's digest is remembered per process by its stat (path, size, mtime, inode), so
editing any file inside a folder changes the key while unchanged files cost one ``stat``.
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
import time
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

_SOURCE_MEMO: dict[types.CodeType, str] = {}
_FILE_MEMO: dict[tuple[str, int, int, int], str] = {}
_SIMPLE = (int, float, str, bytes, bool, type(None))
_SKIP_DIRS = {".git", ".loopml", "__pycache__", ".hg", ".svn"}
_RACY_NS = 2_000_000_000  # stat of a file changed in the last 2 s is not trusted (racy git)
_LOUD_BYTES = 256 << 20  # say so on stderr before hashing more than this


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
    return fingerprint_of(code_parts(fn))


def fingerprint_of(parts: Mapping[str, Sequence[str]]) -> str:
    """The fingerprint of a ``code_parts`` mapping (a pure function of it)."""
    lines = [f"{name}:{value[0]}" for name, value in sorted(parts.items())]
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def code_parts(fn: Any) -> dict[str, list[str]]:
    """What the fingerprint covers, by name: ``{"helpers.standardize": [hash, "helpers.py"]}``.

    Kept with each step run, so a re-run can say which helper changed.
    """
    parts: dict[str, list[str]] = {}
    _collect(getattr(fn, "fn", fn), parts, set())
    return parts


def _where(obj: Any) -> str:
    code = getattr(obj, "__code__", None)
    file = (
        code.co_filename
        if code is not None
        else getattr(sys.modules.get(getattr(obj, "__module__", "")), "__file__", "") or ""
    )
    if not file:
        return ""
    # IPython names a cell "<ipython-input-…>", ipykernel "<tmp>/ipykernel_<pid>/<hash>.py":
    # neither name means anything to the user.
    if file.startswith("<") or os.path.basename(os.path.dirname(file)).startswith("ipykernel_"):
        return "notebook"
    return os.path.basename(file)


def _label(obj: Any) -> str:
    module = getattr(obj, "__module__", "") or ""
    name = getattr(obj, "__qualname__", "?")
    return name if module in ("__main__", "") else f"{module}.{name}"


def _collect(fn: Any, parts: dict[str, list[str]], seen: set[int]) -> None:
    if id(fn) in seen:
        return
    seen.add(id(fn))
    parts[_label(fn)] = [source_hash(fn), _where(fn)]
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


def _visit(
    name: str, obj: Any, names: list[str], parts: dict[str, list[str]], seen: set[int]
) -> None:
    obj = getattr(obj, "fn", obj) if type(obj).__name__ == "Step" else obj
    if isinstance(obj, types.FunctionType):
        if is_project_code(obj):
            _collect(obj, parts, seen)
    elif isinstance(obj, type):
        if is_project_code(obj) and id(obj) not in seen:
            seen.add(id(obj))
            parts[f"class {_label(obj)}"] = [source_hash(obj), _where(obj)]
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
        value = hashlib.sha256(repr(obj).encode("utf-8", "backslashreplace")).hexdigest()
        parts[f"constant {name}"] = [value, ""]


def _skipped(folder: str, name: str, excluded: frozenset[str]) -> bool:
    full = os.path.join(folder, name)
    return (
        name in _SKIP_DIRS
        or os.path.realpath(full) in excluded
        or os.path.isfile(os.path.join(full, "pyvenv.cfg"))  # a virtual environment
    )


def _one_file(path: str, st: os.stat_result) -> str:
    key = (path, st.st_size, st.st_mtime_ns, st.st_ino)
    found = _FILE_MEMO.get(key)
    if found is not None:
        return found
    with open(path, "rb") as fh:
        digest = hashlib.file_digest(fh, "sha256").hexdigest()
    if time.time_ns() - st.st_mtime_ns >= _RACY_NS:
        _FILE_MEMO[key] = digest
    return digest


def file_digest(path: Path, *, exclude: Sequence[Path] = (), label: str = "") -> str:
    """SHA-256 of a file, or of a folder's sorted (relative path, file digest) list.

    Every call lists the folder again and checks each file's stat, so an edit anywhere
    inside it changes the digest; unchanged files are not read again in this process.
    """
    excluded = frozenset(os.path.realpath(p) for p in exclude)
    root = os.path.realpath(path)
    if os.path.isfile(root):
        st = os.stat(root)
        if (
            st.st_size > _LOUD_BYTES
            and (root, st.st_size, st.st_mtime_ns, st.st_ino) not in _FILE_MEMO
        ):
            _say(label, path, st.st_size)
        return _one_file(root, st)
    files: list[tuple[str, str, os.stat_result]] = []
    # Symlinked sub-folders are data too (``data/raw -> /mnt/raw``); each real folder is
    # listed once, which also ends symlink loops.
    visited = {root}
    for folder, dirs, names in os.walk(root, followlinks=True):
        kept = []
        for d in sorted(dirs):
            real = os.path.realpath(os.path.join(folder, d))
            if real not in visited and not _skipped(folder, d, excluded):
                visited.add(real)
                kept.append(d)
        dirs[:] = kept
        for name in names:
            full = os.path.join(folder, name)
            try:
                st = os.stat(full)
            except OSError:
                continue  # a dangling symlink or a file removed meanwhile
            if os.path.isfile(full):
                files.append((os.path.relpath(full, root).replace(os.sep, "/"), full, st))
    files.sort()
    pending = sum(
        st.st_size
        for _, full, st in files
        if (full, st.st_size, st.st_mtime_ns, st.st_ino) not in _FILE_MEMO
    )
    if pending > _LOUD_BYTES:
        _say(label, path, pending)
    entries = [f"{rel}:{_one_file(full, st)}" for rel, full, st in files]
    return hashlib.sha256("\n".join(entries).encode("utf-8", "surrogateescape")).hexdigest()


def _say(label: str, path: Path, size: int) -> None:
    what = f"parameter {label!r} ({path})" if label else str(path)
    print(
        f"loopml: hashing {what}, {size / 2**20:,.0f} MiB, for the step cache key…",
        file=sys.stderr,
        flush=True,
    )


def _is_path_annotation(annotation: Any) -> bool:
    if annotation is None:
        return False
    if isinstance(annotation, str):
        return annotation.replace(" ", "") in {
            "Path",
            "pathlib.Path",
            "Path|None",
            "Optional[Path]",
        }
    if annotation is Path or (isinstance(annotation, type) and issubclass(annotation, os.PathLike)):
        return True
    if typing.get_origin(annotation) not in (typing.Union, types.UnionType):  # Path | None
        return False
    return any(_is_path_annotation(a) for a in typing.get_args(annotation) if a is not type(None))


def _element_annotation(annotation: Any, container: Any) -> Any:
    """``Path`` for ``list[Path]``, ``tuple[Path, ...]``, ``Sequence[Path]``, ``dict[str, Path]``."""
    if isinstance(annotation, str):
        text = annotation.replace(" ", "")
        head, _, rest = text.partition("[")
        if not rest.endswith("]") or head.rsplit(".", 1)[-1] not in _CONTAINERS:
            return None
        args = rest[:-1].split(",")
        return args[-1] if isinstance(container, dict) else args[0]
    args = [a for a in typing.get_args(annotation) if a is not Ellipsis]
    if not args or getattr(typing.get_origin(annotation), "__name__", "") not in _CONTAINERS:
        return None
    return args[-1] if isinstance(container, dict) else args[0]


_CONTAINERS = {
    "list",
    "tuple",
    "Sequence",
    "Iterable",
    "Collection",
    "List",
    "Tuple",
    "dict",
    "Mapping",
    "Dict",
}


def canonical_param(
    value: Any, annotation: Any = None, *, exclude: Sequence[Path] = (), name: str = ""
) -> Any:
    """A JSON-able, canonical form of a step parameter for the cache key (rules: module doc)."""
    is_path = isinstance(value, os.PathLike) or (
        isinstance(value, str) and _is_path_annotation(annotation)
    )
    if isinstance(value, list | tuple | dict) and value:
        # The same rule, element by element: ``files: list[Path]`` hashes every file.
        inner = _element_annotation(annotation, value)
        if isinstance(value, dict):
            return {
                k: canonical_param(v, inner, exclude=exclude, name=f"{name}[{k!r}]")
                for k, v in value.items()
            }
        return [
            canonical_param(v, inner, exclude=exclude, name=f"{name}[{i}]")
            for i, v in enumerate(value)
        ]
    if is_path:
        text = os.fspath(value)
        try:
            if os.path.exists(text):
                return {
                    "path": str(text),
                    "content": file_digest(Path(text), exclude=exclude, label=name),
                }
        except (OSError, ValueError):
            pass
        return str(text)
    if isinstance(value, str) and 0 < len(value) < 4096 and "\n" not in value and "\0" not in value:
        try:
            if os.path.isfile(value):
                return {"path": value, "content": file_digest(Path(value), label=name)}
        except (OSError, ValueError):
            pass
    return value


def params_json(
    params: Mapping[str, Any],
    annotations: Mapping[str, Any] | None = None,
    *,
    exclude: Sequence[Path] = (),
) -> str:
    """Canonical JSON of step parameters; raises TypeError for values JSON cannot hold."""
    notes = annotations or {}
    return canonical_json(
        {k: canonical_param(v, notes.get(k), exclude=exclude, name=k) for k, v in params.items()}
    )


def canonical_json(canonical: Mapping[str, Any]) -> str:
    """The JSON text of parameters already in canonical form (``canonical_param``)."""
    return json.dumps(canonical, sort_keys=True, separators=(",", ":"), allow_nan=True)


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
