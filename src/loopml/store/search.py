"""Turn a parsed runs filter (``store/filter.py``) and sort keys into one bound SQL query.

Every value becomes a bound parameter and every identifier comes from a fixed table,
so no filter text ever reaches SQL. Metric and param comparisons use
``runs.id IN (SELECT run_id FROM … WHERE key = ? AND value < ?)`` so the
``(key, value)`` indexes answer them; metric sorts join ``latest_metrics`` once per key.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from loopml.errors import InvalidParameterError
from loopml.store import schema as s
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

ATTRIBUTES: dict[str, Any] = {
    "status": s.runs.c.status,
    "pipeline": s.runs.c.pipeline,
    "name": s.runs.c.name,
    "id": s.runs.c.id,
    "number": s.runs.c.number,
    "started": s.runs.c.started_at,
    "ended": s.runs.c.ended_at,
    "duration": s.runs.c.duration_s,
    "cost": s.runs.c.cost,
    "executor": s.runs.c.executor,
    "host": s.runs.c.host,
    "git_commit": s.runs.c.git_commit,
}


def _compare(column: Any, op: str, value: Any) -> ColumnElement[bool]:
    if op == "~":
        # lower() on both sides: SQLite's LIKE ignores case, PostgreSQL's does not.
        return sa.func.lower(column).like(tilde_to_like(str(value)).lower(), escape="\\")
    if op in ("in", "not in"):
        expr: ColumnElement[bool] = column.in_(list(value))
        return ~expr if op == "not in" else expr
    if value is None:
        result: ColumnElement[bool] = column.is_(None) if op == "=" else column.is_not(None)
        return result
    ops = {
        "=": column.__eq__,
        "!=": column.__ne__,
        "<": column.__lt__,
        "<=": column.__le__,
        ">": column.__gt__,
        ">=": column.__ge__,
    }
    return ops[op](value)  # type: ignore[no-any-return]


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _subquery(table: Any, where: tuple[Any, ...], correlated: bool) -> ColumnElement[bool]:
    """Runs with a matching row in ``table``: an IN list, or an EXISTS probed per visited run.

    The IN list is built in full before the first row comes out; EXISTS costs one
    primary-key lookup per run visited, so it wins when the outer query walks an index
    in sort order and stops at LIMIT.
    """
    if correlated:
        return sa.exists().where(table.c.run_id == s.runs.c.id, *where)
    return s.runs.c.id.in_(sa.select(table.c.run_id).where(*where))


def _condition(node: Any, correlated: bool = False) -> ColumnElement[bool]:
    if isinstance(node, And):
        return sa.and_(_condition(node.left, correlated), _condition(node.right, correlated))
    if isinstance(node, Or):
        return sa.or_(_condition(node.left, correlated), _condition(node.right, correlated))
    if isinstance(node, Not):
        return sa.not_(_condition(node.operand, correlated))
    assert isinstance(node, Compare)
    field, op, value = node.field, node.op, node.value
    if field.kind == "attr":
        return _compare(ATTRIBUTES[field.name], op, value)
    if field.kind == "metrics":
        table = s.latest_metrics
        if value is None:  # metrics.x = null: runs without a (non-NaN) value for x
            has = _subquery(
                table, (table.c.key == field.name, table.c.value.is_not(None)), correlated
            )
            return ~has if op == "=" else has
        column = table.c.value
    elif field.kind == "params":
        table = s.params
        sample = value[0] if isinstance(value, tuple) and value else value
        column = table.c.num if _is_number(sample) else table.c.value
        if isinstance(value, bool):
            column, value = table.c.value, "true" if value else "false"
    else:
        table = s.tags
        column = table.c.value
        value = (
            tuple(str(v) for v in value)
            if isinstance(value, tuple)
            else (value if value is None else str(value))
        )
    if value is None:  # params.x = null: runs without that key
        has = _subquery(table, (table.c.key == field.name,), correlated)
        return ~has if op == "=" else has
    negate = op == "not in"
    inner = _compare(column, "in" if negate else op, value)
    matched = _subquery(table, (table.c.key == field.name, inner), correlated)
    return ~matched if negate else matched


def _conjuncts(node: Any) -> list[Any]:
    """The top-level AND terms of a parsed filter."""
    if isinstance(node, And):
        return [*_conjuncts(node.left), *_conjuncts(node.right)]
    return [node]


def _is_range_on(node: Any, field: Field) -> bool:
    numeric = _is_number(node.value) if isinstance(node, Compare) else False
    return (
        isinstance(node, Compare)
        and node.field == field
        and node.op in ("<", "<=", ">", ">=", "=")
        and numeric
    )


def build_query(
    filter: str | None = None, sort: str | None = None, *, limit: int = 100, offset: int = 0
) -> sa.Select[Any]:
    """A SELECT of run ids matching ``filter``, ordered by ``sort`` (default: newest first).

    Raises:
        FilterSyntaxError: the filter or sort text is malformed (names the position).
        InvalidParameterError: ``limit`` or ``offset`` is out of range.
    """
    if not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise InvalidParameterError(
            f"limit: got {limit!r}; expected an integer from 1 to {MAX_LIMIT}."
        )
    if not isinstance(offset, int) or offset < 0:
        raise InvalidParameterError(f"offset: got {offset!r}; expected an integer >= 0.")
    query = sa.select(s.runs.c.id).select_from(s.runs)
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
    query = query.where(*(_condition(p, correlated=bool(pushed)) for p in parts))
    order = []
    source: Any = s.runs
    for i, key in enumerate(keys):
        if key.field.kind == "attr":
            column: Any = ATTRIBUTES[key.field.name]
        else:
            table = {"metrics": s.latest_metrics, "params": s.params, "tags": s.tags}[
                key.field.kind
            ].alias(f"sort{i}")
            on = (table.c.run_id == s.runs.c.id) & (table.c.key == key.field.name)
            if (
                i == 0 and pushed
            ):  # metrics only: the pushed terms need K, so an inner join is equal
                source = source.join(table, on)
                query = query.where(*(_compare(table.c.value, p.op, p.value) for p in pushed))
            else:
                source = source.outerjoin(table, on)
            if key.field.kind == "params":  # numbers by value, then text params by text
                order.append(
                    (table.c.num.desc() if key.descending else table.c.num.asc()).nulls_last()
                )
            column = table.c.value
        order.append((column.desc() if key.descending else column.asc()).nulls_last())
    order.append(s.runs.c.started_at.desc())
    return query.select_from(source).order_by(*order).limit(limit).offset(offset)
