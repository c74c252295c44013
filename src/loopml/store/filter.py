"""Parse the runs filter and sort languages into a small AST.

Filters such as ``metrics.rmse < 3 and status = 'failed'`` come from users (the CLI and
``loopml.runs(filter=...)``), so they are parsed by hand into frozen dataclasses: never
``eval``-ed, never pasted into SQL. ``store/search.py`` turns the AST into SQLAlchemy with
bound parameters. Nothing here imports SQLAlchemy, so the grammar and its error messages
are tested on their own.

Grammar (keywords, prefixes and attribute names are case-insensitive; keys are not)::

    or    := and ("or" and)*
    and   := not ("and" not)*
    not   := "not" not | "(" or ")" | field op value
    field := ("metrics" | "params" | "tags") "." key | ["attributes."] attribute
    op    := = | == | != | < | <= | > | >= | ~ | ["not"] "in" "(" value ("," value)* ")"
    value := number | inf | -inf | 'text' | "text" | true | false | null

Types are checked while parsing, so an error points at the offending token: metrics,
``number``, ``duration`` and ``cost`` take numbers; the text attributes take strings;
``status`` takes one of ``STATUSES`` (lower-cased); ``started``/``ended`` take Unix seconds
or an ISO date, which becomes Unix seconds (local time when it has no zone); ``null`` goes
only with ``=``/``!=``. ``~`` matches text: a pattern without ``*`` or ``?`` matches as a
substring, otherwise as a glob over the whole value (``tilde_to_like``).
"""

from __future__ import annotations

import contextlib
import math
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, TypeAlias, cast

from loopml.errors import FilterSyntaxError, did_you_mean
from loopml.store.status import RunStatus

__all__ = [
    "ATTRIBUTES",
    "MAX_CONDITIONS",
    "MAX_DEPTH",
    "MAX_VALUES",
    "STATUSES",
    "And",
    "Compare",
    "Field",
    "Node",
    "Not",
    "Op",
    "Or",
    "Scalar",
    "SortKey",
    "Value",
    "glob_to_like",
    "parse_filter",
    "parse_sort",
    "tilde_to_like",
    "unparse",
]

Kind = Literal["metrics", "params", "tags", "attr"]
Op = Literal["=", "!=", "<", "<=", ">", ">=", "~", "in", "not in"]
Scalar: TypeAlias = float | int | str | bool | None
Value: TypeAlias = Scalar | tuple[Scalar, ...]

ATTRIBUTES = (
    "status",
    "pipeline",
    "name",
    "id",
    "number",
    "started",
    "ended",
    "duration",
    "cost",
    "executor",
    "host",
    "git_commit",
)
STATUSES = tuple(sorted(str(s) for s in RunStatus))
MAX_DEPTH = 100  # nested '(' and 'not': keeps recursion far below Python's limit
MAX_CONDITIONS = 100  # keeps the And/Or tree, and the SQL built from it, shallow
MAX_VALUES = 1000  # values in one 'in (...)' list

_ALIASES = {"run_id": "id"}
_PREFIXES = {"metrics": "rmse", "params": "alpha", "tags": "team", "attributes": "status"}
_KINDS: dict[str, Kind] = {"metrics": "metrics", "params": "params", "tags": "tags"}
_HOLDS = {
    "number": "numbers",
    "duration": "numbers",
    "cost": "numbers",
    "started": "timestamps",
    "ended": "timestamps",
}  # other attributes hold text
_KEYWORDS = frozenset({"and", "or", "not", "in", "true", "false", "null", "inf"})
_CONSTANTS: dict[str, Scalar] = {"true": True, "false": False, "null": None, "inf": math.inf}
_SYMBOLS = ("<>", "=<", "=>", "==", "!=", "<=", ">=", "=", "<", ">", "~", "!")  # longest first
_OPS: dict[str, Op] = {
    "==": "=",
    "!=": "!=",
    "<=": "<=",
    ">=": ">=",
    "=": "=",
    "<": "<",
    ">": ">",
    "~": "~",
}
_BAD_OPS = {"<>": "'!='", "=<": "'<='", "=>": "'>='", "!": "'!=' or 'not'"}
_OP_HINTS = {"like": " Use '~' (substring, or glob with * and ?).", "is": " Use '= null'."}
_EQUALITY = ("=", "!=", "in", "not in")
_ESCAPES = {"\\": "\\", "'": "'", '"': '"', "`": "`", "n": "\n", "t": "\t", "r": "\r"}
_NUMBER = re.compile(r"-?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)
_WORD = re.compile(r"[^\W\d]\w*")
_KEY = re.compile(r"[\w\-/:.]+")  # a bare key; anything else is quoted
_TAIL = re.compile(r"[\w.]+")


class _Printable:
    """Gives the filter nodes ``str(node) == unparse(node)``."""

    __slots__ = ()

    def __str__(self) -> str:
        return unparse(cast("Node", self))


@dataclass(frozen=True, slots=True)
class Field:
    """A run field: ``Field("metrics", "val/loss")`` or ``Field("attr", "status")``."""

    kind: Kind
    name: str

    def __str__(self) -> str:
        if self.kind == "attr":
            return self.name
        bare = _KEY.fullmatch(self.name)
        return f"{self.kind}.{self.name if bare else _quote(self.name, '`')}"


@dataclass(frozen=True, slots=True)
class Compare(_Printable):
    """``field op value``: ``value`` is a tuple for ``in``/``not in`` and ``None`` for null."""

    field: Field
    op: Op
    value: Value


@dataclass(frozen=True, slots=True)
class And(_Printable):
    """Both sides hold."""

    left: Node
    right: Node


@dataclass(frozen=True, slots=True)
class Or(_Printable):
    """Either side holds."""

    left: Node
    right: Node


@dataclass(frozen=True, slots=True)
class Not(_Printable):
    """The operand does not hold."""

    operand: Node


@dataclass(frozen=True, slots=True)
class SortKey:
    """One sort key; ``str()`` is ``-metrics.rmse`` when descending."""

    field: Field
    descending: bool = False

    def __str__(self) -> str:
        return f"{'-' if self.descending else ''}{self.field}"


Node: TypeAlias = Compare | And | Or | Not
_STATUS = Field("attr", "status")


def parse_filter(text: str) -> Node:
    """Parse a runs filter into an AST; ``a or b and c`` is ``Or(a, And(b, c))``.

    Args:
        text: e.g. ``"metrics.rmse < 3 and params.alpha >= 0.1"``.

    Raises:
        FilterSyntaxError: the text is empty, malformed or ill-typed; names the position.

    Example:
        >>> parse_filter("status == 'FAILED'")
        Compare(field=Field(kind='attr', name='status'), op='=', value='failed')
    """
    p = _Parser(text, "filter")
    if p.tok.kind == "end":
        raise p.error("Empty filter: write a condition such as metrics.rmse < 3", 0)
    node = p.parse_or()
    if p.tok.kind == ")":
        raise p.error("Unmatched ')': no '(' opened it", p.tok.pos)
    if p.tok.kind != "end":
        raise p.error(
            f"Unexpected text {p.tok.text!r} after a complete filter; join "
            "conditions with 'and' or 'or'",
            p.tok.pos,
        )
    return node


def parse_sort(text: str) -> list[SortKey]:
    """Parse comma-separated sort keys, ascending unless ``-`` or ``desc`` says otherwise.

    Args:
        text: e.g. ``"-metrics.rmse"``, ``"metrics.rmse desc, started asc"``, ``"+params.alpha"``;
            empty text gives ``[]``.

    Raises:
        FilterSyntaxError: a key is malformed, unknown or repeated; names the position.
    """
    p = _Parser(text, "sort")
    keys: list[SortKey] = []
    while p.tok.kind != "end":
        if keys and p.tok.kind != ",":
            raise p.error(
                f"Expected ',', 'asc' or 'desc' after {p.prev_text!r} but {p.found()}", p.tok.pos
            )
        if keys:
            p.advance()
        sign = p.advance() if p.tok.kind == "sign" else None
        start = p.tok
        field = p.parse_field("a field to sort by")
        descending = sign is not None and sign.text == "-"
        if p.is_kw("asc") or p.is_kw("desc"):
            if sign is not None:
                raise p.error(f"Use either {sign.text!r} or {p.tok.text!r}, not both", p.tok.pos)
            descending = p.advance().text.lower() == "desc"
        if any(key.field == field for key in keys):
            raise p.error(f"{field} appears twice in the sort", start.pos)
        keys.append(SortKey(field, descending))
    return keys


def unparse(node: Node) -> str:
    """Print ``node`` canonically; ``parse_filter(unparse(node)) == node`` for valid nodes."""
    if isinstance(node, Compare):
        if isinstance(node.value, tuple):
            return f"{node.field} {node.op} ({', '.join(map(_literal, node.value))})"
        return f"{node.field} {node.op} {_literal(node.value)}"
    if isinstance(node, Not):
        nots, inner = 0, cast(Node, node)
        while isinstance(inner, Not):  # loops, not recursion, along chains
            nots, inner = nots + 1, inner.operand
        return "not " * nots + _wrap(inner, _precedence(inner) < 3)
    cls, word = (And, " and ") if isinstance(node, And) else (Or, " or ")
    rights: list[Node] = []
    left: Node = node
    while isinstance(left, cls):
        rights.append(left.right)
        left = left.left
    parts = [_wrap(left, _precedence(left) < _precedence(node))]
    parts += [_wrap(right, _precedence(right) <= _precedence(node)) for right in reversed(rights)]
    return word.join(parts)


def glob_to_like(pattern: str) -> str:
    r"""Turn a glob (``*``, ``?``) into a SQL LIKE pattern for ``ESCAPE '\'``.

    Example:
        >>> glob_to_like("lr_0.1*")
        'lr\\_0.1%'
    """
    table = {"*": "%", "?": "_", "%": "\\%", "_": "\\_", "\\": "\\\\"}
    return "".join(table.get(c, c) for c in pattern)


def tilde_to_like(pattern: str) -> str:
    r"""The LIKE pattern (``ESCAPE '\'``) for ``field ~ pattern``: a substring unless globbed.

    Example:
        >>> tilde_to_like("adam"), tilde_to_like("adam*")
        ('%adam%', 'adam%')
    """
    like = glob_to_like(pattern)
    return like if "*" in pattern or "?" in pattern else f"%{like}%"


def _quote(text: str, quote: str) -> str:
    table = {ord("\\"): "\\\\", ord(quote): "\\" + quote, 10: "\\n", 9: "\\t", 13: "\\r"}
    return quote + text.translate(table) + quote


def _literal(value: Scalar) -> str:
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    if isinstance(value, str):
        return _quote(value, "'")
    if isinstance(value, float) and math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return repr(value)


def _precedence(node: Node) -> int:
    return 1 if isinstance(node, Or) else 2 if isinstance(node, And) else 3


def _wrap(node: Node, parens: bool) -> str:
    return f"({unparse(node)})" if parens else unparse(node)


class _Parser:
    """Recursive descent with one token of lookahead over ``_Lexer``.

    A token is checked before the next one is lexed, so the first mistake in reading order
    is the one reported.
    """

    def __init__(self, text: str, noun: str) -> None:
        self.lexer, self.noun, self.depth, self.conditions = _Lexer(text), noun, 0, 0
        self.error = self.lexer.error
        self.prev: _Token | None = None
        self.tok = self.lexer.next()

    @property
    def prev_text(self) -> str:
        return self.prev.text if self.prev else ""

    def advance(self) -> _Token:
        self.prev, self.tok = self.tok, self.lexer.next()
        return self.prev

    def is_kw(self, word: str) -> bool:
        tok = self.tok
        return tok.kind == "word" and tok.key is None and tok.text.lower() == word

    def found(self) -> str:
        if self.tok.kind == "end":
            return f"the {self.noun} ended"
        text = self.tok.text
        return f"found {text}" if self.tok.kind == "string" else f"found {text!r}"

    def nest(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.error(
                f"Too deeply nested: more than {MAX_DEPTH} levels of '(' and 'not'", self.tok.pos
            )
        self.advance()

    def parse_or(self) -> Node:
        node = self.parse_and()
        while self.is_kw("or"):
            self.advance()
            node = Or(node, self.parse_and())
        return node

    def parse_and(self) -> Node:
        node = self.parse_not()
        while self.is_kw("and"):
            self.advance()
            node = And(node, self.parse_not())
        return node

    def parse_not(self) -> Node:
        nots = 0
        while self.is_kw("not"):  # a loop, not recursion, so 'not not ...' stays flat
            self.nest()
            nots += 1
        node = self.parse_primary()
        for _ in range(nots):
            node = Not(node)
        self.depth -= nots
        return node

    def parse_primary(self) -> Node:
        if self.tok.kind != "(":
            return self.parse_compare()
        opened = self.tok
        self.nest()
        node = self.parse_or()
        self.close(opened, "'and', 'or'")
        self.depth -= 1
        return node

    def close(self, opened: _Token, expected: str) -> None:
        if self.tok.kind == "end":
            raise self.error("Unclosed '(': add a ')' for the '(' opened", opened.pos)
        if self.tok.kind != ")":
            raise self.error(
                f"Expected {expected} or ')' to close the '(' opened at position "
                f"{opened.pos} but {self.found()}",
                self.tok.pos,
            )
        self.advance()

    def parse_compare(self) -> Compare:
        start = self.tok
        field = self.parse_field("a condition")
        self.conditions += 1
        if self.conditions > MAX_CONDITIONS:
            raise self.error(
                f"Too many conditions: a filter holds at most {MAX_CONDITIONS}; "
                "combine values with 'in (...)'",
                start.pos,
            )
        tok = self.tok
        if tok.kind == "op":
            self.advance()
            return Compare(field, _OPS[tok.text], self.parse_value(field, _OPS[tok.text], tok))
        if not (self.is_kw("in") or self.is_kw("not")):
            hint = _OP_HINTS.get(tok.text.lower(), "") if tok.kind == "word" else ""
            raise self.error(
                f"Expected an operator (=, !=, <, <=, >, >=, ~, in, not in) after "
                f"{self.prev_text!r} but {self.found()}.{hint}",
                tok.pos,
            )
        self.advance()
        op: Op = "in" if tok.text.lower() == "in" else "not in"
        if op == "not in" and not self.is_kw("in"):
            raise self.error(f"Expected 'in' after 'not' but {self.found()}", self.tok.pos)
        if op == "not in":
            self.advance()
        opened = self.tok
        if opened.kind != "(":
            raise self.error(
                f"Expected '(' after 'in' but {self.found()}; write e.g. "
                "status in ('failed', 'crashed')",
                opened.pos,
            )
        self.advance()
        if self.tok.kind == ")":
            raise self.error("Expected at least one value in the list", self.tok.pos)
        values = [self.parse_value(field, op, opened)]
        while self.tok.kind == "," and len(values) < MAX_VALUES:
            self.advance()
            values.append(self.parse_value(field, op, opened))
        if self.tok.kind == ",":
            raise self.error(f"Too many values: a list holds at most {MAX_VALUES}", self.tok.pos)
        self.close(opened, "','")
        return Compare(field, op, tuple(values))

    def parse_field(self, what: str) -> Field:
        tok, head = self.tok, str(self.tok.value).lower()
        if tok.kind != "word" or (tok.key is None and head in _KEYWORDS):
            after = f" after {self.prev_text!r}" if self.prev else ""
            raise self.error(f"Expected {what}{after} but {self.found()}", tok.pos)
        if tok.key is None and head in _PREFIXES:
            raise self.error(
                f"Expected '.' and a key after {tok.text!r}, e.g. {head}.{_PREFIXES[head]}",
                tok.pos + len(tok.text),
            )
        if tok.key is None or head == "attributes":
            name, pos = (tok.text, tok.pos) if tok.key is None else (tok.key, tok.key_pos)
            field = Field("attr", _ALIASES.get(name.lower(), name.lower()))
            if field.name not in ATTRIBUTES:
                hint = did_you_mean(name.lower(), [*ATTRIBUTES, *_ALIASES]) or (
                    f" For a logged value write metrics.{name}, params.{name} or tags.{name}."
                )
                raise self.error(
                    f"Unknown attribute {name!r}.{hint} Valid attributes: {', '.join(ATTRIBUTES)}",
                    pos,
                )
        elif head not in _KINDS:
            raise self.error(
                f"Unknown field prefix {tok.value!r} in {tok.text!r}."
                f"{did_you_mean(head, _PREFIXES)} Fields are metrics.<key>, "
                "params.<key>, tags.<key> or an attribute such as status",
                tok.pos,
            )
        elif not tok.key:
            raise self.error(f"Expected a key after '{tok.value}.'", tok.key_pos)
        else:
            field = Field(_KINDS[head], tok.key)
        self.advance()
        return field

    def parse_value(self, field: Field, op: Op, op_tok: _Token) -> Scalar:
        tok = self.tok
        if tok.kind in ("number", "string"):
            value = tok.value
        elif tok.kind == "word" and tok.key is None and tok.text.lower() in _CONSTANTS:
            value = _CONSTANTS[tok.text.lower()]
        else:
            bare = tok.kind == "word" and tok.text.lower() not in _KEYWORDS
            hint = f"; quote text values: {_quote(tok.text, chr(39))}" if bare else ""
            raise self.error(
                f"Expected a value after {self.prev_text!r} but {self.found()}{hint}", tok.pos
            )
        value = self.check(field, op, value, tok, op_tok)
        self.advance()
        return value

    def check(self, field: Field, op: Op, value: Scalar, tok: _Token, op_tok: _Token) -> Scalar:
        """Apply the type rules to one value; return it normalised (status case, dates)."""
        holds = "numbers" if field.kind == "metrics" else "any" if field.kind != "attr" else None
        holds = holds or _HOLDS.get(field.name, "text")
        got, is_number = _literal(value), isinstance(value, int | float)
        is_number = is_number and not isinstance(value, bool)
        if value is None and op in ("in", "not in"):
            raise self.error("null cannot be in a list; use '= null' or '!= null'", tok.pos)
        if value is None and op not in ("=", "!="):
            raise self.error(f"null can only be compared with = or !=, not {op!r}", tok.pos)
        if op == "~" and not isinstance(value, str):
            raise self.error(f"'~' needs a quoted text pattern such as 'adam*', got {got}", tok.pos)
        if op == "~" and holds in ("numbers", "timestamps"):
            raise self.error(
                f"'~' matches text, but {field} holds {holds}; use =, !=, <, <=, > or >=",
                op_tok.pos,
            )
        if value is None or op == "~":
            return value
        if holds == "numbers" and not is_number:
            hint = f"; remove the quotes: {value}" if _NUMBER.fullmatch(str(value)) else ""
            raise self.error(
                f"{field} holds numbers: got {got}; expected a number such as 3 or 0.5{hint}",
                tok.pos,
            )
        if holds == "text" and not isinstance(value, str):
            raise self.error(
                f"{field} holds text: got {got}; expected a quoted string such as 'abc'", tok.pos
            )
        if holds == "timestamps" and not is_number:
            with contextlib.suppress(ValueError, OverflowError, OSError):
                return datetime.fromisoformat(str(value)).timestamp()
            raise self.error(
                f"{field} holds timestamps: got {got}; expected Unix seconds or "
                "an ISO date such as '2024-05-01' or '2024-05-01T12:00:00+00:00'",
                tok.pos,
            )
        if isinstance(value, bool) and op not in _EQUALITY:
            raise self.error(
                f"{got} can only be compared with =, !=, in or not in, not {op!r}", tok.pos
            )
        if field != _STATUS:
            return value
        status = str(value).lower()
        if status not in STATUSES:
            raise self.error(
                f"Invalid status {value!r}.{did_you_mean(status, STATUSES)} Valid "
                f"statuses: {', '.join(STATUSES)}",
                tok.pos,
            )
        return status


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # word, number, string, op, sign, "(", ")", ",", end
    pos: int
    text: str
    value: Scalar = None  # the number or string; for a word, the part before any dot
    key: str | None = None  # the key of a ``prefix.key`` word
    key_pos: int = 0


class _Lexer:
    """Splits filter and sort text into tokens, one at a time."""

    def __init__(self, text: str) -> None:
        self.text, self.i = text, 0

    def error(self, message: str, pos: int) -> FilterSyntaxError:
        return FilterSyntaxError(message, text=self.text, position=pos)

    def next(self) -> _Token:
        text, i = self.text, self.i
        while i < len(text) and text[i].isspace():
            i += 1
        c, after = text[i : i + 1], _WORD.match(text, i + 1)
        inf = after and after.group().lower() == "inf" and text[after.end() :][:1] != "."
        symbol = next((s for s in _SYMBOLS if text.startswith(s, i)), None)
        if not c or c in "(),":
            tok = _Token(c or "end", i, c)
        elif c in "'\"":
            value, end = self.quoted(i)
            tok = _Token("string", i, text[i:end], value)
        elif number := _NUMBER.match(text, i):
            tok = self.number(number.group(), i)
        elif c == "-" and after and inf:
            tok = _Token("number", i, text[i : after.end()], -math.inf)
        elif c in "+-":
            tok = _Token("sign", i, c)
        elif symbol in _BAD_OPS:
            raise self.error(f"Unknown operator {symbol!r}; use {_BAD_OPS[symbol]}", i)
        elif symbol:
            tok = _Token("op", i, symbol)
        elif word := _WORD.match(text, i):
            tok = self.word(word.group(), i)
        else:
            hint = "; backticks quote keys, as in metrics.`my key`" if c == "`" else ""
            raise self.error(f"Unexpected character {c!r}{hint}", i)
        self.i = tok.pos + len(tok.text)
        return tok

    def number(self, literal: str, start: int) -> _Token:
        if tail := _TAIL.match(self.text, start + len(literal)):
            raise self.error(f"Invalid number {self.text[start : tail.end()]!r}", start)
        try:
            value: Scalar = float(literal) if any(c in ".eE" for c in literal) else int(literal)
        except ValueError:  # more digits than int() accepts
            raise self.error("Number too long", start) from None
        return _Token("number", start, literal, value)

    def word(self, head: str, start: int) -> _Token:
        text, end = self.text, start + len(head)
        if text[end : end + 1] != ".":
            return _Token("word", start, head, head)
        key_pos = end + 1
        if text[key_pos : key_pos + 1] in ("'", '"', "`"):
            key, end = self.quoted(key_pos)
        else:
            bare = _KEY.match(text, key_pos)
            end = bare.end() if bare else key_pos
            key = text[key_pos:end]
        return _Token("word", start, text[start:end], head, key, key_pos)

    def quoted(self, start: int) -> tuple[str, int]:
        text, quote, out, i = self.text, self.text[start], list[str](), start + 1
        while i < len(text) and text[i] != quote:
            if text[i] == "\\" and text[i + 1 : i + 2] not in _ESCAPES:
                if i + 1 == len(text):
                    break
                raise self.error(
                    f"Unknown escape '\\{text[i + 1]}' in a string; valid escapes "
                    "are \\\\, \\', \\\", \\`, \\n, \\t and \\r",
                    i,
                )
            out.append(_ESCAPES[text[i + 1]] if text[i] == "\\" else text[i])
            i += 2 if text[i] == "\\" else 1
        if i >= len(text) or text[i] != quote:
            raise self.error(
                f"Unterminated string: no closing {quote} for the string starting", start
            )
        return "".join(out), i + 1
