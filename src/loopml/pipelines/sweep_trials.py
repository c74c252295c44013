"""The trials of a sweep, as a stream: a grid or a random sample fixed up front, or Optuna's
TPE sampler asked for the next trial as results come in (ask-and-tell).

Every trial's parameters are checked against the pipeline's signature before anything
runs. Optuna is optional: imported only for ``strategy="optuna"``, with the install
command in the error when it is missing. Optuna's pruning (stopping a trial early from its
intermediate values) is not used: a trial always runs to its end.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from loopml.errors import InvalidParameterError
from loopml.pipelines.space import (
    Choice,
    Interval,
    IntRange,
    Space,
    as_space,
    grid,
    parse_space,
    representative,
    sample,
)
from loopml.store.status import RunStatus

if TYPE_CHECKING:
    from loopml.pipelines.pipeline import Pipeline
    from loopml.pipelines.sweep import Trial


class Trials:
    """The trials to run, as a stream: optuna's next trial depends on the results so far."""

    def __init__(
        self, fixed: list[dict[str, Any]] | None, total: int, study: _Study | None = None
    ) -> None:
        self.fixed = fixed
        self.total = total
        self.study = study
        self.asked: dict[int, Any] = {}

    def next(self, number: int) -> dict[str, Any] | None:
        if number > self.total:
            return None
        if self.fixed is not None:
            return self.fixed[number - 1]
        assert self.study is not None
        trial = self.study.ask()
        self.asked[number] = trial
        return dict(trial.params)

    def tell(self, trial: Trial) -> None:
        if self.study is None or trial.number not in self.asked:
            return
        ok = trial.status == RunStatus.SUCCEEDED and trial.value is not None
        self.study.tell(self.asked.pop(trial.number), trial.value if ok else None)


def make_trials(
    pipeline: Pipeline,
    given: Mapping[str, Any] | Sequence[str] | Sequence[Mapping[str, Any]],
    *,
    strategy: str,
    n: int | None,
    seed: int,
    metric: str | None,
) -> Trials:
    """The trials to run, each checked against the pipeline's signature before any runs."""
    if isinstance(given, str):
        given = [given]
    if isinstance(given, Mapping):
        space = as_space(given)
    elif given and all(isinstance(g, Mapping) for g in given):
        explicit = [dict(g) for g in given if isinstance(g, Mapping)]
        for params in explicit:
            pipeline.bind(**params)
        return Trials(explicit, len(explicit))
    elif all(isinstance(g, str) for g in given):
        space = parse_space(pipeline, given)  # type: ignore[arg-type]
    else:
        raise InvalidParameterError(
            f"Sweep space: got {given!r}; expected KEY=VALUES strings, a mapping of parameter "
            "to values, or a list of trials (dicts)."
        )
    if strategy != "grid" and (not isinstance(n, int) or n < 1):
        raise InvalidParameterError(
            f"Sweep strategy {strategy!r}: got n={n!r}; expected the number of trials (n ≥ 1), "
            f"e.g. --{strategy} 20."
        )
    if strategy == "grid":
        if n is not None:
            raise InvalidParameterError(
                f"Sweep strategy 'grid' runs every combination: got n={n!r}. Leave n out, or "
                "sample n trials with strategy='random' (--random N)."
            )
        fixed = grid(space)
    elif strategy == "random":
        fixed = sample(space, n or 0, seed)
    else:
        if metric is None:
            raise InvalidParameterError(
                "Sweep strategy 'optuna' needs the metric to optimize: give metric= (--metric NAME)."
            )
        pipeline.bind(**representative(space))
        return Trials(None, n or 0, _study(space, seed))
    for params in fixed:
        pipeline.bind(**params)
    return Trials(fixed, len(fixed))


def _study(space: Space, seed: int) -> _Study:
    """An Optuna study driven by ask-and-tell (TPE); the direction is applied by the caller."""
    try:
        import optuna
    except ImportError:
        raise InvalidParameterError(
            "Sweep strategy 'optuna' needs Optuna, which is not installed: pip install optuna"
        ) from None
    from optuna.distributions import (
        BaseDistribution,
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    distributions: dict[str, BaseDistribution] = {}
    for key, dim in space.items():
        if isinstance(dim, Interval):
            distributions[key] = FloatDistribution(dim.low, dim.high, log=dim.log)
        elif isinstance(dim, IntRange):
            distributions[key] = IntDistribution(dim.low, dim.high)
        elif isinstance(dim, Choice):
            if not all(v is None or isinstance(v, bool | int | float | str) for v in dim.values):
                raise InvalidParameterError(
                    f"Parameter {key!r}: Optuna chooses among None, bool, int, float and str "
                    f"values; got {list(dim.values)!r}. Use strategy='grid' or 'random'."
                )
            distributions[key] = CategoricalDistribution(list(dim.values))
    sampler = optuna.samplers.TPESampler(seed=seed)
    return _Study(optuna.create_study(sampler=sampler), distributions)


class _Study:
    """An Optuna study (minimizing: a ``max`` goal is negated) and the space's distributions.

    Asked and told from the sweep's main loop only, so Optuna is never called from two
    threads at once.
    """

    def __init__(self, study: Any, distributions: dict[str, Any]) -> None:
        self.study = study
        self.distributions = distributions
        self.negate = False

    def ask(self) -> Any:
        return self.study.ask(self.distributions)

    def tell(self, trial: Any, value: float | None) -> None:
        from optuna.trial import TrialState

        if value is None:
            self.study.tell(trial, state=TrialState.FAIL)
        else:
            self.study.tell(trial, -value if self.negate else value)
