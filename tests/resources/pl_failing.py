"""Pipelines that fail: a raising step, an unstorable output."""

from __future__ import annotations

from loopml import pipeline, step


class Opaque:
    """No materializer handles this type."""

    def __init__(self, value: int) -> None:
        self.value = value


@step
def source(n: int) -> int:
    return n


@step
def explode(x: int) -> int:
    if x >= 0:
        raise ValueError(f"bad value {x}")
    return x


@step
def after(x: int) -> int:
    return x + 1


@step
def opaque(x: int) -> Opaque:
    return Opaque(x)


@pipeline
def fails(n: int = 3):
    return after(after(explode(source(n))))


@pipeline
def unstorable(n: int = 3):
    return after(opaque(source(n)))
