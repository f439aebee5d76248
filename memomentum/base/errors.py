"""The exceptions a user sees.

Anything raised as :class:`InputError` is a problem with what the user gave us (a bad
option, a missing or malformed file, labels out of range). The CLI prints its message as a
single line and exits with status 2; the Python API lets it propagate.
:class:`TrainingDiverged` means a run produced a non-finite loss: its numbers cannot be
trusted, so no result is written; the CLI prints one line and exits with status 1.
Everything else is a bug and keeps its traceback.
"""


class InputError(ValueError):
    """A user-facing input problem, described in one sentence."""


class TrainingDiverged(RuntimeError):
    """Training produced a NaN or infinite loss; described in one sentence."""
