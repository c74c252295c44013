"""What the store accepts, checked before anything is written, with the same limits on every backend.

Names (pipelines, runs, metric/param/tag keys, steps) must be non-empty text that fits its
column, with no NUL and no lone surrogates: SQLite would take values PostgreSQL refuses,
and a bad name found at flush time would lose a whole batch. Values (param and tag text)
may be any length; NUL is refused (PostgreSQL text cannot hold it), and lone surrogates —
what ``os.listdir`` and ``sys.argv`` return for file names that are not UTF-8 — are
escaped as ``\\xNN`` so the run still records a readable value.
"""

from __future__ import annotations

from loopml.errors import InvalidParameterError

MAX_KEY = 250
MAX_NAME = 200


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
