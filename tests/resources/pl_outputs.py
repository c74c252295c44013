"""Steps with several outputs: via ``@step(outputs=...)`` and wrong arities."""

from __future__ import annotations

from loopml import pipeline, step


@step(outputs=("train", "test"))
def halves(n: int) -> tuple[list[int], list[int]]:
    data = list(range(n))
    return data[: n // 2], data[n // 2 :]


@step(outputs=("a", "b"))
def three_values(n: int) -> tuple[int, int, int]:
    return n, n, n


@step(outputs=("a", "b"))
def as_dict(n: int) -> dict[str, int]:
    return {"a": n, "b": -n}


@step
def total(values: list[int]) -> int:
    return sum(values)


@step
def add(x: int, y: int) -> int:
    return x + y


@pipeline
def by_attr(n: int = 6):
    parts = halves(n)
    return total(parts.train), total(parts.test)


@pipeline
def by_item(n: int = 6):
    parts = halves(n)
    return total(parts["train"]), total(parts[1])


@pipeline
def by_unpacking(n: int = 6):
    train, test = halves(n)
    return total(train), total(test)


@pipeline
def wrong_arity(n: int = 1):
    a, b = three_values(n)
    return add(a, b)


@pipeline
def dict_outputs(n: int = 4):
    out = as_dict(n)
    return add(out.a, out.b)
