"""Every exception loopml raises on purpose.

The tree::

    LoopmlError(Exception)
    ├── NotFoundError(LookupError)          a run, artifact, pipeline or step that does not exist
    │   └── StoreNotFoundError              no store at the configured location (reading never creates one)
    ├── InvalidParameterError(ValueError)   bad input from the user: a value, a filter, a name
    │   └── FilterSyntaxError               a malformed runs filter; carries the position
    ├── PipelineDefinitionError(TypeError)  a step or pipeline that cannot be built (all problems at once)
    ├── MaterializerError(TypeError)        a value no materializer can store, or a bad registration
    ├── StepFailedError                     a step raised; carries the step name and the original traceback
    ├── ConflictError                       a concurrent change won (unique constraint, lease)
    │   └── LeaseLostError                  a live run was marked crashed by another process
    ├── IntegrityError                      a blob does not hash to its digest, or is missing
    ├── StoreUnavailableError               the metadata store cannot be opened or written
    │   └── StoreCorruptError               the database file is damaged (fsck reports it)
    ├── StorageError(OSError)               a blob write or read failed (disk full, I/O error)
    │   └── RemoteError                     the remote of push/pull is unset, unreachable or refuses us
    └── LibraryVersionWarning(UserWarning)  a warning, not raised: a model stored by another library version

Leaves also inherit the builtin a caller would naturally catch, so ``except ValueError``
keeps working around ``InvalidParameterError``. The one warning also descends from the
root, so ``warnings.filterwarnings("error", category=LoopmlError)`` catches it too.
"""

from __future__ import annotations

from collections.abc import Iterable


class LoopmlError(Exception):
    """Root of every error loopml raises on purpose."""


class NotFoundError(LoopmlError, LookupError):
    """A named thing (run, artifact, pipeline, step, output) does not exist."""


class StoreNotFoundError(NotFoundError):
    """No metadata store exists where the settings point; read-only commands never create one."""


class InvalidParameterError(LoopmlError, ValueError):
    """User input is invalid: the message names the thing, the value and the fix."""


class FilterSyntaxError(InvalidParameterError):
    """A runs filter could not be parsed; ``position`` is the 0-based offset of the mistake."""

    def __init__(self, message: str, *, text: str, position: int) -> None:
        caret = " " * position + "^"
        super().__init__(f"{message} at position {position}:\n  {text}\n  {caret}")
        self.text = text
        self.position = position


class PipelineDefinitionError(LoopmlError, TypeError):
    """A step or pipeline definition is invalid; lists every problem found."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = sorted(problems)
        n = len(self.problems)
        head = f"{n} problem{'s' if n != 1 else ''} found:"
        super().__init__("\n".join([head, *(f"  - {p}" for p in self.problems)]))


class MaterializerError(LoopmlError, TypeError):
    """No materializer can store a value, or a materializer registration is invalid."""


class StepFailedError(LoopmlError):
    """A step raised an exception while running in a pipeline."""

    def __init__(self, step: str, run_id: str, error: str, traceback: str) -> None:
        super().__init__(f"Step {step!r} failed in run {run_id[:8]}: {error}")
        self.step = step
        self.run_id = run_id
        self.error = error
        self.traceback = traceback


class ConflictError(LoopmlError):
    """A concurrent change won: a unique constraint or a lease held by someone else."""


class LeaseLostError(ConflictError):
    """This process's run was marked crashed elsewhere (its lease expired); its writes are refused."""


class IntegrityError(LoopmlError):
    """A blob is missing or does not hash to its recorded digest."""


class StoreUnavailableError(LoopmlError):
    """The metadata store cannot be opened, migrated or written."""


class StoreCorruptError(StoreUnavailableError):
    """The metadata database is damaged (``database disk image is malformed``)."""


class StorageError(LoopmlError, OSError):
    """Writing or reading a blob failed (disk full, permissions, I/O error)."""


class RemoteError(StorageError):
    """``loopml push``/``pull`` cannot use the remote: not configured, unreachable, no such
    bucket, credentials refused, or the transfer was cut (a rerun resumes)."""


class LibraryVersionWarning(LoopmlError, UserWarning):
    """A model loads under another version of its library than the one that stored it."""


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """Return ``" Did you mean 'x'?"`` for the closest choice, or an empty string."""
    import difflib  # only on the error path: not worth its import time on every start

    close = difflib.get_close_matches(name, list(choices), n=1)
    return f" Did you mean {close[0]!r}?" if close else ""
