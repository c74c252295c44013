"""Idempotency keys: a write and its answer committed together, so a retry writes nothing twice.

A client that did not hear the answer to a write (the server was killed, the network
dropped) sends the same request again with the same ``Idempotency-Key``. The first request
stored its answer under the key in the transaction that did the write, so there are only
two cases: that transaction committed (the retry finds the key and gets the stored answer;
nothing is written again) or it did not (the retry does the write). Two requests racing
with one key cannot both write: the key is the table's primary key, so the loser's
transaction rolls back and its retry finds the winner's answer.

A key belongs to one request: the same key with another body or for another target is
refused (``IdempotencyKeyReusedError``, a 409), never answered with the first answer.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from loopml.errors import ConflictError, InvalidParameterError
from loopml.store.engine import Database, Tx

MAX_KEY = 200
_RACES = 3


class IdempotencyKeyReusedError(ConflictError):
    """An idempotency key came back with another request than the one it was first used for."""


def check_idempotency_key(key: object) -> str:
    """A key: 1 to 200 printable ASCII characters (a UUID is the usual choice)."""
    if (
        not isinstance(key, str)
        or not 0 < len(key) <= MAX_KEY
        or not key.isascii()
        or not key.isprintable()
    ):
        shown = repr(key)[:80]
        raise InvalidParameterError(
            f"Idempotency-Key {shown}: expected 1 to {MAX_KEY} printable ASCII characters, "
            "e.g. a UUID made once per request (and sent again with its retries)."
        )
    return key


class Idempotency:
    """Writes that happen at most once per key, on one database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def write_once(
        self,
        key: str,
        scope: str,
        digest: str,
        write: Callable[[Tx], dict[str, Any]],
        *,
        attempts: int = 20,
    ) -> tuple[dict[str, Any], bool]:
        """Run ``write`` and store its answer under ``key``, in one transaction.

        Args:
            key: the client's idempotency key.
            scope: what the key is for (e.g. ``log:<run id>``).
            digest: a digest of the request body; a retry must send the same body.
            write: the write; returns the answer (JSON-able).
            attempts: tries on lock, deadlock and serialization errors.

        Returns:
            ``(answer, replayed)``: ``replayed`` is True when the key was stored already and
            ``write`` did not run.

        Raises:
            IdempotencyKeyReusedError: the key was stored for another scope or body.
        """
        check_idempotency_key(key)

        def attempt(tx: Tx) -> tuple[dict[str, Any], bool]:
            row = tx.one("SELECT scope, response FROM idempotency_keys WHERE idem_key = ?", (key,))
            if row is not None:
                stored = json.loads(row[1])
                if row[0] != scope or stored.get("digest") != digest:
                    raise IdempotencyKeyReusedError(
                        f"Idempotency-Key {key!r} was used for another request "
                        f"({row[0] if row[0] != scope else 'another body'}); a key names one "
                        "request and its retries: make a new key for a new request."
                    )
                return stored["answer"], True
            answer = write(tx)
            tx.execute(
                f"INSERT INTO idempotency_keys (idem_key, scope, at, response) VALUES "
                f"(?, ?, {tx.now}, ?)",
                (key, scope, json.dumps({"digest": digest, "answer": answer})),
            )
            return answer, False

        for _ in range(_RACES):
            try:
                return self.db.write(attempt, attempts=attempts)
            except IdempotencyKeyReusedError:
                raise
            except ConflictError:
                # Another request with this key committed first (primary key): the next
                # attempt finds its answer. Any other conflict is the caller's to see.
                if not self._stored(key):
                    raise
                self.db.retries += 1
        return self.db.write(attempt, attempts=attempts)

    def _stored(self, key: str) -> bool:
        return (
            self.db.read(
                lambda tx: tx.one("SELECT 1 FROM idempotency_keys WHERE idem_key = ?", (key,))
            )
            is not None
        )

    def purge(self, older_than: float) -> int:
        """Forget keys stored before ``older_than`` (Unix seconds); returns how many."""
        return self.db.write(
            lambda tx: tx.execute("DELETE FROM idempotency_keys WHERE at < ?", (older_than,))
        )
