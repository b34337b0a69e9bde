"""The shipped puzzles: data only (YAML files, one per puzzle, and their schema)."""

from pathlib import Path

PUZZLES_DIR = Path(__file__).resolve().parent
