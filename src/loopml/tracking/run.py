"""``Run``: one execution, live (logging) or finished (reading), in Python and notebooks.

A live run owns a lease token, a :class:`BatchWriter` and a slot in its client's
heartbeat; a finished run is a view over the store. Both are the same class, so
``run = train(alpha=0.5)`` and ``with loopml.start_run() as run`` give the same object.
``Run.attach`` gives another process (an executor's worker, a distributed training
job) a handle that logs into a run it does not own.
"""

from __future__ import annotations

import logging
import math
import os
import platform
import socket
import time
import traceback
from types import TracebackType
from typing import TYPE_CHECKING, Any

from loopml._process import owner_token
from loopml.errors import (
    LeaseLostError,
    LoopmlError,
    NotFoundError,
    did_you_mean,
)
from loopml.store import MetricPoint, RunRecord, RunStatus, StepRunRecord
from loopml.store.runs import insert_environment
from loopml.tracking.context import _active
from loopml.tracking.cost import Usage, run_cost
from loopml.tracking.environment import environments
from loopml.tracking.writer import BatchWriter, _describe

if TYPE_CHECKING:
    from loopml.store.engine import Tx
    from loopml.tracking.client import Client

LEASE_FACTOR = 2.5
log = logging.getLogger("loopml")


class Run:
    """A run in the store. Live runs log; every run reads.

    Attributes read from the store (``status``, ``params``, ``metrics``, ``tags``) are
    fresh on each access.
    """

    def __init__(self, client: Client, run_id: str, *, token: str | None = None) -> None:
        self.client = client
        self.id = run_id
        self._token = token
        self._writer = (
            BatchWriter(client.metadata, run_id, nudge=client.heartbeat.nudge) if token else None
        )
        self._ctx_token: Any = None
        self._started = self.started_monotonic = time.monotonic()
        self._started_cpu = time.process_time()
        self._env_digest: str | None = None
        self._git: dict[str, Any] | None = None
        self._lost: LeaseLostError | None = None
        self._ended = False
        self.heartbeat_seconds = client.settings.heartbeat_seconds
        self.pipeline = ""
        self.number = 0

    # -- creating -------------------------------------------------------------------------

    @classmethod
    def start(
        cls,
        client: Client,
        pipeline: str,
        *,
        name: str | None = None,
        kind: str = "pipeline",
        executor: str = "local",
    ) -> Run:
        """Create a live run: stored as ``running``, heartbeating, with its environment."""
        captured = environments.peek(client.settings.root)
        env, git = captured if captured is not None else (None, None)
        git_row = client.git_row(git) if git is not None else None
        new, token = client.metadata.runs.create(
            pipeline=pipeline,
            name=name,
            kind=kind,
            host=socket.gethostname(),
            pid=os.getpid(),
            owner=owner_token(),
            executor=executor,
            lease_s=client.settings.heartbeat_seconds * LEASE_FACTOR,
            python_version=platform.python_version(),
            environment=env,
            git=git_row,
        )
        run = cls(client, new.id, token=token)
        run.pipeline, run.number = pipeline, new.number
        if env is not None:
            run._env_digest = env.digest
            run._git = git_row
        client.heartbeat.register(run)
        return run

    @classmethod
    def attach(cls, client: Client, run_id: str) -> Run:
        """A logging handle on a run another process owns (an executor's worker, a DDP rank).

        It logs and flushes; only the owner heartbeats and ends the run. Writes are refused
        once the run has ended.

        Raises:
            NotFoundError: no run has that id.
            LeaseLostError: the run is not running.
        """
        run = cls(client, client.metadata.runs.resolve(run_id))
        status = run.record.status
        if status != RunStatus.RUNNING:
            raise LeaseLostError(
                f"Run {run.label} is {status}; only a running run can be attached to."
            )
        run._writer = BatchWriter(client.metadata, run.id, nudge=client.heartbeat.nudge)
        return run

    # -- live logging ---------------------------------------------------------------------

    @property
    def live(self) -> bool:
        return self._writer is not None and not self._ended

    def _require_live(self) -> BatchWriter:
        if self._lost is not None:
            raise self._lost
        if self._writer is None or self._ended:
            raise LoopmlError(
                f"Run {self.label} is not live in this process; it can be read but not logged to."
            )
        return self._writer

    def log_metric(
        self, name: str, value: float, *, step: int | None = None, timestamp: float | None = None
    ) -> None:
        """Log one metric point; ``step`` defaults to the next index of that series (0, 1, …)."""
        self._require_live().metric(name, value, step, timestamp)

    def log_metrics(
        self, metrics: dict[str, float], *, step: int | None = None, timestamp: float | None = None
    ) -> None:
        self._require_live().metrics(metrics, step, timestamp)

    def log_param(self, name: str, value: Any) -> None:
        self._require_live().param(name, value)

    def log_params(self, params: dict[str, Any]) -> None:
        writer = self._require_live()
        for key, value in params.items():
            writer.param(key, value)

    def set_tag(self, name: str, value: Any) -> None:
        self._require_live().tag(name, value)

    def log_artifact(self, value: Any, name: str) -> str:
        """Store ``value`` (any materializable value, or a ``Path`` to a file/folder); returns its digest."""
        self._require_live()
        stored = self.client.store_value(value)
        from loopml.tracking.context import active_step_run

        self.client.metadata.lineage.record(
            stored, run_id=self.id, step_run_id=active_step_run(), direction="logged", name=name
        )
        return stored.digest

    def log_input(self, digest: str, name: str) -> None:
        """Record that this run (and its current step, if any) read a stored artifact,
        e.g. a dataset version: lineage then lists this run among the artifact's readers."""
        self._require_live()
        record = self.client.metadata.lineage.get(digest)
        from loopml.tracking.context import active_step_run

        self.client.metadata.lineage.record(
            record, run_id=self.id, step_run_id=active_step_run(), direction="input", name=name
        )

    def take_step_log(self, step_run_id: str) -> dict[str, Any]:
        """What one step logged to this run (kept with its cache entry for replay on a hit)."""
        return self._writer.take_step_log(step_run_id) if self._writer is not None else {}

    def flush(self, *, background: bool = False) -> None:
        if self._writer is not None:
            self._writer.flush(background=background)

    def pending(self) -> int:
        """Metric points logged but not yet written."""
        return self._writer.pending() if self._writer is not None else 0

    def beat(self) -> None:
        """Renew the lease (the heartbeat thread calls this); a lost lease is reported at once."""
        if not self._token or self._lost is not None:
            return
        if self.client.metadata.runs.heartbeat(self.id, self._token):
            return
        record = self.client.metadata.runs.get(self.id)
        if record.status == RunStatus.RUNNING or self._ended:
            return  # finished by end() between the check and now
        self._lost = LeaseLostError(
            f"Run {record.label} lost its lease: another process marked it {record.status} "
            f"({record.error or 'no reason recorded'}) while this process was still working. "
            "Its further writes are refused. This happens when the process was stopped or "
            "starved longer than the lease (heartbeat_seconds × 2.5), or its clock or network "
            "failed; raise [run] heartbeat_seconds if steps block the interpreter for long."
        )
        log.warning("loopml: %s", self._lost)
        if self._writer is not None:
            self._writer.failure = self._lost

    def end(
        self,
        status: str = RunStatus.SUCCEEDED,
        *,
        error: str | None = None,
        cost: float | None = None,
        usages: list[Usage] | None = None,
        peak_bytes: int | None = None,
    ) -> None:
        """Flush and move the run to a final status (idempotent).

        Raises:
            LeaseLostError: the run had been marked crashed by another process while this
                one still worked; its final status stays ``crashed``, with a note.
        """
        if self._writer is None or self._ended:
            return
        if self._token is None:  # attached handle: the owner ends the run
            self._writer.flush()
            return
        self._ended = True
        # Holding the flush lock: a background flush still writing finishes first, and
        # none can take the last batch from under the final transaction.
        self._writer.hold()
        try:
            batch = self._writer.take()
            wall = time.monotonic() - self._started
            if cost is None:
                peak = peak_bytes if peak_bytes is not None else _peak_rss()
                cost = run_cost(
                    self.client.settings.prices,
                    usages if usages is not None else [Usage(wall)],
                    run_wall_s=wall,
                    peak_bytes=peak,
                )
            write_env = self._final_environment()
            metrics = self.client.metadata.metrics.batch_writer(self.id, *batch, guarded=False)

            def before(tx: Tx) -> None:
                metrics(tx)
                write_env(tx)

            try:
                ended = self.client.metadata.runs.finish(
                    self.id,
                    self._token,
                    status,
                    error=error,
                    cpu_s=time.process_time() - self._started_cpu,
                    cost=cost,
                    before=before,
                )
            except LeaseLostError:
                ended = False
            except LoopmlError as exc:
                if not self._is_refused_batch(exc):
                    raise
                # A value the store refused must not cost the run its final status.
                self._writer.restore(batch)
                try:
                    self._writer.flush()
                except LoopmlError as flush_error:
                    status, error = (
                        RunStatus.FAILED,
                        f"Could not store buffered metrics: {flush_error}",
                    )
                ended = self.client.metadata.runs.finish(
                    self.id, self._token, status, error=error, cost=cost
                )
            if not ended:
                self._report_lost(status, unstored=batch)
        finally:  # only now stop heartbeating: until finish() the run must look alive
            self._writer.release()
            self.client.heartbeat.unregister(self)

    @staticmethod
    def _is_refused_batch(exc: LoopmlError) -> bool:
        from loopml.errors import InvalidParameterError

        return isinstance(exc, InvalidParameterError)

    def _final_environment(self) -> Any:
        """A write (for the finish transaction) updating the environment if it changed.

        Packages imported inside steps (scikit-learn in the init template) are only in
        ``sys.modules`` now, so the environment is captured again when the run ends.
        """
        if not environments.wait(10):
            return lambda tx: None
        env, git = environments.capture(self.client.settings.root)
        git_row = self.client.git_row(git)
        if env.digest == self._env_digest and git_row == self._git:
            return lambda tx: None
        diff_digest = git_row.get("diff_digest")

        def write(tx: Tx) -> None:
            insert_environment(tx, env)
            tx.execute(
                "UPDATE runs SET env_digest = ?, git_commit = ?, git_dirty = ?, "
                "git_diff_digest = ? WHERE id = ?",
                (env.digest, git_row.get("commit"), git_row.get("dirty"), diff_digest, self.id),
            )
            if diff_digest:
                tx.execute(
                    "INSERT INTO artifact_links (run_id, step_run_id, digest, direction, name) "
                    "VALUES (?, NULL, ?, 'logged', 'git.diff')",
                    (self.id, diff_digest),
                )

        return write

    def _report_lost(self, wanted: str, *, unstored: Any = None) -> None:
        """Raise for a run swept while this process worked; ``unstored``: the final batch."""
        record = self.client.metadata.runs.get(self.id)
        if record.status == wanted:
            return
        lost = _describe(unstored) if unstored is not None and any(unstored) else ""
        note = (
            f"The process kept working after that and tried to end the run as {wanted} "
            f"at {time.strftime('%H:%M:%S')}" + (f"; {lost} were not stored." if lost else ".")
        )
        assert self._token is not None
        self.client.metadata.runs.note_lost_lease(self.id, self._token, note)
        raise LeaseLostError(
            f"Run {record.label} ended as {record.status}, not {wanted}: another process "
            f"marked it {record.status} while this one still worked ({record.error}). "
            + (
                f"The last {lost} it logged were not stored; what it wrote before is "
                if lost
                else "Its outputs so far are "
            )
            + "stored; re-run it to record a successful run."
        )

    # -- context manager (start_run) ------------------------------------------------------

    def __enter__(self) -> Run:
        self._ctx_token = _active.set(self)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._ctx_token is not None:
            _active.reset(self._ctx_token)
            self._ctx_token = None
        status, error = status_for(exc)
        try:
            self.end(status, error=error)
        except LeaseLostError:
            if exc is None:
                raise
            # The block's own exception is what the user must see first.

    # -- reading --------------------------------------------------------------------------

    @property
    def record(self) -> RunRecord:
        return self.client.metadata.runs.get(self.id)

    @property
    def status(self) -> str:
        """Fresh from the store; a run whose process died reads as ``crashed``."""
        if not self.live:
            self.client.sweep()
        return self.record.status

    @property
    def label(self) -> str:
        rec = self.record
        return rec.label

    @property
    def params(self) -> dict[str, str]:
        return self.record.params

    @property
    def metrics(self) -> dict[str, float]:
        """Latest value of each metric."""
        return self.record.metrics

    @property
    def tags(self) -> dict[str, str]:
        return self.record.tags

    @property
    def steps(self) -> list[StepRunRecord]:
        return self.client.metadata.steps.for_run(self.id)

    def metric_history(self, name: str) -> list[MetricPoint]:
        """Every point of one metric series, sorted by step."""
        if self.live:
            self.flush()
        return self.client.metadata.metrics.history(self.id, name)

    def outputs(self) -> dict[str, str]:
        """Output references (``STEP`` or ``STEP.NAME``) to artifact digests."""
        return {
            link.name: link.digest
            for link in self.client.metadata.lineage.links(run_id=self.id)
            if link.direction == "output"
        }

    def output(self, ref: str) -> Any:
        """Load a step output by reference: ``"train"`` or ``"split.train"``."""
        outputs = self.outputs()
        if ref not in outputs:
            raise NotFoundError(
                f"Run {self.label} has no output {ref!r}; its outputs are {sorted(outputs)}.{did_you_mean(ref, outputs)}"
            )
        return self.client.load_artifact(outputs[ref])

    def __repr__(self) -> str:
        rec = self.record
        metrics = ", ".join(f"{k}={_fmt(v)}" for k, v in sorted(rec.metrics.items())[:6])
        return f"<Run {rec.label} {rec.status} id={rec.short_id}{' ' + metrics if metrics else ''}>"

    def _dag_svg(self) -> str:
        """The run's steps as a DAG, coloured by status; edges from lineage (output digest -> input)."""
        from loopml.tracking.charts import dag_svg, step_edges

        steps = self.steps
        edges = step_edges(steps, self.client.metadata.lineage.links(run_id=self.id))
        return dag_svg([s.name for s in steps], edges, status={s.name: s.status for s in steps})

    def _repr_html_(self) -> str:
        """Notebook display: status, timing, params, metrics and steps (with why each ran)."""
        from loopml.tracking.cost import format_cost

        rec = self.record
        import html

        e = html.escape
        colours: dict[str, str] = {
            RunStatus.SUCCEEDED: "#1a7f37",
            RunStatus.FAILED: "#cf222e",
            RunStatus.RUNNING: "#9a6700",
            RunStatus.CANCELLED: "#6e7781",
            RunStatus.CRASHED: "#cf222e",
        }
        colour = colours.get(rec.status, "#000")
        rows = "".join(
            f"<tr><td>{e(k)}</td><td>{e(_clip(str(v)))}</td></tr>"
            for k, v in sorted(rec.params.items())
        )
        mets = "".join(
            f"<tr><td>{e(k)}</td><td>{_fmt(v)}</td></tr>" for k, v in sorted(rec.metrics.items())
        )
        steps = "".join(
            f"<tr><td>{e(s.name)}</td><td>{e(s.status)}{' (cached)' if s.cached else ''}</td>"
            f"<td>{_fmt(s.wall_s or 0)} s</td><td>{_mem(s.peak_mem_bytes)}</td>"
            f"<td>{e(s.why)}</td></tr>"
            for s in self.steps
        )
        from loopml.tracking.charts import svg_line

        charts = self._dag_svg()
        keys = sorted(rec.metrics)[:12]
        series = self.client.metadata.metrics.histories(self.id, keys, min_points=2)
        for key in keys:
            if key in series:
                points = series[key]
                charts += svg_line(key, [p.step for p in points], [p.value for p in points])
        currency = self.client.settings.prices.currency
        return (
            f"<div><b>Run {e(rec.label)}</b> <code>{e(rec.short_id)}</code> "
            f"<span style='color:{colour};font-weight:bold'>{e(rec.status)}</span> "
            f"{_fmt(rec.duration_s or 0)} s · {e(format_cost(rec.cost, currency))}"
            + (f"<table><tr><th>param</th><th>value</th></tr>{rows}</table>" if rows else "")
            + (f"<table><tr><th>metric</th><th>latest</th></tr>{mets}</table>" if mets else "")
            + (
                "<table><tr><th>step</th><th>status</th><th>time</th>"
                f"<th>peak mem (process)</th><th>why</th></tr>{steps}</table>"
                if steps
                else ""
            )
            + (f"<div>{charts}</div>" if charts else "")
            + "</div>"
        )


def status_for(exc: BaseException | None) -> tuple[str, str | None]:
    """The final status for a block that ended with ``exc`` (the R07 table)."""
    if exc is None:
        return RunStatus.SUCCEEDED, None
    if isinstance(exc, KeyboardInterrupt):
        return RunStatus.CANCELLED, "Interrupted (Ctrl-C or SIGTERM)."
    if isinstance(exc, SystemExit):
        code = exc.code
        if code in (0, None):
            return RunStatus.SUCCEEDED, None
        return RunStatus.FAILED, f"SystemExit({code!r})"
    return RunStatus.FAILED, "".join(traceback.format_exception_only(type(exc), exc)).strip()


def _peak_rss() -> int:
    """This process's peak resident set size so far, in bytes (Linux reports KiB)."""
    import resource

    try:
        return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024
    except (OSError, ValueError):
        return 0


def _clip(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 1] + f"… ({len(text):,} characters)"


def _fmt(value: float) -> str:
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return str(value)
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _mem(value: int | None) -> str:
    return "–" if value is None else f"{value / 2**20:.1f} MiB"
