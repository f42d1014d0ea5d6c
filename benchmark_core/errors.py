"""Errors with messages a user can act on: what went wrong, where, and how to fix it."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class FuseBenchError(Exception):
    """Base class for errors shown to the user as a single paragraph (no traceback).

    ``exit_code``: what ``bench`` exits with (2: usage or input error; 1: the work failed)."""

    exit_code = 2


class UnknownNameError(FuseBenchError, KeyError):
    """A method/dataset/metric/... name that nothing registered."""

    def __init__(self, kind: str, name: str, valid: Iterable[str], flag: str | None = None):
        self.kind, self.name, self.valid = kind, name, sorted(valid)
        suggestion = difflib.get_close_matches(name, self.valid, n=1, cutoff=0.5)
        hint = f" Did you mean {suggestion[0]!r}?" if suggestion else ""
        where = f" (given to {flag})" if flag else ""
        self.message = (
            f"Unknown {kind} {name!r}{where}.{hint} Valid {kind}s: {', '.join(self.valid) or '(none)'}."
            f" Run `bench list {kind}s` to see them with descriptions."
        )
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message


class DuplicateRegistrationError(FuseBenchError):
    """Two plugins registered the same name."""


class DataError(FuseBenchError):
    """A dataset file is missing or malformed."""


class OutputError(FuseBenchError):
    """A method's model returned output of the wrong shape (the engine checks every step)."""
