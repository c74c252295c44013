"""Run rows: create with a per-pipeline number, heartbeat, finish, sweep the dead, read, delete.

Liveness (RELIABILITY.md rule 3): a running run holds a lease (``heartbeat_at`` +
``lease_s``, both on the database's clock) and a random ``lease_token``. Only the token
holder may heartbeat or finish it; every state change is guarded by ``status = 'running'``
so finishing and being swept as crashed cannot both win. A run is swept when its owner
process is gone from this machine (pid + start time, so a reused pid does not fool it),
or, for owners elsewhere, when its lease has expired. An owner that is alive on this
machine is never swept, however long its lease has lapsed: a step holding the GIL or a
stopped (SIGSTOP) process is slow, not dead.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from loopml.errors import ConflictError, InvalidParameterError, LeaseLostError, NotFoundError
from loopml.store.engine import Database, Tx
from loopml.store.records import NewRun, RunRecord
from loopml.store.status import FINAL_RUN_STATUSES, RunStatus, StepStatus
from loopml.store.validate import MAX_NAME, check_key, check_name, storable_text

_RUN_COLUMNS = (
    "id, pipeline, number, name, kind, status, started_at, ended_at, duration_s, heartbeat_at, "
    "host, pid, executor, git_commit, git_dirty, git_diff_digest, python_version, env_digest, "
    "cpu_s, cost, error, lease_s, owner"
)
_HEX = set("0123456789abcdef")


@dataclass(frozen=True, slots=True)
class EnvRow:
    """An environment as stored: its canonical JSON and that text's SHA-256."""

    digest: str
    data: str


def environment_row(env: dict[str, Any]) -> EnvRow:
    """The row of an environment; equal environments share one row."""
    data = json.dumps(env, sort_keys=True, separators=(",", ":"), default=str)
    return EnvRow(hashlib.sha256(data.encode("utf-8", "backslashreplace")).hexdigest(), data)


def insert_environment(tx: Tx, env: EnvRow) -> None:
    """Store an environment once; runs refer to it by digest."""
    tx.execute(
        "INSERT INTO environments (digest, data) VALUES (?, ?) ON CONFLICT (digest) DO NOTHING",
        (env.digest, env.data),
    )


def _env_row(environment: EnvRow | dict[str, Any] | None) -> EnvRow | None:
    if environment is None or isinstance(environment, EnvRow):
        return environment
    return environment_row(environment)


class Runs:
    """Run rows of one :class:`~loopml.store.engine.Database`."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._environments: dict[str, dict[str, Any]] = {}

    # -- the owner's writes ---------------------------------------------------------------

    def create(
        self,
        *,
        pipeline: str,
        name: str | None = None,
        kind: str = "pipeline",
        host: str,
        pid: int,
        executor: str,
        owner: str | None = None,
        lease_s: float,
        python_version: str | None = None,
        environment: EnvRow | dict[str, Any] | None = None,
        git: dict[str, Any] | None = None,
    ) -> tuple[NewRun, str]:
        """Insert a running run; returns it (id, number) and the lease token that owns it."""
        check_name("Pipeline name", pipeline)
        if name is not None:
            check_name("Run name", name)
        check_name("Executor name", executor, 64)
        run_id, token = uuid.uuid4().hex, uuid.uuid4().hex
        env_row = _env_row(environment)
        git = git or {}

        def insert(tx: Tx) -> NewRun:
            if env_row is not None:
                insert_environment(tx, env_row)
            # MAX() inside the write transaction (BEGIN IMMEDIATE / unique constraint on PG).
            top = tx.scalar("SELECT MAX(number) FROM runs WHERE pipeline = ?", (pipeline,))
            number = int(top or 0) + 1
            label = name or f"{pipeline}#{number}"
            if len(label) > MAX_NAME:
                label = f"{pipeline[: MAX_NAME - 12]}…#{number}"
            tx.execute(
                "INSERT INTO runs (id, pipeline, number, name, kind, status, started_at, "
                "heartbeat_at, lease_s, lease_token, host, pid, executor, python_version, "
                "env_digest, git_commit, git_dirty, git_diff_digest, owner) VALUES "
                f"(?, ?, ?, ?, ?, 'running', {tx.now}, {tx.now}, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    run_id,
                    pipeline,
                    number,
                    label,
                    kind,
                    lease_s,
                    token,
                    host[:255],
                    pid,
                    executor,
                    python_version,
                    env_row.digest if env_row else None,
                    git.get("commit"),
                    git.get("dirty"),
                    git.get("diff_digest"),
                    owner,
                ),
            )
            return NewRun(run_id, pipeline, number, label)

        for _ in range(50):
            try:
                return self.db.write(insert), token
            except ConflictError:
                self.db.retries += 1  # another process took this number first: retry
        raise ConflictError(f"Could not allocate a run number for pipeline {pipeline!r}.")

    def heartbeat(self, run_id: str, token: str) -> bool:
        """Extend the lease; False when the run is no longer ours (swept or finished)."""

        def beat(tx: Tx) -> int:
            return tx.execute(
                f"UPDATE runs SET heartbeat_at = {tx.now} "
                "WHERE id = ? AND lease_token = ? AND status = 'running'",
                (run_id, token),
            )

        return self.db.write(beat) == 1

    def finish(
        self,
        run_id: str,
        token: str,
        status: str,
        *,
        error: str | None = None,
        cpu_s: float | None = None,
        cost: float | None = None,
        before: Callable[[Tx], None] | None = None,
    ) -> bool:
        """Move a running run to a final status; False if it had already left ``running``.

        ``before`` runs in the same transaction once the run is known to be ours (the last
        buffered metrics), so a run never reads as finished without its final writes, and a
        run someone else already ended gets none of them.
        """
        if status not in FINAL_RUN_STATUSES:
            raise InvalidParameterError(
                f"Run status: got {status!r}; expected one of {[str(s) for s in FINAL_RUN_STATUSES]}."
            )

        def end(tx: Tx) -> int:
            ended = tx.execute(
                f"UPDATE runs SET status = ?, ended_at = {tx.now}, "
                f"duration_s = {tx.now} - started_at, error = ?, cpu_s = ?, cost = ? "
                "WHERE id = ? AND lease_token = ? AND status = 'running'",
                (status, error, cpu_s, cost, run_id, token),
            )
            if ended == 1 and before is not None:
                before(tx)
            return ended

        return self.db.write(end) == 1

    def note_lost_lease(self, run_id: str, token: str, note: str) -> None:
        """Add what the owner saw to a run that was swept while it still worked."""

        def write(tx: Tx) -> None:
            tx.execute(
                "UPDATE runs SET error = COALESCE(error, '') || ? "
                "WHERE id = ? AND lease_token = ? AND status = 'crashed'",
                (f" {note}", run_id, token),
            )

        self.db.write(write)

    def update_info(
        self, run_id: str, *, environment: EnvRow | dict[str, Any] | None = None, **values: Any
    ) -> None:
        """Set capture fields (git, environment) on a run, whatever its status."""
        allowed = {"git_commit", "git_dirty", "git_diff_digest"}
        unknown = set(values) - allowed
        if unknown:
            raise InvalidParameterError(f"update_info: unknown fields {sorted(unknown)}.")
        env_row = _env_row(environment)
        if env_row is not None:
            values["env_digest"] = env_row.digest
        if not values:
            return

        def write(tx: Tx) -> None:
            if env_row is not None:
                insert_environment(tx, env_row)
            names = sorted(values)
            tx.execute(
                f"UPDATE runs SET {', '.join(f'{n} = ?' for n in names)} WHERE id = ?",
                (*(values[n] for n in names), run_id),
            )

        self.db.write(write)

    # -- liveness -------------------------------------------------------------------------

    def sweep_crashed(
        self, alive: Callable[[str | None], bool | None] | None = None, *, now: float | None = None
    ) -> int:
        """Mark dead runs ``crashed``; returns how many.

        Args:
            alive: ``owner -> True/False`` for owners on this machine, None for others;
                without it only leases decide.
            now: judge leases at this time instead of the database's clock (tests, and
                "what would be swept at …").
        """

        def clock(tx: Tx) -> str:
            return tx.now if now is None else repr(float(now))

        rows = self.db.read(
            lambda tx: tx.all(
                f"SELECT id, owner, heartbeat_at + lease_s < {clock(tx)} FROM runs "
                "WHERE status = 'running'"
            )
        )
        dead, expired = [], []
        for run_id, owner, lapsed in rows:
            state = alive(owner) if alive is not None else None
            if state is False:
                dead.append(run_id)
            elif state is None and lapsed:
                expired.append(run_id)
        if not dead and not expired:
            return 0

        def sweep(tx: Tx) -> int:
            count = 0
            for ids, guard, why in (
                (dead, "", "Its process exited without ending the run (killed or crashed)."),
                (
                    expired,
                    f" AND heartbeat_at + lease_s < {clock(tx)}",
                    "No heartbeat reached the store within its lease: its process was killed, "
                    "lost the store, or its host is down.",
                ),
            ):
                if not ids:
                    continue
                found = [
                    r[0]
                    for r in tx.all(
                        f"SELECT id FROM runs WHERE id IN ({tx.marks(len(ids))}) "
                        f"AND status = 'running'{guard}",
                        ids,
                    )
                ]
                if not found:
                    continue
                marks = tx.marks(len(found))
                tx.execute(
                    f"UPDATE step_runs SET status = '{StepStatus.CRASHED}' WHERE run_id IN "
                    f"({marks}) AND status IN ('{StepStatus.PENDING}', '{StepStatus.RUNNING}')",
                    found,
                )
                count += tx.execute(
                    "UPDATE runs SET status = 'crashed', ended_at = heartbeat_at, "
                    "duration_s = heartbeat_at - started_at, error = ? "
                    f"WHERE id IN ({marks}) AND status = 'running'",
                    (why, *found),
                )
            return count

        return self.db.write(sweep)

    # -- reading --------------------------------------------------------------------------

    def resolve(self, ref: str) -> str:
        """Turn a run reference into a run id: a full id, a unique id prefix, or ``pipeline#N``."""
        if not isinstance(ref, str):
            raise InvalidParameterError(f"Run reference: got {ref!r}; expected a string.")
        ref = ref.strip()
        if "#" in ref:
            pipeline, _, number = ref.rpartition("#")
            if not number.isdigit() or len(number) > 18:
                raise InvalidParameterError(
                    f"Run reference {ref!r}: expected 'PIPELINE#NUMBER', e.g. 'train#3'."
                )
            found = self.db.read(
                lambda tx: tx.scalar(
                    "SELECT id FROM runs WHERE pipeline = ? AND number = ?",
                    (pipeline, int(number)),
                )
            )
            if found is None:
                raise NotFoundError(f"No run {ref!r}. List runs with `loopml runs`.")
            return str(found)
        lowered = ref.lower()
        if not lowered or not set(lowered) <= _HEX or len(lowered) > 32:
            raise InvalidParameterError(
                f"Run reference {ref!r}: expected a run id (hex, at least 4 characters) or "
                "'PIPELINE#NUMBER'."
            )
        if len(lowered) < 4:
            raise InvalidParameterError(
                f"Run id prefix {ref!r} is too short; give at least 4 characters."
            )
        if len(lowered) == 32:
            found = self.db.read(
                lambda tx: tx.scalar("SELECT id FROM runs WHERE id = ?", (lowered,))
            )
            if found is None:
                raise NotFoundError(f"No run with id {ref!r}. List runs with `loopml runs`.")
            return str(found)
        # A prefix is a range on the primary key: 'ab12' <= id < 'ab13'.
        upper = _next_prefix(lowered)
        rows = self.db.read(
            lambda tx: tx.all(
                "SELECT id, pipeline, number FROM runs WHERE id >= ? AND id < ? "
                "ORDER BY id LIMIT 6",
                (lowered, upper),
            )
        )
        if not rows:
            raise NotFoundError(f"No run with id {ref!r}. List runs with `loopml runs`.")
        if len(rows) > 1:
            listed = ", ".join(f"{r[0][:12]} ({r[1]}#{r[2]})" for r in rows[:5])
            more = " and more" if len(rows) > 5 else ""
            raise InvalidParameterError(
                f"Run id prefix {ref!r} is ambiguous: it matches {listed}{more}. Give more "
                "characters."
            )
        return str(rows[0][0])

    def get(self, ref: str) -> RunRecord:
        return self.load([self.resolve(ref)], environment=True)[0]

    def load(
        self, run_ids: Iterable[str], tx: Tx | None = None, *, environment: bool = True
    ) -> list[RunRecord]:
        """Records for ``run_ids`` in the given order, with params, metrics and tags."""
        ids = list(dict.fromkeys(run_ids))
        if not ids:
            return []
        if tx is None:
            return self.db.read(lambda t: self.load(ids, t, environment=environment))
        rows: dict[str, tuple[Any, ...]] = {}
        extras: dict[str, tuple[dict[str, str], dict[str, float], dict[str, str]]] = {
            i: ({}, {}, {}) for i in ids
        }
        for chunk in chunks(ids, CHUNK):
            marks = tx.marks(len(chunk))
            for row in tx.all(f"SELECT {_RUN_COLUMNS} FROM runs WHERE id IN ({marks})", chunk):
                rows[row[0]] = row
            for run_id, key, value in tx.all(
                f"SELECT run_id, key, value FROM params WHERE run_id IN ({marks})", chunk
            ):
                extras[run_id][0][key] = value
            for run_id, key, value in tx.all(
                f"SELECT run_id, key, value FROM latest_metrics WHERE run_id IN ({marks})", chunk
            ):
                extras[run_id][1][key] = float("nan") if value is None else value
            for run_id, key, value in tx.all(
                f"SELECT run_id, key, value FROM tags WHERE run_id IN ({marks})", chunk
            ):
                extras[run_id][2][key] = value
        envs = (
            self._load_environments(tx, {r[17] for r in rows.values() if r[17]})
            if environment
            else {}
        )
        return [_record(rows[i], extras[i], envs) for i in ids if i in rows]

    def _load_environments(self, tx: Tx, digests: set[str]) -> dict[str, dict[str, Any]]:
        # Environments are immutable (keyed by their digest): parse each once per store.
        missing = [d for d in digests if d not in self._environments]
        for chunk in chunks(missing, CHUNK):
            for digest, data in tx.all(
                f"SELECT digest, data FROM environments WHERE digest IN ({tx.marks(len(chunk))})",
                chunk,
            ):
                self._environments[digest] = json.loads(data)
        return self._environments

    def counts_by_pipeline(self) -> dict[str, int]:
        """How many runs each pipeline has, by pipeline name (pipelines without runs are
        absent). One pass over the (pipeline, number) index, no run is loaded: fast with
        100,000 runs."""
        rows = self.db.read(
            lambda tx: tx.all("SELECT pipeline, COUNT(*) FROM runs GROUP BY pipeline")
        )
        return {str(name): int(count) for name, count in rows}

    # -- lifecycle ------------------------------------------------------------------------

    def delete(self, run_ids: Sequence[str]) -> dict[str, int]:
        """Hard-delete finished runs with everything that hangs off them, and their cache entries.

        Raises:
            ConflictError: one of the runs is still running (end or cancel it first).
        """
        counts = {"runs": 0, "cache_entries": 0}
        for chunk in chunks(list(run_ids), CHUNK):

            def delete(tx: Tx, chunk: list[str] = chunk) -> tuple[int, int]:
                marks = tx.marks(len(chunk))
                live = tx.all(
                    f"SELECT pipeline, number FROM runs WHERE id IN ({marks}) "
                    "AND status = 'running'",
                    chunk,
                )
                if live:
                    names = ", ".join(f"{p}#{n}" for p, n in live)
                    raise ConflictError(
                        f"Cannot delete running runs ({names}); wait for them to end, or stop "
                        "them (Ctrl-C / kill) first. Nothing was deleted."
                    )
                steps = f"SELECT id FROM step_runs WHERE run_id IN ({marks})"
                cached = tx.execute(f"DELETE FROM step_cache WHERE step_run_id IN ({steps})", chunk)
                for table in ("metrics", "latest_metrics", "params", "tags", "artifact_links"):
                    tx.execute(f"DELETE FROM {table} WHERE run_id IN ({marks})", chunk)
                tx.execute(f"DELETE FROM step_runs WHERE run_id IN ({marks})", chunk)
                return tx.execute(f"DELETE FROM runs WHERE id IN ({marks})", chunk), cached

            deleted, cached = self.db.write(delete)
            counts["runs"] += deleted
            counts["cache_entries"] += cached
        return counts

    def rename(self, run_id: str, name: str) -> None:
        check_name("Run name", name)

        def write(tx: Tx) -> None:
            if tx.execute("UPDATE runs SET name = ? WHERE id = ?", (name, run_id)) != 1:
                raise NotFoundError(f"No run with id {run_id!r}.")

        self.db.write(write)

    def set_tags(self, run_id: str, tags: dict[str, Any], remove: Sequence[str] = ()) -> None:
        """Set (and remove) tags on any run, running or finished."""
        rows = [
            (run_id, check_key("Tag", k), storable_text("Tag", k, str(v))) for k, v in tags.items()
        ]

        def write(tx: Tx) -> None:
            if tx.scalar("SELECT 1 FROM runs WHERE id = ?", (run_id,)) is None:
                raise NotFoundError(f"No run with id {run_id!r}.")
            tx.executemany(
                "INSERT INTO tags (run_id, key, value) VALUES (?, ?, ?) "
                "ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value",
                rows,
            )
            tx.executemany(
                "DELETE FROM tags WHERE run_id = ? AND key = ?", [(run_id, k) for k in remove]
            )

        self.db.write(write)


CHUNK = 500


def require_running(tx: Tx, run_id: str) -> None:
    """Refuse a write for a run that is no longer running (swept or finished)."""
    row = tx.one("SELECT status, pipeline, number, error FROM runs WHERE id = ?", (run_id,))
    if row is None:
        raise NotFoundError(f"No run with id {run_id!r}: it was deleted.")
    if row[0] != RunStatus.RUNNING:
        raise LeaseLostError(
            f"Run {row[1]}#{row[2]} is {row[0]}, not running, so its writes are refused"
            + (f": {row[3]}" if row[3] else ".")
        )


def chunks(items: list[str], size: int) -> Iterable[list[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _next_prefix(prefix: str) -> str:
    """The smallest string above every string starting with ``prefix`` (hex digits only)."""
    last = prefix[-1]
    if last == "f":
        return _next_prefix(prefix[:-1]) if len(prefix) > 1 else "g"
    return prefix[:-1] + "0123456789abcdef"[int(last, 16) + 1]


def _record(
    row: tuple[Any, ...],
    extra: tuple[dict[str, str], dict[str, float], dict[str, str]],
    envs: dict[str, dict[str, Any]],
) -> RunRecord:
    return RunRecord(
        id=row[0],
        pipeline=row[1],
        number=row[2],
        name=row[3],
        kind=row[4],
        status=RunStatus(row[5]),
        started_at=row[6],
        ended_at=row[7],
        duration_s=row[8],
        heartbeat_at=row[9],
        host=row[10],
        pid=row[11],
        executor=row[12],
        git_commit=row[13],
        git_dirty=None if row[14] is None else bool(row[14]),
        git_diff_digest=row[15],
        python_version=row[16],
        environment=envs.get(row[17], {}) if row[17] else {},
        cpu_s=row[18],
        cost=row[19],
        error=row[20],
        params=extra[0],
        metrics=extra[1],
        tags=extra[2],
        lease_s=row[21],
        owner=row[22],
    )
