"""The metadata tables, as SQLAlchemy Core: the *head* schema that migrations must produce.

Store operations run plain SQL against these tables (see ``engine.py`` for why); this
module is imported only by Alembic and tests, which check that ``migrations/versions``
produces exactly this schema. Times are UTC epoch seconds in floats: portable across
SQLite and PostgreSQL, cheap to compare, and never ambiguous about time zones. Lease times
(``started_at``, ``heartbeat_at``, ``ended_at`` of runs) come from the database's clock.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from loopml.store.status import FireStatus, RunStatus, StepStatus

metadata = MetaData()


def _one_of(column: str, values: type[RunStatus] | type[StepStatus]) -> str:
    return f"{column} IN ({', '.join(repr(str(v)) for v in values)})"


runs = Table(
    "runs",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("pipeline", String(200), nullable=False),
    Column("number", Integer, nullable=False),
    Column("name", String(200), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("started_at", Float, nullable=False),
    Column("ended_at", Float),
    Column("duration_s", Float),
    Column("heartbeat_at", Float, nullable=False),
    Column("lease_s", Float, nullable=False),
    Column("lease_token", String(32), nullable=False),
    Column("host", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("executor", String(64), nullable=False),
    Column("git_commit", String(40)),
    Column("git_dirty", Boolean),
    Column("git_diff_digest", String(64)),
    Column("python_version", String(32)),
    Column("env_digest", String(64)),
    Column("cpu_s", Float),
    Column("error", Text),
    Column("cost", Float),
    Column("owner", String(200)),  # machine:pid:start of the owning process (liveness)
    UniqueConstraint("pipeline", "number", name="uq_runs_pipeline_number"),
    CheckConstraint(_one_of("status", RunStatus), name="ck_runs_status"),
)
Index("ix_runs_status_heartbeat", runs.c.status, runs.c.heartbeat_at)
Index("ix_runs_started_at", runs.c.started_at)
# `status = 'failed'` newest first: the runs of one status in start order (the runs list).
Index("ix_runs_status_started", runs.c.status, runs.c.started_at)

params = Table(
    "params",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),
    Column("num", Float),
)
Index("ix_params_key_num", params.c.key, params.c.num)

tags = Table(
    "tags",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),
)

metrics = Table(
    "metrics",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("step", BigInteger, primary_key=True),
    Column("value", Float),  # NULL stores NaN: SQLite turns NaN into NULL anyway
    Column("timestamp", Float, nullable=False),
)

latest_metrics = Table(
    "latest_metrics",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("step", BigInteger, nullable=False),
    Column("value", Float),
)
Index("ix_latest_metrics_key_value", latest_metrics.c.key, latest_metrics.c.value)

step_runs = Table(
    "step_runs",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("run_id", String(32), ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("position", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("cached", Boolean, nullable=False),
    Column("cache_key", String(64)),
    Column("started_at", Float),
    Column("ended_at", Float),
    Column("wall_s", Float),
    Column("cpu_s", Float),
    Column("peak_mem_bytes", BigInteger),
    Column("cpus", Float),
    Column("gpus", Float),
    Column("stdout", Text),
    Column("stderr", Text),
    Column("error", Text),
    Column("traceback", Text),
    Column("reason", Text),  # JSON: why it ran, or which run it was reused from
    Column("host", String(300)),  # where it ran: host, and node/worker on a cluster
    Column("attempts", Integer),  # starts of the step (@step(retries=N) allows N + 1)
    Column("env_digest", String(64)),  # the environment measured where it ran
    CheckConstraint(_one_of("status", StepStatus), name="ck_step_runs_status"),
)
Index("ix_step_runs_run_id", step_runs.c.run_id)
Index("ix_step_runs_name_started", step_runs.c.name, step_runs.c.started_at)

environments = Table(
    "environments",
    metadata,
    Column("digest", String(64), primary_key=True),  # SHA-256 of the canonical JSON
    Column("data", Text, nullable=False),
)

artifacts = Table(
    "artifacts",
    metadata,
    Column("digest", String(64), primary_key=True),
    Column("materializer", String(64), nullable=False),
    Column("type_name", String(255), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("meta", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("touched_at", Float),  # last time a writer or a cache hit claimed it (gc grace)
)

artifact_links = Table(
    "artifact_links",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(32), ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("step_run_id", String(32), ForeignKey("step_runs.id", ondelete="CASCADE")),
    Column("digest", String(64), ForeignKey("artifacts.digest"), nullable=False),
    Column("direction", String(8), nullable=False),  # input | output | logged
    Column("name", String(250), nullable=False),
)
Index("ix_artifact_links_digest", artifact_links.c.digest)
Index("ix_artifact_links_run_id", artifact_links.c.run_id)

step_cache = Table(
    "step_cache",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("step", String(200), nullable=False),
    Column("outputs", Text, nullable=False),  # JSON {output name: digest}
    Column("step_run_id", String(32), nullable=False),
    Column("created_at", Float, nullable=False),
)
Index("ix_step_cache_step_run_id", step_cache.c.step_run_id)

# The digests each cache entry hands out: what gc must keep while the entry lives.
cache_outputs = Table(
    "cache_outputs",
    metadata,
    Column("key", String(64), ForeignKey("step_cache.key", ondelete="CASCADE"), primary_key=True),
    Column("digest", String(64), ForeignKey("artifacts.digest"), primary_key=True),
)
Index("ix_cache_outputs_digest", cache_outputs.c.digest)

# What a cache key was computed from (code parts, params, input digests), to say why a
# step re-ran. Keyed by cache key, so runs that share a key share one row.
step_basis = Table(
    "step_basis",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("basis", Text, nullable=False),
)

# A dataset is a name; each version is an immutable blob (a file's bytes, or a folder as a
# deterministic tar) numbered per name. The same content under the same name is one version.
datasets = Table(
    "datasets",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("created_at", Float, nullable=False),
)

dataset_versions = Table(
    "dataset_versions",
    metadata,
    Column("name", String(200), ForeignKey("datasets.name", ondelete="CASCADE"), primary_key=True),
    Column("number", Integer, primary_key=True),
    Column("digest", String(64), ForeignKey("artifacts.digest"), nullable=False),
    Column("kind", String(8), nullable=False),  # file | folder
    Column("filename", String(255), nullable=False),  # the base name it was added from
    Column("format", String(16), nullable=False),  # csv | parquet | jsonl | other
    Column("size", BigInteger, nullable=False),
    Column("rows", BigInteger),  # tabular versions only
    Column("columns", Integer),
    Column("profile_digest", String(64), ForeignKey("artifacts.digest")),
    Column("source", Text, nullable=False),  # the path as given, for people
    Column("created_at", Float, nullable=False),
    UniqueConstraint("name", "digest", name="uq_dataset_versions_name_digest"),
    CheckConstraint("kind IN ('file', 'folder')", name="ck_dataset_versions_kind"),
)
Index("ix_dataset_versions_digest", dataset_versions.c.digest)
Index("ix_dataset_versions_profile_digest", dataset_versions.c.profile_digest)

# Each check of a version against a schema: the schema and the report are artifacts, so
# "was this training data validated, against what, with what result?" has an answer.
dataset_validations = Table(
    "dataset_validations",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False),
    Column("number", Integer, nullable=False),
    Column("schema_digest", String(64), ForeignKey("artifacts.digest"), nullable=False),
    Column("report_digest", String(64), ForeignKey("artifacts.digest"), nullable=False),
    Column("ok", Boolean, nullable=False),
    Column("errors", Integer, nullable=False),
    Column("warnings", Integer, nullable=False),
    Column("created_at", Float, nullable=False),
    ForeignKeyConstraint(
        ["name", "number"],
        ["dataset_versions.name", "dataset_versions.number"],
        ondelete="CASCADE",
    ),
)
Index("ix_dataset_validations_version", dataset_validations.c.name, dataset_validations.c.number)
Index("ix_dataset_validations_schema_digest", dataset_validations.c.schema_digest)
Index("ix_dataset_validations_report_digest", dataset_validations.c.report_digest)

# An evaluation suite is a name; each version freezes a dataset version, a target, a task, a
# split (its definition and the row indices it produced, stored as an artifact) and options.
# Redefining a suite creates a new version; the same definition again is the same version.
suites = Table(
    "suites",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("created_at", Float, nullable=False),
)

suite_versions = Table(
    "suite_versions",
    metadata,
    Column("name", String(200), ForeignKey("suites.name", ondelete="CASCADE"), primary_key=True),
    Column("number", Integer, primary_key=True),
    Column("dataset_name", String(200), nullable=False),
    Column("dataset_number", Integer, nullable=False),
    Column("dataset_digest", String(64), ForeignKey("artifacts.digest"), nullable=False),
    Column("target", Text, nullable=False),
    Column("task", String(16), nullable=False),
    Column(
        "split", Text, nullable=False
    ),  # the canonical split text, e.g. "random:test=0.2,seed=0"
    Column("options", Text, nullable=False),  # JSON: slices, features, threshold, metrics, ...
    Column("indices_digest", String(64), ForeignKey("artifacts.digest"), nullable=False),
    Column("indices_hash", String(64), nullable=False),  # digest of the row indices themselves
    Column("definition_hash", String(64), nullable=False),
    Column("test_rows", BigInteger, nullable=False),
    Column("created_at", Float, nullable=False),
    UniqueConstraint("name", "definition_hash", name="uq_suite_versions_name_definition"),
    CheckConstraint(
        "task IN ('binary', 'multiclass', 'regression', 'forecasting')",
        name="ck_suite_versions_task",
    ),
    ForeignKeyConstraint(
        ["dataset_name", "dataset_number"],
        ["dataset_versions.name", "dataset_versions.number"],
    ),
)
Index("ix_suite_versions_dataset", suite_versions.c.dataset_name, suite_versions.c.dataset_number)
Index("ix_suite_versions_indices_digest", suite_versions.c.indices_digest)

# One model judged by one suite version: the metrics with their intervals (JSON, so the
# leaderboard ranks without reading blobs), the predictions (so two models are compared on
# the same rows without running them again) and the full result, both artifacts.
evaluations = Table(
    "evaluations",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("suite_name", String(200), nullable=False),
    Column("suite_number", Integer, nullable=False),
    Column("model_digest", String(64), ForeignKey("artifacts.digest"), nullable=False),
    Column("model_label", Text, nullable=False),  # for people: "train#3 train", "3f2a9c0d1e2b"
    Column("run_id", String(32), ForeignKey("runs.id", ondelete="SET NULL")),
    Column("config_hash", String(64), nullable=False),  # resamples, seed, confidence, metrics
    Column("metrics", Text, nullable=False),  # JSON {name: [value, low, high]}
    Column("predictions_digest", String(64), ForeignKey("artifacts.digest"), nullable=False),
    Column("result_digest", String(64), ForeignKey("artifacts.digest"), nullable=False),
    Column("created_at", Float, nullable=False),
    UniqueConstraint(
        "suite_name",
        "suite_number",
        "model_digest",
        "config_hash",
        name="uq_evaluations_suite_model_config",
    ),
    ForeignKeyConstraint(
        ["suite_name", "suite_number"],
        ["suite_versions.name", "suite_versions.number"],
        ondelete="CASCADE",
    ),
)
Index("ix_evaluations_suite", evaluations.c.suite_name, evaluations.c.suite_number)
Index("ix_evaluations_model_digest", evaluations.c.model_digest)
Index("ix_evaluations_run_id", evaluations.c.run_id)
Index("ix_evaluations_predictions_digest", evaluations.c.predictions_digest)
Index("ix_evaluations_result_digest", evaluations.c.result_digest)

# The model registry: a name; numbered, immutable versions (each an artifact, with where it came
# from and what it expects); aliases ("production") that point at one version each and move only
# through recorded events (who, when, from, to, the gates' results, the reason).
models = Table(
    "models",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("created_at", Float, nullable=False),
)

model_versions = Table(
    "model_versions",
    metadata,
    Column("name", String(200), ForeignKey("models.name", ondelete="CASCADE"), primary_key=True),
    Column("number", Integer, primary_key=True),
    Column("digest", String(64), ForeignKey("artifacts.digest"), nullable=False),
    Column("run_id", String(32), ForeignKey("runs.id", ondelete="SET NULL")),
    Column("source", Text, nullable=False),  # "train#3:train", or "python" for a live object
    Column("library", String(64), nullable=False),  # sklearn | xgboost | lightgbm | python
    Column("library_version", String(64), nullable=False),
    Column("input_schema", Text),  # JSON: columns, kinds, categories (None: unknown)
    Column("output_schema", Text),  # JSON
    Column("metrics", Text, nullable=False),  # JSON {name: value} from the run
    Column("description", Text, nullable=False),
    Column("tags", Text, nullable=False),  # JSON {key: value}
    Column("created_by", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    UniqueConstraint("name", "digest", name="uq_model_versions_name_digest"),
)
Index("ix_model_versions_digest", model_versions.c.digest)
Index("ix_model_versions_run_id", model_versions.c.run_id)

# The dataset versions a model version was trained on (from its run's lineage): a dataset
# version stays while a model version names it.
model_datasets = Table(
    "model_datasets",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("number", Integer, primary_key=True),
    Column("dataset_name", String(200), primary_key=True),
    Column("dataset_number", Integer, primary_key=True),
    ForeignKeyConstraint(
        ["name", "number"], ["model_versions.name", "model_versions.number"], ondelete="CASCADE"
    ),
    ForeignKeyConstraint(
        ["dataset_name", "dataset_number"], ["dataset_versions.name", "dataset_versions.number"]
    ),
)
Index("ix_model_datasets_dataset", model_datasets.c.dataset_name, model_datasets.c.dataset_number)

model_aliases = Table(
    "model_aliases",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("alias", String(64), primary_key=True),
    Column("number", Integer, nullable=False),
    Column("moved_at", Float, nullable=False),
    ForeignKeyConstraint(["name", "number"], ["model_versions.name", "model_versions.number"]),
)

# Every move of an alias, forever: the audit history.
alias_events = Table(
    "alias_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False),
    Column("alias", String(64), nullable=False),
    Column("from_number", Integer),  # None: the alias did not exist
    Column("to_number", Integer),  # None: the alias was removed
    Column("at", Float, nullable=False),
    Column("by", Text, nullable=False),  # user@host, or a token's name
    Column("action", String(16), nullable=False),  # promote | rollback | remove
    Column("forced", Boolean, nullable=False),
    Column("reason", Text, nullable=False),
    Column("gates", Text, nullable=False),  # JSON: each gate with required, observed, passed
)
Index("ix_alias_events_alias", alias_events.c.name, alias_events.c.alias)

# -- serving: logged predictions and their ground truth --------------------------------------

# One row per logged prediction (sampled by `loopml serve` and `loopml predict`).
predictions = Table(
    "predictions",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("model", String(200), nullable=False),
    Column("version", Integer, nullable=False),
    Column("variant", String(300), nullable=False),  # the served ref, or shadow:REF
    Column("at", Float, nullable=False),
    Column("inputs", Text, nullable=False),  # JSON: the input row
    Column("output", Text, nullable=False),  # JSON: prediction (and probabilities)
    Column("shadow_of", String(64)),  # a shadow row: the id of the answered prediction
    Column("latency_ms", Float),  # the request's time in `loopml serve` (null: batch scoring)
)
Index("ix_predictions_model_at", predictions.c.model, predictions.c.at)

# The label sent to /feedback for a prediction id (no foreign key: it may come first).
prediction_feedback = Table(
    "prediction_feedback",
    metadata,
    Column("prediction_id", String(64), primary_key=True),
    Column("label", Text, nullable=False),  # JSON
    Column("at", Float, nullable=False),
)

# -- the server: schedules, API tokens, idempotent writes -------------------------------------

_FIRE_STATUSES = f"status IN ({', '.join(repr(str(v)) for v in FireStatus)})"

# A schedule: cron + time zone + pipeline + params; every due time up to `decided_until` has
# been claimed as a fire or recorded as skipped. `generation` grows on each edit.
schedules = Table(
    "schedules",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("pipeline", String(200), nullable=False),
    Column("cron", String(200), nullable=False),
    Column("timezone", String(64), nullable=False),
    Column("params", Text, nullable=False),  # JSON {name: value}
    Column("timeout_s", Float),
    Column("retries", Integer, nullable=False),
    Column("backoff_s", Float, nullable=False),
    Column("catchup", String(8), nullable=False),
    Column("overlap", String(8), nullable=False),  # wait | skip | allow (a fire still runs)
    Column("paused", Boolean, nullable=False),
    Column("source", String(16), nullable=False),
    Column("decided_until", Float, nullable=False),
    Column("generation", Integer, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("updated_by", Text, nullable=False),
    CheckConstraint("catchup IN ('skip', 'once', 'all')", name="ck_schedules_catchup"),
    CheckConstraint("source IN ('cli', 'config')", name="ck_schedules_source"),
    CheckConstraint("overlap IN ('wait', 'skip', 'allow')", name="ck_schedules_overlap"),
)

# One row per (schedule, due time): the unique constraint makes each fire run exactly once.
schedule_fires = Table(
    "schedule_fires",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("schedule", String(200), nullable=False),
    Column("due_at", Float, nullable=False),
    Column("kind", String(16), nullable=False),  # cron | catchup | manual
    Column("status", String(16), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("run_id", String(32)),  # the latest attempt's run
    Column("owner", String(64)),  # the scheduler that runs it
    Column("lease_until", Float),
    Column("not_before", Float, nullable=False),  # start no earlier (retry back-off)
    Column("claimed_at", Float, nullable=False),
    Column("started_at", Float),
    Column("ended_at", Float),
    Column("error", Text),
    Column("requested_by", Text),  # who asked for a manual fire (run-now)
    UniqueConstraint("schedule", "due_at", name="uq_schedule_fires_due"),
    CheckConstraint(_FIRE_STATUSES, name="ck_schedule_fires_status"),
    CheckConstraint("kind IN ('cron', 'catchup', 'manual')", name="ck_schedule_fires_kind"),
)
Index("ix_schedule_fires_status", schedule_fires.c.status, schedule_fires.c.not_before)

# API tokens: only the SHA-256 of each token is stored.
api_tokens = Table(
    "api_tokens",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("hash", String(64), nullable=False, unique=True),
    Column("role", String(16), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("created_by", Text, nullable=False),
    Column("expires_at", Float),
    Column("revoked_at", Float),
    Column("last_used_at", Float),
    CheckConstraint("role IN ('reader', 'writer', 'admin')", name="ck_api_tokens_role"),
)

# The answer to a write sent with an Idempotency-Key, so a retry writes nothing twice.
idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("idem_key", String(200), primary_key=True),
    Column("scope", String(200), nullable=False),
    Column("at", Float, nullable=False),
    Column("response", Text, nullable=False),
)

# -- monitoring: monitors over logged predictions, their windows and alerts ---------------------

# A monitor: the served model it watches, its reference data, windows, rules and actions.
monitors = Table(
    "monitors",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("model", String(300), nullable=False),  # "churn@production"
    Column("reference", String(300), nullable=False),  # a dataset ref, "training" or "previous"
    Column("window_s", Float, nullable=False),
    Column("every_s", Float, nullable=False),  # == window_s: fixed windows; less: sliding
    Column("origin", Float, nullable=False),  # the start of the first window evaluated
    Column("rules", Text, nullable=False),  # the rules file's TOML text
    Column("rules_path", Text, nullable=False),
    Column("actions", Text, nullable=False),  # JSON: notify URLs, retrain pipeline, auto-promote
    Column("target", String(300)),  # the label column of the reference data
    Column("paused", Boolean, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("updated_by", Text, nullable=False),
)

# One evaluated window; evaluated again when its label count grows (late feedback).
monitor_windows = Table(
    "monitor_windows",
    metadata,
    Column(
        "monitor", String(200), ForeignKey("monitors.name", ondelete="CASCADE"), primary_key=True
    ),
    Column("start_at", Float, primary_key=True),
    Column("end_at", Float, nullable=False),
    Column("row_count", Integer, nullable=False),
    Column("label_count", Integer, nullable=False),
    Column("stats", Text, nullable=False),  # JSON: WindowStats.to_dict()
    Column("evaluated_at", Float, nullable=False),
)

# One alert per (monitor, rule, window): the unique constraint makes each fire once.
monitor_alerts = Table(
    "monitor_alerts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("monitor", String(200), ForeignKey("monitors.name", ondelete="CASCADE"), nullable=False),
    Column("rule", String(200), nullable=False),
    Column("window_start", Float, nullable=False),
    Column("window_end", Float, nullable=False),
    Column("fired_at", Float, nullable=False),
    Column("value", Float),
    Column("message", Text, nullable=False),
    Column("owner", String(64)),  # the process doing its actions, under a lease
    Column("lease_until", Float),
    Column("notified_at", Float),
    Column("notify_error", Text),
    Column("run_id", String(32)),  # the retrain run it started
    Column("promotion", Text),  # JSON: what auto-promotion did
    Column("acted_at", Float),  # every action done
    UniqueConstraint("monitor", "rule", "window_start", name="uq_monitor_alerts_once"),
)
Index("ix_monitor_alerts_acted", monitor_alerts.c.acted_at)
