"""Project discovery and settings: ``loopml.toml``, environment variables, defaults.

A project is the nearest folder, walking up from the working directory, that holds a
``loopml.toml`` (the way git finds ``.git``). Without one, the working directory is the
project, so a notebook needs no set-up at all. ``LOOPML_STORE_URI``,
``LOOPML_ARTIFACTS_URI``, ``LOOPML_REMOTE_URL`` and ``LOOPML_HEARTBEAT_SECONDS`` override the
file.

The file's schema is a tree of frozen dataclasses (:class:`ConfigFile`): each table is a
dataclass, a repeated table (``[schedules.nightly]``) is ``dict[str, Table]``. One small
validator walks it and reports the first problem with its TOML path, the value, what was
expected and a did-you-mean. Hand-written rather than pydantic or msgspec: those add
0.1-0.3 s to every ``loopml`` command and ``python pipeline.py`` (DESIGN.md §6), and their
messages would still need rewriting into loopml's error shape.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loopml.errors import InvalidParameterError, did_you_mean

CONFIG_FILE = "loopml.toml"
# Steps that may run at once: as many as CPython lets a thread pool have (min(32, cores + 4)
# on a large machine), whatever the core count here: most steps wait on I/O, a database or a
# remote service, or run library code that releases the GIL.
DEFAULT_WORKERS = 32
# Blobs ``push``/``pull`` move at once. Each transfer mostly waits on the network and its
# hashing releases the GIL; 8 fills a link to a nearby S3 endpoint without holding more
# than 8 parts of big blobs in memory (see ``artifacts/_s3.py``).
DEFAULT_REMOTE_JOBS = 8
MAX_REMOTE_JOBS = 64
STORE_DIR = ".loopml"


def _check(rule: str, test: Any) -> dict[str, Any]:
    """Field metadata: a predicate on the converted value and how to describe it."""
    return {"rule": rule, "test": test}


@dataclass(frozen=True, slots=True)
class ProjectSection:
    name: str = ""
    pipelines: tuple[str, ...] = ("pipelines",)


@dataclass(frozen=True, slots=True)
class StoreSection:
    uri: str = f"{STORE_DIR}/store.db"
    artifacts: str = f"{STORE_DIR}/blobs"
    #: fsspec storage options for a remote artifact store, e.g. ``endpoint_url``.
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RemoteSection:
    """Where ``loopml push``/``pull`` copy blobs: ``s3://bucket/prefix`` or a folder."""

    url: str
    #: fsspec storage options, e.g. ``endpoint_url``, ``key``, ``secret``, ``client_kwargs``.
    options: dict[str, Any] = field(default_factory=dict)
    #: Blobs transferred at once by ``push`` and ``pull`` (``--jobs`` overrides it).
    jobs: int = field(
        default=DEFAULT_REMOTE_JOBS,
        metadata=_check(f"between 1 and {MAX_REMOTE_JOBS}", lambda v: 1 <= v <= MAX_REMOTE_JOBS),
    )


@dataclass(frozen=True, slots=True)
class RunSection:
    workers: int = field(default=DEFAULT_WORKERS, metadata=_check(">= 1", lambda v: v >= 1))
    heartbeat_seconds: float = field(
        default=10.0, metadata=_check("> 0 seconds", lambda v: 0 < v < math.inf)
    )
    executor: str = "local"


@dataclass(frozen=True, slots=True)
class RaySection:
    """``[ray]``: the cluster ``--on ray`` and ``executor = "ray"`` use (docs/distributed.md)."""

    #: ``ray://HOST:PORT`` (Ray Client), ``HOST:PORT`` of a cluster this machine is a node of,
    #: or ``auto``; ``RAY_ADDRESS`` is used when this is empty.
    address: str = ""
    #: Paths (gitignore syntax) of the project folder not shipped to the cluster, on top of
    #: the store, ``.git``, virtual environments and what ``.gitignore`` leaves out.
    excludes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Prices:
    """Prices used to compute a run's cost (per CPU-hour, GPU-hour and GB-hour of memory)."""

    cpu_hour: float = field(default=0.0, metadata=_check(">= 0", lambda v: 0 <= v < math.inf))
    gpu_hour: float = field(default=0.0, metadata=_check(">= 0", lambda v: 0 <= v < math.inf))
    gb_hour: float = field(default=0.0, metadata=_check(">= 0", lambda v: 0 <= v < math.inf))
    currency: str = "USD"


@dataclass(frozen=True, slots=True)
class BeatsGate:
    """The candidate must beat the version ``alias`` holds on ``metric`` of the gate's suite,
    by a paired comparison significant at ``confidence``."""

    alias: str
    metric: str
    confidence: float = field(
        default=0.95, metadata=_check("between 0.5 and 1", lambda v: 0.5 <= v < 1)
    )


@dataclass(frozen=True, slots=True)
class GateSection:
    """What a version must pass to take an alias (``[models.NAME.gates.ALIAS]``)."""

    #: The suite that judges the version; ``require`` and ``beats`` read its metrics.
    suite: str | None = None
    #: Thresholds on the suite's metrics, e.g. ``"roc_auc >= 0.80"``.
    require: tuple[str, ...] = ()
    beats: BeatsGate | None = None
    #: The version's training data must have passed validation (``loopml data validate``).
    validated_data: bool = False
    #: Custom checks, ``module:function`` called with the version; False or raising fails.
    checks: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ModelSection:
    gates: dict[str, GateSection] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ScheduleSection:
    """A schedule declared in ``loopml.toml`` (``[schedules.NAME]``); see docs/scheduling.md."""

    pipeline: str
    #: 5 fields, or 6 with seconds first, e.g. ``"0 6 * * MON"``.
    cron: str
    #: An IANA time zone the cron expression is read in.
    timezone: str = "UTC"
    params: dict[str, Any] = field(default_factory=dict)
    #: ``"2h"``, ``"30m"``, ``"90s"`` or a number of seconds; none by default.
    timeout: str | float | None = None
    retries: int = field(default=0, metadata=_check(">= 0", lambda v: v >= 0))
    #: Wait before the first retry (doubled for each further one).
    backoff: str | float = "60s"
    catchup: str = field(
        default="once",
        metadata=_check("one of 'skip', 'once', 'all'", lambda v: v in ("skip", "once", "all")),
    )
    #: A fire due while the previous one still runs: wait for it, skip, or allow both.
    overlap: str = field(
        default="wait",
        metadata=_check("one of 'wait', 'skip', 'allow'", lambda v: v in ("wait", "skip", "allow")),
    )
    paused: bool = False


@dataclass(frozen=True, slots=True)
class ConfigFile:
    """The whole ``loopml.toml``; capability issues add their tables here."""

    project: ProjectSection = field(default_factory=ProjectSection)
    store: StoreSection = field(default_factory=StoreSection)
    run: RunSection = field(default_factory=RunSection)
    cost: Prices = field(default_factory=Prices)
    ray: RaySection = field(default_factory=RaySection)
    remote: RemoteSection | None = None
    models: dict[str, ModelSection] = field(default_factory=dict)
    schedules: dict[str, ScheduleSection] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything loopml needs to know about where it runs; built by :func:`load_settings`."""

    root: Path
    store_uri: str
    artifacts_uri: str
    pipelines: tuple[str, ...] = ("pipelines",)
    workers: int = DEFAULT_WORKERS
    heartbeat_seconds: float = 10.0
    prices: Prices = field(default_factory=Prices)
    name: str = ""
    has_config: bool = False
    executor: str = "local"
    storage_options: dict[str, Any] = field(default_factory=dict)
    remote_url: str | None = None
    remote_options: dict[str, Any] = field(default_factory=dict)
    remote_jobs: int = DEFAULT_REMOTE_JOBS
    config: ConfigFile = field(default_factory=ConfigFile)


# --- the validator -----------------------------------------------------------------------

_WORDS = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "true or false",
}
_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    found = _HINTS.get(cls)
    if found is None:
        found = _HINTS[cls] = typing.get_type_hints(cls)
    return found


def _expected(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if tp in _WORDS:
        return _WORDS[tp]
    if dataclasses.is_dataclass(tp):
        return "a table"
    if origin in (tuple, list):
        return f"a list of {_expected(typing.get_args(tp)[0])[2:]}s"
    if origin is dict:
        return "a table"
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_expected(a) for a in typing.get_args(tp) if a is not type(None))
    return getattr(tp, "__name__", str(tp))


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _label(path: tuple[str, ...]) -> str:
    """``("run", "workers")`` -> ``[run] workers``; ``("run",)`` -> ``[run]``."""
    if not path:
        return "the top level"
    if len(path) == 1:
        return f"[{path[0]}]"
    return f"[{'.'.join(path[:-1])}] {path[-1]}"


def convert(tp: Any, value: Any, path: tuple[str, ...]) -> Any:
    """Check ``value`` from TOML against the annotation ``tp``; return it in that type.

    Raises:
        InvalidParameterError: naming the path (e.g. ``[run] workers``), the value and the rule.
    """

    def bad() -> InvalidParameterError:
        return InvalidParameterError(
            f"{_label(path)}: got {_shown(value)}; expected {_expected(tp)}."
        )

    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None and len(options) < len(typing.get_args(tp)):
            return None
        if len(options) == 1:  # an optional table: its own message names the bad key
            return convert(options[0], value, path)
        for option in options:
            try:
                return convert(option, value, path)
            except InvalidParameterError:
                continue
        raise bad()
    if tp is bool:
        if not isinstance(value, bool):
            raise bad()
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad()
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise bad()
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise bad()
        return value
    if origin in (tuple, list):
        items = [value] if isinstance(value, str) and origin is tuple else value
        if not isinstance(items, list):
            raise bad()
        inner = typing.get_args(tp)[0]
        converted = [
            convert(inner, item, (*path[:-1], f"{path[-1]}[{i}]")) for i, item in enumerate(items)
        ]
        return tuple(converted) if origin is tuple else converted
    if origin is dict:
        if not isinstance(value, dict):
            raise bad()
        inner = typing.get_args(tp)[1]
        return {k: convert(inner, v, (*path, k)) for k, v in value.items()}
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        if not isinstance(value, dict):
            raise bad()
        return _table(tp, value, path)
    raise TypeError(f"config schema: unsupported annotation {tp!r} at {_label(path)}")


def _table(cls: type, table: dict[str, Any], path: tuple[str, ...]) -> Any:
    hints = _hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    values: dict[str, Any] = {}
    for key, raw in table.items():
        if key not in fields:
            known = sorted(fields)
            what = f"section [{key}]" if not path else f"key {key!r} in [{'.'.join(path)}]"
            raise InvalidParameterError(
                f"Unknown {what}; expected one of {known}.{did_you_mean(key, known)}"
            )
        value = convert(hints[key], raw, (*path, key))
        check = fields[key].metadata.get("test")
        if check is not None and not check(value):
            raise InvalidParameterError(
                f"{_label((*path, key))}: got {_shown(raw)}; expected "
                f"{_expected(hints[key])} {fields[key].metadata['rule']}."
            )
        values[key] = value
    required = [
        name
        for name, f in fields.items()
        if name not in values
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    ]
    if required:
        where = f"[{'.'.join(path)}]" if path else "the top level"
        raise InvalidParameterError(
            f"{where}: missing required key{'s' if len(required) > 1 else ''} "
            + ", ".join(f"{name!r} ({_expected(hints[name])})" for name in required)
            + "; add it to the table."
        )
    return cls(**values)


def parse_config(table: dict[str, Any], path: Path | str = CONFIG_FILE) -> ConfigFile:
    """Validate a parsed ``loopml.toml`` against :class:`ConfigFile`.

    Raises:
        InvalidParameterError: the first problem, prefixed by the file's path.
    """
    try:
        return typing.cast(ConfigFile, _table(ConfigFile, table, ()))
    except InvalidParameterError as exc:
        raise InvalidParameterError(f"{path}: {exc}") from None


# --- locations ---------------------------------------------------------------------------


def find_project(start: Path | None = None) -> Path | None:
    """Return the nearest folder at or above ``start`` holding ``loopml.toml``, or None."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / CONFIG_FILE).is_file():
            return folder
    return None


def store_url(value: str, root: Path) -> str:
    """Turn a path into a ``sqlite:///`` URL (relative to ``root``); leave real URLs alone."""
    if "://" in value:
        return value
    path = Path(value).expanduser()
    if not path.is_absolute():
        path = root / path
    return f"sqlite:///{path}"


def artifacts_location(value: str, root: Path) -> str:
    """A folder (made absolute, relative to ``root``) or a remote URL, as given."""
    if "://" in value and not value.startswith("file://"):
        return value
    path = Path(value.removeprefix("file://")).expanduser()
    return str(path if path.is_absolute() else root / path)


def _env_float(name: str) -> float | None:
    raw = os.environ.get(name)
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not 0 < value < math.inf:
        raise InvalidParameterError(
            f"{name}: got {raw!r}; expected a number of seconds > 0, e.g. {name}=10."
        )
    return value


_parsed: dict[Path, tuple[tuple[int, int], ConfigFile]] = {}


def _read_config(path: Path) -> ConfigFile:
    """Parse ``loopml.toml``, once per version of the file (keyed by its mtime and size)."""
    try:
        st = path.stat()
        stamp = (st.st_mtime_ns, st.st_size)
    except OSError:
        stamp = (-1, -1)
    cached = _parsed.get(path)
    if cached is not None and cached[0] == stamp and stamp != (-1, -1):
        return cached[1]
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise InvalidParameterError(f"{path} is not valid TOML: {exc}.") from exc
    except UnicodeDecodeError as exc:
        raise InvalidParameterError(
            f"{path} is not UTF-8 text (byte {exc.start}); save it as UTF-8."
        ) from exc
    config = parse_config(table, path)
    _parsed[path] = (stamp, config)
    return config


def load_settings(start: Path | None = None) -> Settings:
    """Find the project and read its settings; environment variables win over the file.

    Raises:
        InvalidParameterError: ``loopml.toml`` is not valid TOML, has unknown keys or
            wrong types, or an environment variable holds a bad value.
    """
    found = find_project(start)
    root = found or (start or Path.cwd()).resolve()
    config = _read_config(found / CONFIG_FILE) if found else ConfigFile()
    heartbeat = _env_float("LOOPML_HEARTBEAT_SECONDS") or config.run.heartbeat_seconds
    store = os.environ.get("LOOPML_STORE_URI") or config.store.uri
    artifacts = os.environ.get("LOOPML_ARTIFACTS_URI") or config.store.artifacts
    remote = os.environ.get("LOOPML_REMOTE_URL") or (config.remote.url if config.remote else None)
    return Settings(
        root=root,
        store_uri=store_url(store, root),
        artifacts_uri=artifacts_location(artifacts, root),
        pipelines=config.project.pipelines,
        workers=config.run.workers,
        heartbeat_seconds=heartbeat,
        prices=config.cost,
        name=config.project.name or root.name,
        has_config=found is not None,
        executor=config.run.executor,
        storage_options=dict(config.store.options),
        remote_url=artifacts_location(remote, root) if remote else None,
        remote_options=dict(config.remote.options) if config.remote else {},
        remote_jobs=config.remote.jobs if config.remote else DEFAULT_REMOTE_JOBS,
        config=config,
    )


# --- durations and sizes (schedules, monitors, @step) ------------------------------------

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd]?)")


def parse_duration(value: str | float | None, *, what: str) -> float | None:
    """``"2h"``, ``"30m"``, ``"90s"``, ``"1d"``, ``"1h30m"`` or seconds as a number."""
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    else:
        text = str(value).strip().lower().replace(" ", "")
        parts = _DURATION.findall(text)
        if not text or "".join(n + u for n, u in parts) != text:
            raise InvalidParameterError(
                f"{what} {value!r}: expected a duration such as '90s', '30m', '2h', '1d' or "
                "'1h30m' (a bare number means seconds)."
            )
        seconds = sum(float(n) * _UNITS[u or "s"] for n, u in parts)
    if not 0 < seconds < 366 * 86400:
        raise InvalidParameterError(
            f"{what} {value!r}: expected a duration above 0 and under a year, e.g. '2h'."
        )
    return seconds


_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([a-z]*)")


def parse_size(value: str | int | None, *, what: str) -> int | None:
    """``"4GB"``, ``"512MiB"``, ``"2.5 GB"`` or a number of bytes."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        size = value
    else:
        match = _SIZE.fullmatch(str(value).strip().lower()) if isinstance(value, str) else None
        if match is None or match.group(2) not in _SIZE_UNITS:
            raise InvalidParameterError(
                f"{what} {value!r}: expected a size such as '512MB', '4GB', '2GiB' or a "
                "number of bytes."
            )
        size = int(float(match.group(1)) * _SIZE_UNITS[match.group(2)])
    if size <= 0:
        raise InvalidParameterError(f"{what} {value!r}: expected a size above 0, e.g. '4GB'.")
    return size
