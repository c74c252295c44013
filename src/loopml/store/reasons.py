"""Why a step ran, or where its outputs came from: computed once, stored with the step run.

A step's *basis* is what its cache key was computed from::

    {"code": {"train": ["<hash>", "pipelines.py"], "helpers.standardize": [...]},
     "params": {"alpha": 0.5}, "inputs": {"df": "<digest>"}}

On a cache miss the runner compares the basis with the one of the latest earlier run of
the same pipeline step and stores the differences as the step's ``reason``; on a hit the
reason names the run and step that made the outputs. ``describe`` turns a reason into
the one line users see in ``loopml run``, ``runs show`` and notebooks.
"""

from __future__ import annotations

import json
import os
from typing import Any

_MAX_SHOWN = 60
_CONTEXT = 30  # characters kept before the first difference of two long values
_MISSING = object()


def _text(value: Any) -> str:
    if isinstance(value, dict) and "content" in value and "path" in value:
        return f"{value['path']} (content {str(value['content'])[:12]})"
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)


def _pair(old: Any, new: Any) -> tuple[str, str]:
    """Both values as short text, cut so that where they differ stays in view.

    Cutting both at the same length would show two identical prefixes of a long path or
    string; the window starts a little before the first difference instead.
    """
    a, b = _text(old), _text(new)
    common = len(os.path.commonprefix([a, b]))
    start = common - _CONTEXT if common >= _MAX_SHOWN - 10 else 0
    return _window(a, start), _window(b, start)


def _window(text: str, start: int) -> str:
    head = "…" if start > 0 else ""
    body = text[start:]
    if len(head) + len(body) > _MAX_SHOWN:
        body = body[: _MAX_SHOWN - len(head) - 1] + "…"
    return head + body


def diff_basis(old: dict[str, Any], new: dict[str, Any]) -> list[dict[str, Any]]:
    """What differs between two bases, most telling first: code, then params, then inputs."""
    changes: list[dict[str, Any]] = []
    old_code, new_code = old.get("code", {}), new.get("code", {})
    for name in sorted(set(old_code) | set(new_code)):
        before, after = old_code.get(name), new_code.get(name)
        if before == after:
            continue
        where = (after or before or [None, ""])[1]
        kind = "changed" if before and after else ("added" if after else "removed")
        changes.append({"what": "code", "name": name, "file": where, "change": kind})
    for what in ("params", "inputs"):
        before_all, after_all = old.get(what, {}), new.get(what, {})
        for name in sorted(set(before_all) | set(after_all)):
            before, after = before_all.get(name, _MISSING), after_all.get(name, _MISSING)
            if before != after:
                changes.extend(
                    {"what": what[:-1], "name": n, "old": o, "new": v}
                    for n, o, v in _elements(name, before, after)
                )
                labels = (old.get("labels", {}).get(name), new.get("labels", {}).get(name))
                if what == "inputs" and any(labels):  # a dataset version: its NAME@N
                    changes[-1]["old_label"], changes[-1]["new_label"] = labels
    if not changes and old.get("step") != new.get("step"):
        changes.append({"what": "step", "name": new.get("step"), "old": old.get("step")})
    return changes


def _elements(name: str, old: Any, new: Any) -> list[tuple[str, Any, Any]]:
    """The changed elements of a list or dict parameter (``files[1]``), else the whole value."""
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        pairs = [(f"{name}[{i}]", a, b) for i, (a, b) in enumerate(zip(old, new, strict=True))]
    elif _is_mapping(old) and _is_mapping(new) and old.keys() == new.keys():
        pairs = [(f"{name}[{k!r}]", old[k], new[k]) for k in sorted(old)]
    else:
        return [(name, "<none>" if old is _MISSING else old, "<none>" if new is _MISSING else new)]
    return [(n, a, b) for n, a, b in pairs if a != b]


def _is_mapping(value: Any) -> bool:
    """A dict parameter, not the ``{"path", "content"}`` form of a hashed file."""
    return isinstance(value, dict) and not ("path" in value and "content" in value)


def describe(reason: dict[str, Any] | None) -> str:
    """One line for a stored reason (empty when none was recorded)."""
    if not reason:
        return ""
    kind = reason.get("kind")
    if kind == "cached":
        return f"from cache: run {reason.get('run', '?')}, step {reason.get('step', '?')}"
    if kind == "no-cache":
        return str(reason.get("why", "cache disabled"))
    if kind == "first":
        return "no earlier run of this step"
    if kind == "retry":
        return str(reason.get("why", "cached outputs could not be used"))
    if kind == "changed":
        parts = []
        for change in reason.get("changes", [])[:3]:
            what = change.get("what")
            if what == "code":
                verb = {"added": "now calls", "removed": "no longer calls"}.get(
                    change.get("change", ""), "code changed:"
                )
                where = f" in {change['file']}" if change.get("file") else ""
                parts.append(f"{verb} `{change['name']}`{where}")
            elif what == "param":
                before, after = _pair(change["old"], change["new"])
                parts.append(f"parameter {change['name']}: {before} → {after}")
            elif what == "input":
                before = change.get("old_label") or str(change["old"])[:12]
                after = change.get("new_label") or str(change["new"])[:12]
                parts.append(f"input {change['name']} changed ({before} → {after})")
            else:
                parts.append(
                    f"step definition changed ({change.get('old')} → {change.get('name')})"
                )
        more = len(reason.get("changes", [])) - 3
        tail = f" (+{more} more)" if more > 0 else ""
        since = f" since {reason['previous']}" if reason.get("previous") else ""
        return "; ".join(parts) + tail + since if parts else f"inputs changed{since}"
    return str(reason.get("why", kind))
