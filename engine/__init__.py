"""Lineup's engine: every piece of model work, usable without a terminal.

Nothing here imports textual, and torch/transformers are imported only inside the
functions that need them, so importing ``engine`` is cheap.
"""

from engine.errors import LineupError, ModelError, UsageError

__all__ = ["LineupError", "ModelError", "UsageError"]
