"""Registered models: numbered immutable versions, aliases, and the history of every alias move.

References: ``NAME`` or ``NAME@latest`` (the newest version), ``NAME@3`` (version 3),
``NAME@production`` (whatever version the alias ``production`` holds now).

An alias moves only through ``move_alias``, which checks, in the same transaction that moves
it, that the alias still holds the version the caller saw when it decided (its gates ran
against that holder). Of two promotions racing for one alias, the first to commit wins; the
other finds the holder changed and gets a ``ConflictError`` that says so — never a silent
overwrite. Each move writes an event (who, when, from, to, the gates' results, the reason):
the audit history.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from loopml.errors import ConflictError, InvalidParameterError, NotFoundError
from loopml.store.engine import Database, Tx
from loopml.store.validate import versioned_name, versioned_ref

_EXAMPLE = "'churn'"
_ALIAS = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")
RESERVED_ALIASES = ("latest",)
_COLUMNS = (
    "name, number, digest, run_id, source, library, library_version, input_schema, "
    "output_schema, metrics, description, tags, created_by, created_at"
)
_EVENT_COLUMNS = "id, name, alias, from_number, to_number, at, by, action, forced, reason, gates"


@dataclass(frozen=True)
class ModelVersion:
    """One immutable version of a registered model."""

    name: str
    number: int
    digest: str
    run_id: str | None
    source: str
    library: str
    library_version: str
    input_schema: dict[str, Any] | None
    output_schema: dict[str, Any] | None
    metrics: dict[str, float]
    description: str
    tags: dict[str, str]
    created_by: str
    created_at: float
    datasets: tuple[str, ...] = ()  # NAME@N of the dataset versions it was trained on
    aliases: tuple[str, ...] = field(default=(), compare=False)

    @property
    def label(self) -> str:
        return f"{self.name}@{self.number}"


@dataclass(frozen=True)
class AliasEvent:
    """One move of an alias."""

    id: int
    name: str
    alias: str
    from_number: int | None
    to_number: int | None
    at: float
    by: str
    action: str  # promote | rollback | remove
    forced: bool
    reason: str
    gates: list[dict[str, Any]]


def check_model_name(name: Any) -> str:
    return versioned_name("Model", name, _EXAMPLE)


def check_alias(alias: Any) -> str:
    """An alias: a word of letters, digits, ``_`` and ``-`` starting with a letter."""
    if not isinstance(alias, str) or not _ALIAS.fullmatch(alias) or alias in RESERVED_ALIASES:
        shown = repr(alias) if not isinstance(alias, str) or len(alias) < 70 else repr(alias[:60])
        raise InvalidParameterError(
            f"Alias {shown}: use a word of letters, digits, '_' and '-' starting with a letter "
            "(at most 64 characters; no spaces or '@'; 'latest' is reserved), e.g. 'production'."
        )
    return alias


class Models:
    """The model registry of one database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # -- versions -------------------------------------------------------------------------

    def register(
        self, version: ModelVersion, datasets: Sequence[tuple[str, int]] = ()
    ) -> tuple[ModelVersion, bool]:
        """Record ``version`` (its ``number`` is ignored) unless the name already holds its
        artifact; returns the stored version and whether it is new."""
        check_model_name(version.name)

        def write(tx: Tx) -> tuple[ModelVersion, bool]:
            tx.execute(
                "INSERT INTO models (name, created_at) VALUES (?, ?) ON CONFLICT (name) DO NOTHING",
                (version.name, version.created_at),
            )
            if not self.db.is_sqlite:  # one registrar per name at a time
                tx.execute("SELECT name FROM models WHERE name = ? FOR UPDATE", (version.name,))
            row = tx.one(
                f"SELECT {_COLUMNS} FROM model_versions WHERE name = ? AND digest = ?",
                (version.name, version.digest),
            )
            if row is not None:
                return self._with_links(tx, _version(row)), False
            top = tx.scalar(
                "SELECT MAX(number) FROM model_versions WHERE name = ?", (version.name,)
            )
            number = int(top or 0) + 1
            tx.execute(
                f"INSERT INTO model_versions ({_COLUMNS}) VALUES "
                "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    version.name,
                    number,
                    version.digest,
                    version.run_id,
                    version.source,
                    version.library,
                    version.library_version,
                    _dump(version.input_schema),
                    _dump(version.output_schema),
                    json.dumps(version.metrics),
                    version.description,
                    json.dumps(version.tags),
                    version.created_by,
                    version.created_at,
                ),
            )
            for dataset_name, dataset_number in sorted(set(datasets)):
                tx.execute(
                    "INSERT INTO model_datasets (name, number, dataset_name, dataset_number) "
                    "VALUES (?, ?, ?, ?)",
                    (version.name, number, dataset_name, dataset_number),
                )
            row = tx.one(
                f"SELECT {_COLUMNS} FROM model_versions WHERE name = ? AND number = ?",
                (version.name, number),
            )
            assert row is not None
            return self._with_links(tx, _version(row)), True

        return self.db.write(write)

    def get(self, ref: str) -> ModelVersion:
        """The version ``NAME``, ``NAME@latest``, ``NAME@N`` or ``NAME@ALIAS`` names.

        Raises:
            InvalidParameterError: a malformed reference.
            NotFoundError: no such model, version or alias (the message lists what exists).
        """
        name, version = versioned_ref("Model", ref, _EXAMPLE)

        def read(tx: Tx) -> ModelVersion:
            if version == "latest":
                row = tx.one(
                    f"SELECT {_COLUMNS} FROM model_versions WHERE name = ? "
                    "ORDER BY number DESC LIMIT 1",
                    (name,),
                )
            elif version.isdigit() and len(version) <= 18:
                row = tx.one(
                    f"SELECT {_COLUMNS} FROM model_versions WHERE name = ? AND number = ?",
                    (name, int(version)),
                )
            else:
                check_alias(version)
                row = tx.one(
                    f"SELECT {', '.join('v.' + c.strip() for c in _COLUMNS.split(','))} "
                    "FROM model_versions v JOIN model_aliases a ON a.name = v.name AND "
                    "a.number = v.number WHERE a.name = ? AND a.alias = ?",
                    (name, version),
                )
            if row is None:
                raise NotFoundError(self._missing(tx, name, ref, version))
            return self._with_links(tx, _version(row))

        return self.db.read(read)

    def _missing(self, tx: Tx, name: str, ref: str, version: str) -> str:
        numbers = [
            int(r[0])
            for r in tx.all(
                "SELECT number FROM model_versions WHERE name = ? ORDER BY number", (name,)
            )
        ]
        if not numbers:
            return (
                f"No model named {name!r}. List models with `loopml models`; register one with "
                "`loopml register NAME --run RUN --output OUTPUT`."
            )
        aliases = [str(r[0]) for r in tx.all(
            "SELECT alias FROM model_aliases WHERE name = ? ORDER BY alias", (name,)
        )]  # fmt: skip
        shown = ", ".join(f"@{n}" for n in numbers[-10:])
        held = f"; aliases: {', '.join('@' + a for a in aliases)}" if aliases else "; no aliases"
        what = "version" if version.isdigit() else "alias"
        return f"No {what} {ref!r}. {name} has versions {shown}{held}."

    def find(self, name: str, digest: str) -> ModelVersion | None:
        """The version of ``name`` that holds artifact ``digest``, if any."""
        check_model_name(name)

        def read(tx: Tx) -> ModelVersion | None:
            row = tx.one(
                f"SELECT {_COLUMNS} FROM model_versions WHERE name = ? AND digest = ?",
                (name, digest),
            )
            return None if row is None else self._with_links(tx, _version(row))

        return self.db.read(read)

    def versions(self, name: str) -> list[ModelVersion]:
        """Every version of ``name``, oldest first (empty if the name is unknown)."""
        check_model_name(name)
        return self.db.read(
            lambda tx: [
                self._with_links(tx, _version(r))
                for r in tx.all(
                    f"SELECT {_COLUMNS} FROM model_versions WHERE name = ? ORDER BY number",
                    (name,),
                )
            ]
        )

    def latest(self) -> list[ModelVersion]:
        """The newest version of every model, by name."""
        cols = ", ".join("v." + c.strip() for c in _COLUMNS.split(","))
        return self.db.read(
            lambda tx: [
                self._with_links(tx, _version(r))
                for r in tx.all(
                    f"SELECT {cols} FROM model_versions v JOIN (SELECT name, MAX(number) AS top "
                    "FROM model_versions GROUP BY name) t ON t.name = v.name AND "
                    "t.top = v.number ORDER BY v.name"
                )
            ]
        )

    def of_run(self, run_id: str) -> list[ModelVersion]:
        """The versions a run produced."""
        return self.db.read(
            lambda tx: [
                self._with_links(tx, _version(r))
                for r in tx.all(
                    f"SELECT {_COLUMNS} FROM model_versions WHERE run_id = ? ORDER BY name, number",
                    (run_id,),
                )
            ]
        )

    def delete_version(self, ref: str) -> ModelVersion:
        """Delete one version that no alias holds (its blob goes at the next ``gc``).

        Raises:
            ConflictError: an alias holds it (the message names the alias).
        """
        version = self.get(ref)

        def write(tx: Tx) -> None:
            held = [
                str(r[0])
                for r in tx.all(
                    "SELECT alias FROM model_aliases WHERE name = ? AND number = ? ORDER BY alias",
                    (version.name, version.number),
                )
            ]
            if held:
                raise ConflictError(
                    f"{version.label} is held by alias {', '.join('@' + a for a in held)}; "
                    f"move the alias first (`loopml promote {version.name} N --to {held[0]}` or "
                    f"`loopml rollback {version.name} --alias {held[0]}`)."
                )
            deleted = tx.execute(
                "DELETE FROM model_versions WHERE name = ? AND number = ?",
                (version.name, version.number),
            )
            if not deleted:
                raise NotFoundError(f"{version.label} was deleted meanwhile.")

        self.db.write(write)
        return version

    def _with_links(self, tx: Tx, v: ModelVersion) -> ModelVersion:
        datasets = tuple(
            f"{r[0]}@{r[1]}"
            for r in tx.all(
                "SELECT dataset_name, dataset_number FROM model_datasets WHERE name = ? AND "
                "number = ? ORDER BY dataset_name, dataset_number",
                (v.name, v.number),
            )
        )
        aliases = tuple(
            str(r[0])
            for r in tx.all(
                "SELECT alias FROM model_aliases WHERE name = ? AND number = ? ORDER BY alias",
                (v.name, v.number),
            )
        )
        return ModelVersion(**{**v.__dict__, "datasets": datasets, "aliases": aliases})

    # -- aliases --------------------------------------------------------------------------

    def aliases(self, name: str) -> dict[str, int]:
        """Alias -> version number, for one model."""
        check_model_name(name)
        rows = self.db.read(
            lambda tx: tx.all(
                "SELECT alias, number FROM model_aliases WHERE name = ? ORDER BY alias", (name,)
            )
        )
        return {str(a): int(n) for a, n in rows}

    def move_alias(
        self,
        name: str,
        alias: str,
        to: int | None,
        *,
        expected: int | None,
        by: str,
        action: str,
        at: float,
        forced: bool = False,
        reason: str = "",
        gates: Sequence[dict[str, Any]] = (),
    ) -> AliasEvent:
        """Point ``alias`` at version ``to`` (None: remove it), if it still holds ``expected``.

        Raises:
            ConflictError: the alias moved since the caller looked (another promotion won).
            NotFoundError: version ``to`` does not exist (it may have just been deleted).
        """
        check_model_name(name)
        check_alias(alias)

        def write(tx: Tx) -> AliasEvent:
            lock = "" if self.db.is_sqlite else " FOR UPDATE"
            if not self.db.is_sqlite:  # serialise movers of this model's aliases
                tx.execute(f"SELECT name FROM models WHERE name = ?{lock}", (name,))
            current = tx.scalar(
                "SELECT number FROM model_aliases WHERE name = ? AND alias = ?", (name, alias)
            )
            current = None if current is None else int(current)
            if current != expected:
                held = "no version" if current is None else f"{name}@{current}"
                was = "no version" if expected is None else f"{name}@{expected}"
                raise ConflictError(
                    f"Alias {name}@{alias} moved meanwhile: it now holds {held}, not {was} as "
                    "when the gates ran. Another promotion won; look at `loopml models show "
                    f"{name}` and promote again if this version should still replace it."
                )
            if to is not None:
                exists = tx.scalar(
                    f"SELECT number FROM model_versions WHERE name = ? AND number = ?{lock}",
                    (name, to),
                )
                if exists is None:
                    raise NotFoundError(f"No version {name}@{to} (was it just deleted?).")
            if to is None:
                tx.execute("DELETE FROM model_aliases WHERE name = ? AND alias = ?", (name, alias))
            elif current is None:
                tx.execute(
                    "INSERT INTO model_aliases (name, alias, number, moved_at) VALUES (?, ?, ?, ?)",
                    (name, alias, to, at),
                )
            else:
                tx.execute(
                    "UPDATE model_aliases SET number = ?, moved_at = ? WHERE name = ? AND alias = ?",
                    (to, at, name, alias),
                )
            tx.execute(
                "INSERT INTO alias_events (name, alias, from_number, to_number, at, by, action, "
                "forced, reason, gates) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (name, alias, current, to, at, by, action, forced, reason, json.dumps(list(gates))),
            )
            row = tx.one(
                f"SELECT {_EVENT_COLUMNS} FROM alias_events WHERE name = ? AND alias = ? "
                "ORDER BY id DESC LIMIT 1",
                (name, alias),
            )
            assert row is not None
            return _event(row)

        return self.db.write(write)

    def history(self, name: str, alias: str | None = None) -> list[AliasEvent]:
        """The moves of one model's aliases (or of one alias), oldest first."""
        check_model_name(name)
        sql = f"SELECT {_EVENT_COLUMNS} FROM alias_events WHERE name = ?"
        args: tuple[Any, ...] = (name,)
        if alias is not None:
            sql += " AND alias = ?"
            args = (name, check_alias(alias))
        rows = self.db.read(lambda tx: tx.all(sql + " ORDER BY id", args))
        return [_event(r) for r in rows]


def _dump(value: dict[str, Any] | None) -> str | None:
    return None if value is None else json.dumps(value, sort_keys=True)


def _version(row: tuple[Any, ...]) -> ModelVersion:
    return ModelVersion(
        name=str(row[0]),
        number=int(row[1]),
        digest=str(row[2]),
        run_id=None if row[3] is None else str(row[3]),
        source=str(row[4]),
        library=str(row[5]),
        library_version=str(row[6]),
        input_schema=None if row[7] is None else json.loads(row[7]),
        output_schema=None if row[8] is None else json.loads(row[8]),
        metrics=json.loads(row[9]),
        description=str(row[10]),
        tags=json.loads(row[11]),
        created_by=str(row[12]),
        created_at=float(row[13]),
    )


def _event(row: tuple[Any, ...]) -> AliasEvent:
    return AliasEvent(
        id=int(row[0]),
        name=str(row[1]),
        alias=str(row[2]),
        from_number=None if row[3] is None else int(row[3]),
        to_number=None if row[4] is None else int(row[4]),
        at=float(row[5]),
        by=str(row[6]),
        action=str(row[7]),
        forced=bool(row[8]),
        reason=str(row[9]),
        gates=json.loads(row[10]),
    )
