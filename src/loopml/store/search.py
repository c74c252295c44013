"""Turn a parsed runs filter (``store/filter.py``) and sort keys into one bound SQL query.

Every value becomes a bound parameter and every identifier comes from a fixed table,
so no filter text ever reaches SQL. Metric and param comparisons use
``runs.id IN (SELECT run_id FROM … WHERE key = ? AND value < ?)`` so the
``(key, value)`` indexes answer them; metric sorts join ``latest_metrics`` once per key.
The SQL is written by hand (placeholders ``?``, see ``engine.Tx``): both backends accept
the same text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from loopml.errors import InvalidParameterError
from loopml.store.filter import (
    And,
    Compare,
    Field,
    Not,
    Or,
    SortKey,
    parse_filter,
    parse_sort,
    tilde_to_like,
)

MAX_LIMIT = 10_000

ATTRIBUTES: dict[str, str] = {
    "status": "runs.status",
    "pipeline": "runs.pipeline",
    "name": "runs.name",
    "id": "runs.id",
    "number": "runs.number",
    "started": "runs.started_at",
    "ended": "runs.ended_at",
    "duration": "runs.duration_s",
    "cost": "runs.cost",
    "executor": "runs.executor",
    "host": "runs.host",
    "git_commit": "runs.git_commit",
}
_TABLES = {"metrics": "latest_metrics", "params": "params", "tags": "tags"}
_OPS = {"=": "=", "!=": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}


@dataclass
class Query:
    """SQL text with ``?`` placeholders and its parameters."""

    sql: str
    params: list[Any] = field(default_factory=list)


class _Builder:
    def __init__(self) -> None:
        self.params: list[Any] = []
        self.aliases = 0

    def bind(self, value: Any) -> str:
        self.params.append(value)
        return "?"

    def alias(self, prefix: str) -> str:
        self.aliases += 1
        return f"{prefix}{self.aliases}"

    def compare(self, column: str, op: str, value: Any) -> str:
        if op == "~":
            # lower() on both sides: SQLite's LIKE ignores case, PostgreSQL's does not.
            pattern = tilde_to_like(str(value)).lower()
            return f"lower({column}) LIKE {self.bind(pattern)} ESCAPE '\\'"
        if op in ("in", "not in"):
            values = list(value)
            if not values:
                return "1 = 0" if op == "in" else "1 = 1"
            inner = ", ".join(self.bind(v) for v in values)
            return f"{column} {'NOT IN' if op == 'not in' else 'IN'} ({inner})"
        if value is None:
            return f"{column} IS NULL" if op == "=" else f"{column} IS NOT NULL"
        return f"{column} {_OPS[op]} {self.bind(value)}"

    def has_row(self, table: str, where: list[str], correlated: bool) -> str:
        """Runs with a matching row: an IN list, or an EXISTS probed per visited run.

        The IN list is built in full before the first row comes out; EXISTS costs one
        primary-key lookup per run visited, so it wins when the outer query walks an index
        in sort order and stops at LIMIT.
        """
        t = self.alias("f")
        conditions = " AND ".join(w.replace("$", t) for w in where)
        if correlated:
            return f"EXISTS (SELECT 1 FROM {table} {t} WHERE {t}.run_id = runs.id AND {conditions})"
        return f"runs.id IN (SELECT {t}.run_id FROM {table} {t} WHERE {conditions})"

    def condition(self, node: Any, correlated: bool) -> str:
        if isinstance(node, And):
            return f"({self.condition(node.left, correlated)} AND {self.condition(node.right, correlated)})"
        if isinstance(node, Or):
            return f"({self.condition(node.left, correlated)} OR {self.condition(node.right, correlated)})"
        if isinstance(node, Not):
            return f"NOT ({self.condition(node.operand, correlated)})"
        assert isinstance(node, Compare)
        fld, op, value = node.field, node.op, node.value
        if fld.kind == "attr":
            return self.compare(ATTRIBUTES[fld.name], op, value)
        table = _TABLES[fld.kind]
        key = f"$.key = {self.bind(fld.name)}"
        if fld.kind == "metrics":
            if value is None:  # metrics.x = null: runs without a (non-NaN) value for x
                has = self.has_row(table, [key, "$.value IS NOT NULL"], correlated)
                return f"NOT {has}" if op == "=" else has
            column = "$.value"
        elif fld.kind == "params":
            sample = value[0] if isinstance(value, tuple) and value else value
            column = "$.num" if _is_number(sample) else "$.value"
            if isinstance(value, bool):
                column, value = "$.value", "true" if value else "false"
        else:
            column = "$.value"
            value = (
                tuple(str(v) for v in value)
                if isinstance(value, tuple)
                else (value if value is None else str(value))
            )
        if value is None:  # params.x = null: runs without that key
            has = self.has_row(table, [key], correlated)
            return f"NOT {has}" if op == "=" else has
        negate = op == "not in"
        inner = self.compare(column, "in" if negate else op, value)
        matched = self.has_row(table, [key, inner], correlated)
        return f"NOT {matched}" if negate else matched


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _conjuncts(node: Any) -> list[Any]:
    """The top-level AND terms of a parsed filter."""
    if isinstance(node, And):
        return [*_conjuncts(node.left), *_conjuncts(node.right)]
    return [node]


def _is_range_on(node: Any, fld: Field) -> bool:
    return (
        isinstance(node, Compare)
        and node.field == fld
        and node.op in ("<", "<=", ">", ">=", "=")
        and _is_number(node.value)
    )


def _order(column: str, descending: bool) -> str:
    return f"{column} {'DESC' if descending else 'ASC'} NULLS LAST"


#: A filter term with fewer matching rows than this is "selective": its IN list is small.
PROBE_ROWS = 2000
#: Past this many rows (offset + limit), walking the runs in sort order is not worth trying.
WALK_MAX_ROWS = 1000


def probes(
    filter: str | None, sort: str | None, *, limit: int = 100, offset: int = 0
) -> list[Query | None] | None:
    """Per top-level filter term, a query that counts (up to :data:`PROBE_ROWS`) its rows
    when an index answers it (else None); None in all when walking cannot help.

    Sorted by start time (the default), a page can come two ways: walk ``runs`` newest
    first through the ``started_at`` index, checking each run's terms, and stop at the
    limit (fast when matches are common: 100 matches among 30,000 are found after ~300
    runs), or build each term's full IN list first (fast when matches are rare). Either
    way costs up to seconds on 100,000 runs when it is the wrong one. A term whose probe
    stops short of ``PROBE_ROWS`` is selective, so its IN list is small: see
    :func:`walks`. Call it after ``build_query`` has accepted the same text.
    """
    keys = parse_sort(sort) if sort and sort.strip() else None
    parts = _conjuncts(parse_filter(filter)) if filter and filter.strip() else []
    if keys is not None and keys[0].field != Field("attr", "started"):
        return None
    if not parts or offset + limit > WALK_MAX_ROWS:
        return None
    queries: list[Query | None] = []
    for part in parts:
        queries.append(None)
        if not isinstance(part, Compare) or part.op not in ("<", "<=", ">", ">=", "="):
            continue
        if part.field.kind not in ("metrics", "params") or not _is_number(part.value):
            continue  # only (key, value) and (key, num) are indexed
        b = _Builder()
        column = "value" if part.field.kind == "metrics" else "num"
        queries[-1] = Query(
            f"SELECT COUNT(*) FROM (SELECT 1 FROM {_TABLES[part.field.kind]} "
            f"WHERE key = {b.bind(part.field.name)} AND {b.compare(column, part.op, part.value)} "
            f"LIMIT {b.bind(PROBE_ROWS)}) AS probe",
            b.params,
        )
    return queries


def walks(counts: list[int | None]) -> list[bool]:
    """Per term: check it per run (EXISTS) unless its probe found it selective.

    A selective term becomes a small IN list that drives the query; the others are checked
    per run of it. With none selective the query walks the runs in sort order. Terms
    without a probe (text params, tags, ``or``) cost a scan of their key's rows as an IN
    list, never less than the walk's checks, so they are always checked per run.
    """
    return [n is None or n >= PROBE_ROWS for n in counts]


def build_query(
    filter: str | None = None,
    sort: str | None = None,
    *,
    limit: int = 100,
    offset: int = 0,
    walk: list[bool] | None = None,
) -> Query:
    """A SELECT of run ids matching ``filter``, ordered by ``sort`` (default: newest first).

    ``walk``: per top-level filter term, check it per run (EXISTS) instead of as an IN
    list (see :func:`probes`); ignored when a metric sort takes a range term.

    Raises:
        FilterSyntaxError: the filter or sort text is malformed (names the position).
        InvalidParameterError: ``limit`` or ``offset`` is out of range.
    """
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise InvalidParameterError(
            f"limit: got {limit!r}; expected an integer from 1 to {MAX_LIMIT}."
        )
    if isinstance(offset, bool) or not isinstance(offset, int) or not 0 <= offset <= 2**62:
        raise InvalidParameterError(f"offset: got {offset!r}; expected an integer >= 0.")
    b = _Builder()
    keys: list[SortKey] = (
        parse_sort(sort) if sort and sort.strip() else [SortKey(Field("attr", "started"), True)]
    )
    parts = _conjuncts(parse_filter(filter)) if filter and filter.strip() else []
    # Sorted by metrics.K with a numeric range on metrics.K in the filter: filter K on the
    # sort join, so SQLite walks the (key, value) index in sort order and stops at LIMIT,
    # checking the other terms per run (EXISTS) instead of building their full IN lists.
    first = keys[0].field
    pushed = [p for p in parts if first.kind == "metrics" and _is_range_on(p, first)]
    parts = [p for p in parts if p not in pushed]
    joins: list[str] = []
    order: list[str] = []
    for i, key in enumerate(keys):
        if key.field.kind == "attr":
            order.append(_order(ATTRIBUTES[key.field.name], key.descending))
            continue
        t = f"sort{i}"
        on = f"{t}.run_id = runs.id AND {t}.key = {b.bind(key.field.name)}"
        if i == 0 and pushed:  # metrics only: the pushed terms need K, so an inner join is equal
            joins.append(f"JOIN {_TABLES[key.field.kind]} {t} ON {on}")
        else:
            joins.append(f"LEFT JOIN {_TABLES[key.field.kind]} {t} ON {on}")
        if key.field.kind == "params":  # numbers by value, then text params by text
            order.append(_order(f"{t}.num", key.descending))
        order.append(_order(f"{t}.value", key.descending))
    where = [b.compare("sort0.value", p.op, p.value) for p in pushed]
    flags = walk if walk is not None and not pushed and len(walk) == len(parts) else None
    where += [
        b.condition(p, correlated=bool(pushed) or (flags is not None and flags[i]))
        for i, p in enumerate(parts)
    ]
    order.append("runs.started_at DESC")
    sql = (
        "SELECT runs.id FROM runs "
        + " ".join(joins)
        + (f" WHERE {' AND '.join(where)}" if where else "")
        + f" ORDER BY {', '.join(order)} LIMIT {b.bind(limit)} OFFSET {b.bind(offset)}"
    )
    return Query(sql, b.params)
