"""One error family, so the CLI and the TUI can show any engine failure as one plain line."""

from __future__ import annotations


class LineupError(Exception):
    """A problem the user can act on; shown as one line, never as a traceback."""

    title = "Lineup error"

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} ({self.hint})"


class UsageError(LineupError):
    """The command line or an input named something that does not exist or makes no sense."""

    title = "Usage error"


class ModelError(LineupError):
    """A model could not be found or loaded."""

    title = "Model error"
