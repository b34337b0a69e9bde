"""Every place Lineup reads or writes on disk, routed through one module tests can redirect.

``LINEUP_HOME`` puts data and cache under one folder (used by the tests and by teachers who
want everything in one place); otherwise platformdirs picks the platform's usual folders.
"""

from __future__ import annotations

import os
from pathlib import Path

APP_NAME = "lineup"
ASSETS = Path(__file__).resolve().parent / "assets"
GPT2_TOKENIZER_DIR = ASSETS / "gpt2-tokenizer"
TOYS_DIR = ASSETS / "toys"


def _home() -> Path | None:
    value = os.environ.get("LINEUP_HOME")
    return Path(value).expanduser() if value else None


def data_dir() -> Path:
    """Where the player's progress and circuits live."""
    home = _home()
    if home is not None:
        return home / "data"
    import platformdirs

    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def cache_dir() -> Path:
    """Where cached model runs live; safe to delete at any time."""
    home = _home()
    if home is not None:
        return home / "cache"
    import platformdirs

    return Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False))


def config_file() -> Path:
    """The player's settings (TOML), e.g. ``cache_mb = 500``; optional."""
    home = _home()
    if home is not None:
        return home / "config.toml"
    import platformdirs

    return Path(platformdirs.user_config_dir(APP_NAME, appauthor=False)) / "config.toml"


def open_lock(path: Path) -> int:
    """Open (creating it if need be) a lock file for ``flock`` and return its descriptor.
    Never through a symlink (``O_NOFOLLOW``: a link planted at the lock's name would make us
    create or open a file wherever it points; raises ``OSError`` instead) and never blocking
    on a FIFO there (``O_NONBLOCK``); callers check that it is a regular file."""
    flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    return os.open(path, flags, 0o644)
