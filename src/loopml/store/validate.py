"""What the store accepts, checked before anything is written, with the same limits on every backend.

Names (pipelines, runs, metric/param/tag keys, steps) must be non-empty text that fits its
column, with no NUL and no lone surrogates: SQLite would take values PostgreSQL refuses,
and a bad name found at flush time would lose a whole batch. Values (param and tag text)
may be any length; NUL is refused (PostgreSQL text cannot hold it), and lone surrogates —
what ``os.listdir`` and ``sys.argv`` return for file names that are not UTF-8 — are
escaped as ``\\xNN`` so the run still records a readable value.
"""

from __future__ import annotations

import re
from typing import Any

from loopml.errors import InvalidParameterError

MAX_KEY = 250
MAX_NAME = 200
# Names of versioned things (datasets, suites, models): safe in paths, URLs and shells.
_VERSIONED = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def _shown(value: str) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:60] + f"…' ({len(value):,} characters)"


def check_name(kind: str, value: object, limit: int = MAX_NAME) -> str:
    """Return ``value`` if it is a storable name, else raise InvalidParameterError naming it."""
    if not isinstance(value, str):
        raise InvalidParameterError(
            f"{kind}: got {value!r} of type {type(value).__name__}; expected a non-empty "
            f"string of at most {limit} characters."
        )
    if not value or len(value) > limit:
        raise InvalidParameterError(
            f"{kind} {_shown(value)}: got {len(value):,} characters; expected a non-empty "
            f"string of at most {limit} characters." + (" Use a shorter name." if value else "")
        )
    if "\x00" in value:
        raise InvalidParameterError(f"{kind} {_shown(value)}: contains a NUL character; remove it.")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise InvalidParameterError(
                f"{kind} {_shown(value)}: character {exc.start} is a lone surrogate (a name "
                "decoded from bytes that are not UTF-8); expected valid Unicode text."
            ) from None
    return value


def check_key(kind: str, key: object) -> str:
    """A metric, param or tag key: a name of at most 250 characters."""
    return check_name(f"{kind} name", key, MAX_KEY)


def storable_text(kind: str, key: str, text: str) -> str:
    """``text`` as it will be stored: NUL refused, lone surrogates escaped as ``\\xNN``."""
    if "\x00" in text:
        raise InvalidParameterError(
            f"{kind} {key!r}: got a value containing a NUL character; remove it."
        )
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        raw = text.encode("utf-8", "surrogateescape" if _only_escapes(text) else "surrogatepass")
        return raw.decode("utf-8", "backslashreplace")


def _only_escapes(text: str) -> bool:
    """True when every surrogate is one ``surrogateescape`` made (U+DC80..U+DCFF)."""
    return all("\udc80" <= ch <= "\udcff" for ch in text if "\ud800" <= ch <= "\udfff")


def versioned_name(noun: str, name: Any, example: str) -> str:
    """A name of versioned things (``turbines``, ``churn-holdout``): letters, digits, ``.``,
    ``_``, ``-``; no ``/``, ``..``, spaces or ``@`` (``@`` starts the version).

    Raises:
        InvalidParameterError: naming the value and the rule.
    """
    if (
        not isinstance(name, str)
        or not _VERSIONED.fullmatch(name)
        or ".." in name
        or len(name) > MAX_NAME
    ):
        shown = (
            repr(name) if not isinstance(name, str) or len(name) <= 60 else repr(name[:60]) + "…"
        )
        raise InvalidParameterError(
            f"{noun} name {shown}: use letters, digits, '.', '_' and '-' (starting with a letter "
            f"or digit, at most {MAX_NAME} characters, no '/', '..', spaces or '@'), e.g. "
            f"{example}."
        )
    return name


def versioned_ref(noun: str, ref: Any, example: str) -> tuple[str, str]:
    """``"turbines@3"`` -> ``("turbines", "3")``; a bare name means ``latest``."""
    if not isinstance(ref, str) or not ref.strip():
        raise InvalidParameterError(
            f"{noun} reference {ref!r}: expected NAME, NAME@latest, NAME@NUMBER or NAME@DIGEST."
        )
    name, at, version = ref.strip().partition("@")
    versioned_name(noun, name, example)
    if at and not version:
        raise InvalidParameterError(
            f"{noun} reference {ref!r} ends in '@': add 'latest' or a version number, "
            f"e.g. '{name}@latest'."
        )
    return name, (version or "latest")
