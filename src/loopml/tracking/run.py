"""``Run``: one execution, live (logging) or finished (reading), in Python and notebooks.

A live run owns a lease token, a :class:`BatchWriter` and a slot in the heartbeat thread;
a finished run is a view over the store. Both are the same class, so
``run = train(alpha=0.5)`` and ``with loopml.start_run() as run`` give the same object.
"""

from __future__ import annotations

import html
import math
import os
import platform
import socket
import threading
import time
import traceback
from types import TracebackType
from typing import TYPE_CHECKING, Any

from loopml.errors import LoopmlError, NotFoundError, did_you_mean
from loopml.store import MetricPoint, RunRecord, StepRunRecord
from loopml.tracking import liveness
from loopml.tracking.context import _active
from loopml.tracking.writer import BatchWriter

if TYPE_CHECKING:
    from loopml.tracking.client import Client

LEASE_FACTOR = 2.5


class Run:
    """A run in the store. Live runs log; every run reads.

    Attributes read from the store (``status``, ``params``, ``metrics``, ``tags``) are
    fresh on each access.
    """

    def __init__(self, client: Client, run_id: str, *, token: str | None = None) -> None:
        self.client = client
        self.id = run_id
        self._token = token
        self._writer = BatchWriter(client.metadata, run_id) if token else None
        self._ctx_token: Any = None
        self._started_cpu = time.process_time()
        self._env_thread: threading.Thread | None = None
        self._ended = False
        self.heartbeat_seconds = client.settings.heartbeat_seconds

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
        """Create a live run: stored as ``running``, heartbeating, capturing its environment."""
        store = client.metadata
        record, token = store.runs.create(
            pipeline=pipeline,
            name=name,
            kind=kind,
            host=socket.gethostname(),
            pid=os.getpid(),
            executor=executor,
            lease_s=client.settings.heartbeat_seconds * LEASE_FACTOR,
            python_version=platform.python_version(),
        )
        run = cls(client, record.id, token=token)
        liveness.register(run)
        run._env_thread = threading.Thread(
            target=run._capture_environment, name="loopml-env", daemon=True
        )
        run._env_thread.start()
        return run

    def _capture_environment(self) -> None:
        from loopml._signals import leave_signals_to_main_thread
        from loopml.tracking.environment import capture

        leave_signals_to_main_thread()
        try:
            env = capture(self.client.settings.root)
            git = env.pop("git", {})
            diff_digest = None
            if git.get("diff"):
                stored = self.client.store_value(git["diff"].encode("utf-8"))
                self.client.metadata.lineage.record(
                    stored, run_id=self.id, step_run_id=None, direction="logged", name="git.diff"
                )
                diff_digest = stored.digest
            self.client.metadata.runs.update_info(
                self.id,
                environment=env,
                git_commit=git.get("commit"),
                git_dirty=git.get("dirty"),
                git_diff_digest=diff_digest,
            )
        except Exception:  # capture is best effort; it must never fail the run
            return

    @classmethod
    def attach(cls, client: Client, run_id: str) -> Run:
        """A logging handle on a run another process owns (an executor's worker).

        It logs and flushes; only the owner heartbeats and ends the run.
        """
        run = cls(client, run_id)
        run._writer = BatchWriter(client.metadata, run_id)
        return run

    # -- live logging ---------------------------------------------------------------------

    @property
    def live(self) -> bool:
        return self._writer is not None and not self._ended

    def _require_live(self) -> BatchWriter:
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

    def take_step_log(self, step_run_id: str) -> dict[str, Any]:
        """What one step logged to this run (kept with its cache entry for replay on a hit)."""
        return self._writer.take_step_log(step_run_id) if self._writer is not None else {}

    def flush(self) -> None:
        if self._writer is not None:
            self._writer.flush()

    def beat(self) -> None:
        # Beats go on while end() runs: the lease must outlive the final writes.
        if self._token:
            self.client.metadata.runs.heartbeat(self.id, self._token)

    def end(
        self, status: str = "succeeded", *, error: str | None = None, cost: float | None = None
    ) -> None:
        """Flush and move the run to a final status (idempotent)."""
        if self._writer is None or self._ended:
            return
        if self._token is None:  # attached handle: the owner ends the run
            self._writer.flush()
            return
        self._ended = True
        try:
            try:
                self._writer.flush()
            except Exception as exc:  # writes failed: the run cannot be called a success
                status, error = "failed", f"Could not store buffered metrics: {exc}"
            if self._env_thread is not None:
                self._env_thread.join(timeout=10)
            cpu_s = time.process_time() - self._started_cpu
            if cost is None:
                record = self.record
                hours = (time.time() - record.started_at) / 3600
                cost = hours * self.client.settings.prices.cpu_hour
            self.client.metadata.runs.finish(
                self.id, self._token, status, error=error, cpu_s=cpu_s, cost=cost
            )
        finally:  # only now stop heartbeating: until finish() the run must look alive
            liveness.unregister(self)

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
        self.end(status, error=error)

    # -- reading --------------------------------------------------------------------------

    @property
    def record(self) -> RunRecord:
        return self.client.metadata.runs.get(self.id)

    @property
    def status(self) -> str:
        """Fresh from the store; a run whose process died reads as ``crashed`` once its lease is over."""
        if not self.live:
            self.client.metadata.runs.sweep_crashed()
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
        from loopml.tracking.charts import dag_svg

        steps = self.steps
        by_id = {s.id: s.name for s in steps}
        produced: dict[str, str] = {}
        consumed: list[tuple[str, str]] = []
        for link in self.client.metadata.lineage.links(run_id=self.id):
            step = by_id.get(link.step_run_id or "")
            if step is None:
                continue
            if link.direction == "output":
                produced[link.digest] = step
            elif link.direction == "input":
                consumed.append((link.digest, step))
        edges = [
            (produced[d], step) for d, step in consumed if d in produced and produced[d] != step
        ]
        return dag_svg([s.name for s in steps], edges, status={s.name: s.status for s in steps})

    def _repr_html_(self) -> str:
        """Notebook display: status, timing, params, metrics and steps as tables."""
        rec = self.record
        e = html.escape
        colour = {
            "succeeded": "#1a7f37",
            "failed": "#cf222e",
            "running": "#9a6700",
            "cancelled": "#6e7781",
            "crashed": "#cf222e",
        }.get(rec.status, "#000")
        rows = "".join(
            f"<tr><td>{e(k)}</td><td>{e(str(v))}</td></tr>" for k, v in sorted(rec.params.items())
        )
        mets = "".join(
            f"<tr><td>{e(k)}</td><td>{_fmt(v)}</td></tr>" for k, v in sorted(rec.metrics.items())
        )
        steps = "".join(
            f"<tr><td>{e(s.name)}</td><td>{e(s.status)}{' (cached)' if s.cached else ''}</td>"
            f"<td>{_fmt(s.wall_s or 0)} s</td><td>{_mem(s.peak_mem_bytes)}</td></tr>"
            for s in self.steps
        )
        from loopml.tracking.charts import svg_line

        charts = self._dag_svg()
        for key in sorted(rec.metrics)[:12]:
            series = self.client.metadata.metrics.history(self.id, key)
            if len(series) > 1:
                charts += svg_line(key, [p.step for p in series], [p.value for p in series])
        return (
            f"<div><b>Run {e(rec.label)}</b> <code>{e(rec.short_id)}</code> "
            f"<span style='color:{colour};font-weight:bold'>{e(rec.status)}</span> "
            f"{_fmt(rec.duration_s or 0)} s"
            + (f"<table><tr><th>param</th><th>value</th></tr>{rows}</table>" if rows else "")
            + (f"<table><tr><th>metric</th><th>latest</th></tr>{mets}</table>" if mets else "")
            + (
                f"<table><tr><th>step</th><th>status</th><th>time</th><th>peak mem</th></tr>{steps}</table>"
                if steps
                else ""
            )
            + (f"<div>{charts}</div>" if charts else "")
            + "</div>"
        )


def status_for(exc: BaseException | None) -> tuple[str, str | None]:
    """The final status for a block that ended with ``exc`` (the R07 table)."""
    if exc is None:
        return "succeeded", None
    if isinstance(exc, KeyboardInterrupt):
        return "cancelled", "Interrupted (Ctrl-C or SIGTERM)."
    if isinstance(exc, SystemExit):
        code = exc.code
        return ("succeeded", None) if code in (0, None) else ("failed", f"SystemExit({code!r})")
    return "failed", "".join(traceback.format_exception_only(type(exc), exc)).strip()


def _fmt(value: float) -> str:
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return str(value)
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _mem(value: int | None) -> str:
    return "–" if value is None else f"{value / 2**20:.1f} MiB"
