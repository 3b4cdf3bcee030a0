"""User-facing errors: one line that names the thing and the fix, exit code 2."""
from __future__ import annotations

import difflib
from collections.abc import Iterable


class UserError(Exception):
    """A problem with the user's input: shown as one line, never as a traceback."""

    exit_code = 2
    quiet = False  # already reported elsewhere (another process of a job): exit 2 without a second line

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class DataError(UserError):
    """Data that is missing, unreadable or of the wrong shape."""


class ConfigError(UserError):
    """A config key, value or recipe that does not fit."""


class CheckpointError(UserError):
    """A run directory or model file that cannot be trusted or read."""


class OutputError(UserError, OSError):
    """A file or folder we were asked to write cannot be written (full disk, read-only, not a folder).

    It is an OSError too, so code that treats a failed cache write as a miss keeps doing so.
    """


class TrainingDiverged(UserError):
    """Training produced non-finite values more often than it may recover from."""


def closest(word: str, choices: Iterable[str]) -> str | None:
    """The closest spelling among choices, for 'did you mean' hints."""
    match = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.5)
    return match[0] if match else None


def unknown(kind: str, name: str, choices: Iterable[str], cls: type[UserError] = ConfigError) -> UserError:
    """An error for an unknown name, suggesting the closest known one."""
    choices = sorted(choices)
    guess = closest(name, choices)
    hint = f"did you mean '{guess}'?" if guess else f"choose one of: {', '.join(choices)}"
    return cls(f"unknown {kind} '{name}'", hint)
