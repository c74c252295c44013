"""The Ray executor: each step a Ray task on a cluster, with the resources it declares.

Ray (an existing distributed engine) does the scheduling, placement and worker processes;
this module only turns a :class:`~loopml.execution.task.StepTask` into a task. The task is
shipped pickled; on the worker it opens the store from the task's settings, loads its
inputs by digest (verified as they are read), runs the step, stores its outputs and logs
through :meth:`Run.attach` (``task.py``), exactly as any out-of-process executor does. The
runner in the calling process keeps the cache, the order and every record of the run, so
a cached step is never sent.

- **Connecting** happens when the executor is made, before the run is recorded: the address
  is checked with a plain TCP connection first (a few seconds at most), so a cluster that
  cannot be reached is a clear error rather than Ray's minute of retries. One connection per
  process is kept and reused by later runs (a sweep, a notebook).
- **Code**: the project folder (its pipelines) is Ray's ``working_dir``: packed once per
  connection (with Ray's own packer: ``.gitignore`` and excludes as for a folder), uploaded
  under a name of its own and unpacked on each node; steps defined in a notebook travel by
  value. A folder handed to Ray as such is stored under a name from its content, and when an
  earlier connection with the same content ended, Ray may delete that package while the new
  connection is still fetching it (seen in the tests: every retry failed the same way); a
  package of our own per connection is never shared, so never deleted under us. What arrived
  (files, sizes, digests) is listed by a task on the cluster and logged with each run
  (``ray.code``), with Ray's and the workers' Python versions.
- **Resources**: ``@step(cpus=, gpus=, memory=, resources=)`` become the task's options; a
  step that no node of the cluster could ever hold fails at once, naming what it asked for
  and what the nodes offer, instead of waiting for ever.
- **Failures**: Ray's own retries are off (``max_retries=0``): the runner counts attempts for
  ``@step(retries=N)`` on every executor alike, and names the node a lost worker was on.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import sys
import tempfile
import threading
import time
import uuid
import zipfile
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from loopml.config import Settings, load_settings
from loopml.errors import LoopmlError
from loopml.execution.base import StepResult
from loopml.execution.task import StepTask

#: Never shipped as code: stores, version control, environments, caches.
ALWAYS_EXCLUDED = (
    ".git",
    ".loopml",
    ".venv",
    "venv",
    "__pycache__",
    "*.pyc",
    ".ipynb_checkpoints",
    ".pytest_cache",
    "build",
)
#: Added to each connection's package so that its name is its own (see the module's doc).
CONNECTION_FILE = ".loopml-ray-connection"
CONNECT_TIMEOUT_S = 5.0
CONNECT_ATTEMPTS = 3

log = logging.getLogger(__name__)


class ExecutorUnavailableError(LoopmlError):
    """The executor's cluster cannot be reached or used."""


_lock = threading.Lock()
_connected: tuple[str, str] | None = None  # (address, working dir) of this process's connection
_code: dict[str, Any] = {}  # what the current connection shipped, listed on the cluster
_remote: Any = None


class RayExecutor:
    """Run steps as Ray tasks on the cluster at ``address``.

    Args:
        address: ``ray://HOST:PORT`` (Ray Client), ``HOST:PORT`` of a cluster this machine
            is a node of, or ``auto``; default ``[ray] address``, then ``RAY_ADDRESS``.
        settings: the project's settings (its folder is shipped as the tasks' code).
        workers: unused: the cluster decides how many steps run at once.
    """

    name = "ray"
    shares_memory = False

    def __init__(
        self,
        address: str | None = None,
        *,
        settings: Settings | None = None,
        workers: int | None = None,
    ) -> None:
        self.settings = settings or load_settings()
        self.address = (
            address
            or self.settings.config.ray.address
            or os.environ.get("RAY_ADDRESS", "")
            or "auto"
        )
        self._refs: dict[Future[Any], Any] = {}
        self._nodes: list[dict[str, float]] = []
        self._connect()

    def __repr__(self) -> str:
        return f"RayExecutor(address={self.address!r})"

    def get_params(self) -> dict[str, Any]:
        return {"address": self.address}

    # -- connecting -----------------------------------------------------------------------

    def _connect(self) -> None:
        global _connected, _remote
        try:
            import ray
        except ImportError:
            raise ExecutorUnavailableError(
                "The ray executor needs Ray: pip install 'loopml[ray]' (or 'ray[client]'), "
                "on this machine and on the cluster."
            ) from None
        _preflight(self.address)
        working_dir = self._working_dir()
        key = (self.address, str(working_dir or ""))
        with _lock:
            if _connected != key or not ray.is_initialized():
                if ray.is_initialized():
                    ray.shutdown()
                for attempt in range(1, CONNECT_ATTEMPTS + 1):
                    try:
                        with tempfile.TemporaryDirectory(prefix="loopml-ray-") as scratch:
                            runtime_env: dict[str, Any] = {}
                            if working_dir is not None:
                                package = self._package(working_dir, Path(scratch))
                                runtime_env = {"working_dir": str(package)}
                            ray.init(
                                address=self.address,
                                runtime_env=runtime_env or None,
                                namespace="loopml",
                                logging_level=logging.ERROR,
                                log_to_driver=False,
                            )
                        _code.clear()
                        if working_dir is not None:  # also proves the code reached a node
                            listing: dict[str, Any] = ray.get(ray.remote(_list_code).remote())
                            _code.update(listing)
                        break
                    except (ConnectionAbortedError, ray.exceptions.RuntimeEnvSetupError):
                        # A busy head could not start this connection's server process, or a
                        # node could not fetch the uploaded code: a new connection usually
                        # succeeds (Ray uploads the package again).
                        if ray.is_initialized():
                            ray.shutdown()
                        if attempt == CONNECT_ATTEMPTS:
                            raise self._unavailable(sys.exc_info()[1]) from None
                        log.warning(
                            "Ray could not set up the connection to %s (%s); trying again "
                            "(%d of %d).",
                            self.address,
                            _last_line(sys.exc_info()[1]),
                            attempt + 1,
                            CONNECT_ATTEMPTS,
                        )
                        time.sleep(attempt)
                    except Exception as exc:  # Ray raises ConnectionError, RuntimeError, …
                        if ray.is_initialized():
                            ray.shutdown()
                        raise self._unavailable(exc) from None
                _connected = key
                _remote = ray.remote(_run_remote)
            self._nodes = [
                dict(node.get("Resources", {}))
                for node in ray.nodes()  # type: ignore[no-untyped-call]
                if node.get("Alive")
            ]

    def _unavailable(self, exc: BaseException | None) -> ExecutorUnavailableError:
        return ExecutorUnavailableError(
            f"Could not connect to the Ray cluster at {self.address!r}: "
            f"{type(exc).__name__}: {exc}. Check the address (ray status on the head node "
            "prints it) or run with --on local."
        )

    def _working_dir(self) -> Path | None:
        """The project folder when there is one (a folder with ``loopml.toml``)."""
        return self.settings.root if self.settings.has_config else None

    def _package(self, working_dir: Path, scratch: Path) -> Path:
        """The project folder zipped by Ray's packer, plus a file naming this connection."""
        from ray._private import ray_constants
        from ray._private.runtime_env.packaging import create_package

        package = scratch / "code.zip"
        create_package(
            str(working_dir),
            package,
            include_gitignore=True,
            excludes=list(getattr(ray_constants, "get_runtime_env_default_excludes", list)())
            + self._excludes(),
            logger=log,  # Ray's own logger prints an INFO line for every package
        )
        with zipfile.ZipFile(package, "a") as archive:
            archive.writestr(CONNECTION_FILE, uuid.uuid4().hex)
        return package

    def _excludes(self) -> list[str]:
        root = self.settings.root
        found = list(ALWAYS_EXCLUDED) + list(self.settings.config.ray.excludes)
        for location in (self.settings.store_uri, self.settings.artifacts_uri):
            path = location.removeprefix("sqlite:///")
            if "://" in path:
                continue
            try:
                relative = Path(path).resolve().relative_to(root.resolve())
            except ValueError:
                continue
            found.append("/" + relative.parts[0])
        return found

    # -- the executor interface ------------------------------------------------------------

    def submit(self, task: Callable[[], Any]) -> Future[Any]:
        if not isinstance(task, StepTask):
            raise TypeError(f"The ray executor runs step tasks, not {task!r}.")
        spec = task.node.step.spec
        problem = self._unplaceable(task)
        if problem is not None:
            done: Future[Any] = Future()
            done.set_result(StepResult(error_text=problem))
            return done
        options: dict[str, Any] = {
            "num_cpus": spec.cpus,
            "num_gpus": spec.gpus,
            "max_retries": 0,
            "retry_exceptions": False,
        }
        if spec.memory:
            options["memory"] = spec.memory
        if spec.resources:
            options["resources"] = dict(spec.resources)
        ref = _remote.options(**options).remote(task)
        # Ray's own future is completed by its client thread, which dies (and with it this
        # process's connection) if the future was cancelled meanwhile. The runner's future is
        # a relay marked running at once: a task on the cluster is not taken back by
        # Future.cancel() (the runner lets it finish, or stops it through cancel()).
        future: Future[Any] = Future()
        future.set_running_or_notify_cancel()
        ref.future().add_done_callback(lambda done: _relay(done, future))
        self._refs[future] = ref
        future.add_done_callback(lambda f: self._refs.pop(f, None))
        return future

    def cancel(self, future: Future[Any]) -> None:
        """Stop a running step (its worker process is killed)."""
        import ray

        ref = self._refs.pop(future, None)
        if ref is not None:
            try:
                ray.cancel(ref, force=True)
            except Exception:  # already finished or gone: nothing left to stop
                pass

    def shutdown(self) -> None:
        """Nothing to stop: the connection stays for the next run of this process."""

    def on_run_start(self, run: Any) -> None:
        """Record with the run where it runs and the code the cluster received."""
        import ray

        run.set_tag("ray.address", self.address)
        run.set_tag("ray.version", ray.__version__)
        run.set_tag("ray.nodes", len(self._nodes))
        if _code:
            run.set_tag("ray.code", f"{_code['digest'][:12]} ({_code['files']} files)")
            run.log_artifact(dict(_code), "ray.code")

    def _unplaceable(self, task: StepTask) -> str | None:
        """Why no node of the cluster could ever run this step, or None."""
        spec = task.node.step.spec
        wanted = {"CPU": spec.cpus, "GPU": spec.gpus, **dict(spec.resources)}
        if spec.memory:
            wanted["memory"] = float(spec.memory)
        wanted = {k: v for k, v in wanted.items() if v}
        if not self._nodes or any(
            all(node.get(k, 0.0) >= v for k, v in wanted.items()) for node in self._nodes
        ):
            return None
        offered = "; ".join(
            ", ".join(f"{k} {_amount(k, v)}" for k, v in sorted(node.items()) if "node:" not in k)
            for node in self._nodes
        )
        asked = ", ".join(f"{k} {_amount(k, v)}" for k, v in sorted(wanted.items()))
        return (
            f"LoopmlError: step {task.node.name!r} asks for {asked}, which no node of the Ray "
            f"cluster at {self.address} offers (nodes: {offered}). Lower the step's "
            "cpus/gpus/memory/resources, or add a node that has them "
            "(ray start --resources='{\"NAME\": 1}')."
        )


def _relay(done: Future[Any], future: Future[Any]) -> None:
    try:
        future.set_result(done.result())
    except BaseException as exc:  # the task's exception, or Ray's (lost worker, cancelled)
        future.set_exception(exc)


def _last_line(exc: BaseException | None) -> str:
    """The gist of Ray's multi-line error: its last line (or the exception's name)."""
    lines = str(exc).strip().splitlines()
    return lines[-1][:300] if lines else type(exc).__name__


def _amount(key: str, value: float) -> str:
    if key in ("memory", "object_store_memory"):
        return f"{value / 2**30:.1f} GiB"
    return f"{value:g}"


def _preflight(address: str) -> None:
    """Fail fast, naming the address, when nothing listens there."""
    if address == "auto" or address.startswith("local"):
        return
    target = address.removeprefix("ray://")
    host, sep, port = target.rpartition(":")
    if not sep or not port.isdigit():
        raise ExecutorUnavailableError(
            f"Ray address {address!r}: expected ray://HOST:PORT (Ray Client, port 10001 by "
            "default), HOST:PORT (the cluster's GCS, port 6379 by default) or auto."
        )
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as exc:
        raise ExecutorUnavailableError(
            f"The Ray cluster at {address!r} cannot be reached ({exc.strerror or exc}); nothing "
            "was run. Start it (ray start --head …), check the address and port, or run with "
            "--on local."
        ) from None


def _where() -> str:
    """This worker: host, node address and id, process."""
    import ray

    context = ray.get_runtime_context()
    node_id = context.get_node_id()
    ip = ray.util.get_node_ip_address()  # type: ignore[no-untyped-call]
    return f"{socket.gethostname()} node {ip} ({node_id[:12]}) pid {os.getpid()}"


def _run_remote(task: StepTask) -> StepResult:
    """The Ray task: run the step here, then make its result safe to send back."""
    task.where = _where()
    result = task()
    if result.error is not None:
        import pickle

        try:  # a user's exception may not survive pickling; its text and traceback do
            pickle.dumps(result.error)
        except Exception:
            result.error = None
    return result


def _list_code() -> dict[str, Any]:
    """What the cluster received as the tasks' code: the working folder's files, hashed."""
    import platform

    files: dict[str, list[Any]] = {}
    root = Path.cwd()
    for path in sorted(root.rglob("*")):
        name = path.relative_to(root).as_posix()
        if path.is_file() and name != CONNECTION_FILE:
            data = path.read_bytes()
            files[name] = [
                len(data),
                hashlib.sha256(data).hexdigest(),
            ]
    digest = hashlib.sha256(repr(sorted(files.items())).encode()).hexdigest()
    return {
        "digest": digest,
        "files": len(files),
        "bytes": sum(size for size, _ in files.values()),
        "listing": files,
        "python": platform.python_version(),
    }
