"""API tokens: a name, a role, and the SHA-256 of the secret (never the secret itself).

A token is 32 random bytes (``secrets.token_urlsafe``) behind a ``lml_`` prefix that secret
scanners can match. With that much entropy a fast hash is enough (a slow password hash
protects guessable passwords, which these are not), and it lets a request find its token
by an indexed lookup. The found hash is compared again with ``hmac.compare_digest``, so no
branch depends on how many leading characters matched.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import threading
import time
from dataclasses import dataclass
from enum import StrEnum

from loopml.errors import ConflictError, InvalidParameterError, LoopmlError, NotFoundError
from loopml.store.engine import Database, Tx

TOKEN_PREFIX = "lml_"
TOKEN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
# What ``secrets.token_urlsafe`` makes behind the prefix; anything else is not ours, and is
# refused before it is hashed or sent to the database (huge or binary headers included).
_SECRET_SHAPE = re.compile(r"lml_[A-Za-z0-9_-]{20,100}")
log = logging.getLogger("loopml.store")
# Refresh `last_used_at` at most this often per token, so reads do not become writes.
_USED_EVERY_S = 60.0


class Role(StrEnum):
    """What a token may do; each role may do everything the roles before it may."""

    READER = "reader"  # read everything
    WRITER = "writer"  # also run pipelines, log, promote, pause schedules, post feedback
    ADMIN = "admin"  # also manage tokens and define or remove schedules


def role_allows(held: str, needed: str) -> bool:
    """Whether a token of role ``held`` may call a route that needs ``needed``."""
    order = list(Role)
    return order.index(Role(held)) >= order.index(Role(needed))


def check_role(value: object) -> Role:
    try:
        return Role(str(value))
    except ValueError:
        raise InvalidParameterError(
            f"Role {str(value)[:40]!r} is not one of {', '.join(Role)}: reader reads, writer "
            "also changes things (runs, promotions, schedules), admin also manages tokens."
        ) from None


def check_token_name(value: object) -> str:
    if not isinstance(value, str) or not TOKEN_NAME.fullmatch(value):
        raise InvalidParameterError(
            f"Token name {str(value)[:40]!r}: use letters, digits, '.', '_' and '-' (at most "
            "100 characters), e.g. ci-bot."
        )
    return value


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True, slots=True)
class TokenRecord:
    """A token as stored: everything but the secret."""

    name: str
    role: Role
    created_at: float
    created_by: str
    expires_at: float | None = None
    revoked_at: float | None = None
    last_used_at: float | None = None

    def usable(self, now: float) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "role": str(self.role),
            "created_at": self.created_at,
            "created_by": self.created_by,
            "expires_at": self.expires_at,
            "revoked_at": self.revoked_at,
            "last_used_at": self.last_used_at,
        }


_COLUMNS = "name, role, created_at, created_by, expires_at, revoked_at, last_used_at"


def _record(row: tuple[object, ...]) -> TokenRecord:
    name, role, created, by, expires, revoked, used = row
    return TokenRecord(
        str(name),
        Role(str(role)),
        float(created),  # type: ignore[arg-type]
        str(by),
        None if expires is None else float(expires),  # type: ignore[arg-type]
        None if revoked is None else float(revoked),  # type: ignore[arg-type]
        None if used is None else float(used),  # type: ignore[arg-type]
    )


class Tokens:
    """The API tokens of one store."""

    def __init__(self, db: Database) -> None:
        self.db = db
        # name -> when this process last wrote its `last_used_at`: under load, one write per
        # token per minute per process, not one per request that finds the column stale.
        self._used: dict[str, float] = {}
        self._used_lock = threading.Lock()

    def create(
        self, name: str, role: str, *, by: str, expires_at: float | None = None
    ) -> tuple[TokenRecord, str]:
        """A new token; returns its record and the secret, which is shown once and not kept.

        Raises:
            ConflictError: a token of that name exists (revoked ones too: names are audit).
        """
        check_token_name(name)
        checked = check_role(role)
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        now = time.time()

        def insert(tx: Tx) -> None:
            if tx.one("SELECT 1 FROM api_tokens WHERE name = ?", (name,)):
                raise ConflictError(
                    f"A token named {name!r} exists already (names stay taken after revoking, "
                    "since audit records carry them); choose another name."
                )
            tx.execute(
                "INSERT INTO api_tokens (name, hash, role, created_at, created_by, expires_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (name, token_hash(secret), str(checked), now, by, expires_at),
            )

        self.db.write(insert)
        return TokenRecord(name, checked, now, by, expires_at), secret

    def list(self) -> list[TokenRecord]:
        rows = self.db.read(lambda tx: tx.all(f"SELECT {_COLUMNS} FROM api_tokens ORDER BY name"))
        return [_record(r) for r in rows]

    def get(self, name: str) -> TokenRecord:
        row = self.db.read(
            lambda tx: tx.one(f"SELECT {_COLUMNS} FROM api_tokens WHERE name = ?", (name,))
        )
        if row is None:
            raise NotFoundError(f"No token named {name!r}; `loopml token list` shows them.")
        return _record(row)

    def revoke(self, name: str) -> TokenRecord:
        """Revoke ``name`` at once: its next request is refused. Idempotent."""
        now = time.time()

        def write(tx: Tx) -> None:
            if not tx.one("SELECT 1 FROM api_tokens WHERE name = ?", (name,)):
                raise NotFoundError(f"No token named {name!r}; `loopml token list` shows them.")
            tx.execute(
                "UPDATE api_tokens SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL",
                (now, name),
            )

        self.db.write(write)
        return self.get(name)

    def count(self) -> int:
        return int(self.db.read(lambda tx: tx.scalar("SELECT COUNT(*) FROM api_tokens")))

    def verify(self, secret: str, *, now: float | None = None) -> TokenRecord | None:
        """The usable token whose secret this is, or None (unknown, revoked or expired)."""
        if not _SECRET_SHAPE.fullmatch(secret):
            return None
        wanted = token_hash(secret)
        row = self.db.read(
            lambda tx: tx.one(f"SELECT hash, {_COLUMNS} FROM api_tokens WHERE hash = ?", (wanted,))
        )
        if row is None or not hmac.compare_digest(str(row[0]), wanted):
            return None
        record = _record(row[1:])
        now = time.time() if now is None else now
        if not record.usable(now):
            return None
        self._touch(record, now)
        return record

    def _touch(self, record: TokenRecord, now: float) -> None:
        """Record that ``record`` was used, at most once a minute; never fails the request."""
        if record.last_used_at is not None and now - record.last_used_at <= _USED_EVERY_S:
            return
        with self._used_lock:
            if now - self._used.get(record.name, -_USED_EVERY_S - 1) <= _USED_EVERY_S:
                return
            self._used[record.name] = now
        if self.db.readonly:
            return
        try:
            # The condition makes concurrent servers write the row once between them.
            self.db.write(
                lambda tx: tx.execute(
                    "UPDATE api_tokens SET last_used_at = ? WHERE name = ? AND "
                    "(last_used_at IS NULL OR last_used_at < ?)",
                    (now, record.name, now - _USED_EVERY_S),
                )
            )
        except LoopmlError as exc:
            # `last_used_at` is a hint for people; a busy or read-only store must not turn a
            # valid token into a refused request.
            log.warning("Could not record the use of token %r: %s", record.name, exc)
