"""Parameter sweeps: many runs of one pipeline, grouped under a sweep id, best one reported.

Each trial is an ordinary run (``pipeline.run``) tagged ``sweep=<id>``, ``sweep_trial=<n>``
and ``sweep_strategy``, so ``loopml runs --filter "tags.sweep = 'ID'"`` finds them and
:meth:`Sweep.open` re-reads a sweep from the store alone. Up to ``parallel`` trials run at
once on threads of this process; all of them submit their steps to one executor (local
threads or a Ray cluster), made once for the sweep.

Ctrl-C stops launching trials and cancels the running ones: each trial sees its executor
through a thin ``TrialExecutor`` whose futures the sweep can fail with
``KeyboardInterrupt``, which the runner treats exactly like Ctrl-C in a single run (the run
ends ``cancelled``, unfinished steps too). A failed trial is recorded and the sweep goes on.
"""

from __future__ import annotations

import queue
import re
import secrets
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

from loopml._signals import leave_signals_to_main_thread
from loopml.errors import InvalidParameterError, LoopmlError, StepFailedError
from loopml.pipelines.space import STRATEGIES
from loopml.pipelines.sweep_executor import TrialExecutor
from loopml.pipelines.sweep_trials import Trials, make_trials
from loopml.store.status import RunStatus

if TYPE_CHECKING:
    from loopml.pipelines.pipeline import Pipeline
    from loopml.store import RunRecord
    from loopml.tracking.client import Client

Goal = Literal["min", "max"]
SweepProgress = Callable[..., None]
_ID = re.compile(r"^[A-Za-z0-9_.\-]{1,80}$")

__all__ = ["Sweep", "Trial", "latest_sweep", "open_sweep", "run_sweep"]


@dataclass(frozen=True, slots=True)
class Trial:
    """One trial of a sweep: its parameters and the run that tried them."""

    number: int
    params: dict[str, Any]
    status: str
    run_id: str | None = None
    run: str | None = None  # the run's label, ``train#12``
    value: float | None = None  # the sweep's metric in this run
    duration_s: float | None = None
    started_at: float | None = None
    ended_at: float | None = None
    error: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)


class Sweep:
    """A sweep: its id, trials (in order) and the best trial by ``metric``.

    In a notebook it shows as a table with the best trial highlighted; ``to_frame()`` gives
    a pandas DataFrame and ``to_dict()`` plain data (what ``loopml sweep --json`` prints).
    """

    def __init__(
        self,
        id: str,
        pipeline: str,
        *,
        strategy: str,
        metric: str | None = None,
        goal: Goal = "min",
        total: int | None = None,
        trials: Sequence[Trial] = (),
        seed: int | None = None,
    ) -> None:
        self.id = id
        self.pipeline = pipeline
        self.strategy = strategy
        self.metric = metric
        self.goal: Goal = goal
        self.total = total
        self.seed = seed
        self.trials = sorted(trials, key=lambda t: t.number)

    @property
    def best(self) -> Trial | None:
        """The succeeded trial with the lowest (``goal="min"``) or highest metric value."""
        scored = [t for t in self.trials if t.status == RunStatus.SUCCEEDED and t.value is not None]
        if not scored:
            return None
        pick = min if self.goal == "min" else max
        return pick(scored, key=lambda t: t.value or 0.0)  # ties: the earliest trial

    def counts(self) -> dict[str, int]:
        """Trials per status."""
        found: dict[str, int] = {}
        for t in self.trials:
            found[t.status] = found.get(t.status, 0) + 1
        return found

    def _add(self, trial: Trial) -> None:
        self.trials = sorted([*self.trials, trial], key=lambda t: t.number)

    def to_dict(self) -> dict[str, Any]:
        from loopml.pipelines.sweep_view import sweep_dict

        return sweep_dict(self)

    def to_frame(self) -> Any:
        """The trials as a pandas DataFrame: number, status, run, value, duration, params."""
        from loopml.pipelines.sweep_view import sweep_frame

        return sweep_frame(self)

    def _repr_html_(self) -> str:
        from loopml.pipelines.sweep_view import sweep_html

        return sweep_html(self)

    def __repr__(self) -> str:
        best = self.best
        told = f" best {self.metric}={best.value:.4g} ({best.run})" if best is not None else ""
        return f"<Sweep {self.id} {self.strategy} {len(self.trials)} trials{told}>"


def new_sweep_id(pipeline: str) -> str:
    """``<pipeline>-<8 hex>``: short, unique, and safe inside a runs filter."""
    name = re.sub(r"[^A-Za-z0-9_.\-]", "-", pipeline)[:40] or "sweep"
    return f"{name}-{secrets.token_hex(4)}"


def run_sweep(
    pipeline: Pipeline,
    space: Mapping[str, Any] | Sequence[str] | Sequence[Mapping[str, Any]],
    *,
    metric: str | None = None,
    goal: Goal = "min",
    strategy: str = "grid",
    n: int | None = None,
    seed: int | None = None,
    parallel: int = 1,
    workers: int | None = None,
    executor: Any = None,
    client: Client | None = None,
    cache: bool = True,
    progress: SweepProgress | None = None,
) -> Sweep:
    """Run ``pipeline`` once per trial and return the :class:`Sweep`.

    Args:
        pipeline: the ``@pipeline`` to run.
        space: ``-p``-style strings (``["alpha=0.1,1", "depth=3..8"]``), a mapping of
            parameter to values (a list, a ``range``, an ``Interval``/``IntRange``/``Choice``
            or a constant), or an explicit list of trials (dicts of parameters).
        metric: the run metric that ranks trials (``best``); optuna needs it.
        goal: ``"min"`` or ``"max"``.
        strategy: ``"grid"`` (every combination), ``"random"`` or ``"optuna"`` (``n`` trials).
        n: how many trials ``random`` and ``optuna`` run.
        seed: fixes random and optuna draws (default: a random seed, recorded on the sweep).
        parallel: how many trials run at once.
        workers: steps that may run at once on the sweep's executor
            (default: ``max(parallel, [run] workers)``).
        executor: an executor object (used as is, not shut down) or where to run:
            ``"local"``, ``"ray"``, ``"ray://HOST:PORT"`` (default: ``[run] executor``).
        client: the store to track to (default: the project's).
        cache: reuse cached step outputs.
        progress: ``progress(event, trial, sweep)`` with ``event`` ``"started"`` or ``"finished"``.

    Raises:
        InvalidParameterError: a bad space, strategy, goal or count; nothing has run.
        KeyboardInterrupt: Ctrl-C; running trials end ``cancelled`` first, and the sweep
            stays in the store (``open_sweep(id)``).

    Example:
        >>> sweep = run_sweep(train, ["alpha=0.1,1"], metric="rmse")  # doctest: +SKIP
        >>> sweep.best.params  # doctest: +SKIP
        {'alpha': 0.1}
    """
    from loopml.execution.runner import make_executor
    from loopml.tracking.client import default_client

    if strategy not in STRATEGIES:
        raise InvalidParameterError(
            f"Sweep strategy {strategy!r}: expected one of {list(STRATEGIES)}."
        )
    if goal not in ("min", "max"):
        raise InvalidParameterError(f"Sweep goal {goal!r}: expected 'min' or 'max'.")
    if not isinstance(parallel, int) or parallel < 1:
        raise InvalidParameterError(f"Sweep parallel {parallel!r}: expected an integer ≥ 1.")
    seed = secrets.randbelow(2**31) if seed is None else int(seed)
    trials_in = make_trials(pipeline, space, strategy=strategy, n=n, seed=seed, metric=metric)
    client = (client or default_client()).open()
    sweep_id = new_sweep_id(pipeline.name)
    tags = {"sweep": sweep_id, "sweep_strategy": strategy, "sweep_goal": goal}
    if metric is not None:
        tags["sweep_metric"] = metric
    sweep = Sweep(
        sweep_id,
        pipeline.name,
        strategy=strategy,
        metric=metric,
        goal=goal,
        total=trials_in.total,
        seed=seed,
    )
    own = executor is None or isinstance(executor, str)
    if own:
        size = workers or max(parallel, client.settings.workers)
        shared = make_executor(client, size, on=executor)
    else:
        shared = executor
    stop = threading.Event()
    try:
        _loop(pipeline, trials_in, sweep, shared, stop, client, tags, parallel, cache, progress)
    finally:
        if own:
            shared.shutdown()
    return sweep


# -- running --------------------------------------------------------------------------------


def _loop(
    pipeline: Pipeline,
    trials: Trials,
    sweep: Sweep,
    shared: Any,
    stop: threading.Event,
    client: Client,
    tags: dict[str, Any],
    parallel: int,
    cache: bool,
    progress: SweepProgress | None,
) -> None:
    notify = progress or (lambda *a, **k: None)
    if trials.study is not None:
        trials.study.negate = sweep.goal == "max"
    done: queue.SimpleQueue[Trial] = queue.SimpleQueue()
    running: dict[int, TrialExecutor] = {}
    number = 0
    try:
        while True:
            while len(running) < parallel and not stop.is_set():
                params = trials.next(number + 1)
                if params is None:
                    break
                number += 1
                ex = TrialExecutor(shared, stop)
                running[number] = ex
                thread = threading.Thread(
                    target=_one,
                    args=(pipeline, number, params, ex, client, tags, cache, sweep, done),
                    name=f"loopml-sweep-{number}",
                    daemon=True,
                )
                thread.start()
                notify("started", Trial(number, params, RunStatus.RUNNING), sweep)
            if not running:
                return
            try:
                trial = done.get(timeout=0.2)
            except queue.Empty:
                continue
            running.pop(trial.number, None)
            sweep._add(trial)
            trials.tell(trial)
            notify("finished", trial, sweep)
    except BaseException:
        stop.set()
        for ex in running.values():
            ex.interrupt()
        deadline = time.monotonic() + 30
        while running and time.monotonic() < deadline:
            try:
                trial = done.get(timeout=0.2)
            except queue.Empty:
                for ex in running.values():  # steps submitted since the first interrupt
                    ex.interrupt()
                continue
            running.pop(trial.number, None)
            sweep._add(trial)
            notify("finished", trial, sweep)
        raise


def _one(
    pipeline: Pipeline,
    number: int,
    params: dict[str, Any],
    executor: TrialExecutor,
    client: Client,
    tags: dict[str, Any],
    cache: bool,
    sweep: Sweep,
    done: queue.SimpleQueue[Trial],
) -> None:
    """Run one trial on this thread; always puts exactly one Trial on ``done``."""
    leave_signals_to_main_thread()
    run_id: str | None = None
    error: str | None = None
    status = RunStatus.FAILED
    try:
        run = pipeline.run(
            params,
            client=client,
            executor=executor,
            cache=cache,
            tags={**tags, "sweep_trial": number},
        )
        run_id = run.id
    except StepFailedError as exc:
        run_id, error = exc.run_id, str(exc)
    except KeyboardInterrupt:
        status, error = RunStatus.CANCELLED, "Cancelled (Ctrl-C): the sweep was stopped."
    except BaseException as exc:  # recorded on the trial; the sweep goes on
        error = f"{type(exc).__name__}: {exc}"
    trial = Trial(number, params, status, error=error)
    try:
        record = _record_of(client, sweep.id, number, run_id)
        if record is not None:
            trial = _from_record(record, sweep.metric, params=params, error=error)
    except LoopmlError as exc:
        trial = replace(trial, error=f"{error or ''} (its run could not be read: {exc})".strip())
    done.put(trial)


def _record_of(client: Client, sweep_id: str, number: int, run_id: str | None) -> RunRecord | None:
    if run_id is not None:
        return client.run_record(run_id)
    found = client.search_runs(
        f"tags.sweep = '{sweep_id}' and tags.sweep_trial = '{number}'", limit=1
    )
    return found[0] if found else None


def _from_record(
    record: RunRecord,
    metric: str | None,
    *,
    params: dict[str, Any],
    error: str | None = None,
) -> Trial:
    value = record.metrics.get(metric) if metric is not None else None
    return Trial(
        number=int(record.tags.get("sweep_trial", "0") or 0),
        params=params,
        status=str(record.status),
        run_id=record.id,
        run=record.label,
        value=value,
        duration_s=record.duration_s,
        started_at=record.started_at,
        ended_at=record.ended_at,
        error=record.error or error,
        metrics=dict(record.metrics),
    )


# -- re-opening -----------------------------------------------------------------------------


def open_sweep(
    sweep_id: str,
    *,
    client: Client | None = None,
    metric: str | None = None,
    goal: Goal | None = None,
) -> Sweep:
    """A sweep read back from the store: the runs tagged ``sweep=<sweep_id>``.

    ``metric`` and ``goal`` default to the ones the sweep ran with.

    Raises:
        NotFoundError: no run carries that sweep id (the known ids are listed).
        InvalidParameterError: the id has characters a sweep id never has.
    """
    from loopml.errors import NotFoundError, did_you_mean
    from loopml.tracking.client import default_client

    if not _ID.match(sweep_id):
        raise InvalidParameterError(
            f"Sweep id {sweep_id!r}: expected letters, digits, '_', '.' and '-' such as "
            "'train-1a2b3c4d' (printed by `loopml sweep`)."
        )
    client = client or default_client()
    records = client.search_runs(f"tags.sweep = '{sweep_id}'", limit=10_000)
    if not records:
        known = sorted(list_sweeps(client))
        raise NotFoundError(
            f"No sweep {sweep_id!r} in this store; "
            + (f"sweeps: {known[:20]}." if known else "no sweep has run here yet.")
            + did_you_mean(sweep_id, known)
        )
    first = records[0].tags
    metric = metric or first.get("sweep_metric") or None
    chosen_goal = goal or first.get("sweep_goal") or "min"
    if chosen_goal not in ("min", "max"):
        raise InvalidParameterError(f"Sweep goal {chosen_goal!r}: expected 'min' or 'max'.")
    varied = _varied([r.params for r in records])
    trials = [_from_record(r, metric, params={k: r.params.get(k) for k in varied}) for r in records]
    return Sweep(
        sweep_id,
        records[0].pipeline,
        strategy=first.get("sweep_strategy", "?"),
        metric=metric,
        goal=chosen_goal,  # type: ignore[arg-type]
        total=len(records),
        trials=trials,
    )


def latest_sweep(client: Client | None = None) -> str:
    """The id of the sweep whose newest run started last.

    Raises:
        NotFoundError: no sweep has run in this store.
    """
    from loopml.errors import NotFoundError
    from loopml.tracking.client import default_client

    found = (client or default_client()).search_runs("tags.sweep != null", "-started", limit=1)
    if not found:
        raise NotFoundError(
            "No sweep has run in this store yet; start one with loopml sweep PIPELINE -p KEY=VALUES."
        )
    return found[0].tags["sweep"]


def list_sweeps(client: Client) -> dict[str, int]:
    """Sweep ids in the store, with their number of runs."""
    found: dict[str, int] = {}
    for record in client.search_runs("tags.sweep != null", limit=10_000):
        key = record.tags.get("sweep", "")
        found[key] = found.get(key, 0) + 1
    return found


def _varied(params: list[dict[str, str]]) -> list[str]:
    """The parameters whose values differ between runs (all of them for a single run)."""
    keys = sorted({k for p in params for k in p})
    if len(params) < 2:
        return keys
    return [k for k in keys if len({p.get(k) for p in params}) > 1] or keys
