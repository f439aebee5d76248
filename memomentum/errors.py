"""The one exception type for user mistakes.

Anything raised as :class:`InputError` is a problem with what the user gave us (a bad
option, a missing or malformed file, labels out of range). The CLI prints its message as a
single line and exits with status 2; the Python API lets it propagate. Everything else is a
bug and keeps its traceback.
"""


class InputError(ValueError):
    """A user-facing input problem, described in one sentence."""
