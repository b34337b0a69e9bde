"""The models a puzzle block is played on, known without loading any weights: how many
layers and positions they have, and their tokenizers (loaded once per process).

The meaning checks need layer counts and the token checks need tokenizers; neither may pull
in torch, so everything here reads config files or names only."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.errors import UsageError
from engine.puzzle.parts import ModelBlock

GPT2_LAYERS = 12
SMOLLM2_LAYERS = 30
BLOCK_LAYERS = {"gpt2": GPT2_LAYERS, "smollm2": SMOLLM2_LAYERS}
"""Layers of the model each named (non-toy) block is played on, known without any weights."""


@dataclass
class ModelInfo:
    """What the validator needs to know about a model without loading its weights."""

    spec: str  # the --model value (or "gpt2" / a toy name)
    block: str | None  # the puzzle block it plays
    n_layers: int
    label: str
    n_positions: int | None = None

    def tokenizer(self) -> Any:
        from engine.models import load_tokenizer

        return load_tokenizer(self.spec)


def toy_config(name: str) -> dict[str, Any] | None:
    """A bundled toy's config.json, or None when that toy is not built."""
    from engine.paths import TOYS_DIR

    candidates = [TOYS_DIR / name]
    if name == "toy" and TOYS_DIR.is_dir():
        candidates += sorted(p for p in TOYS_DIR.iterdir() if p.is_dir())
    for folder in candidates:
        try:
            return json.loads((folder / "config.json").read_text())
        except (OSError, ValueError):
            continue
    return None


def model_info(spec: str) -> ModelInfo:
    """Describe a --model value; raises UsageError for an unknown one."""
    if spec in ("gpt2", "random-gpt2"):
        return ModelInfo(spec, "gpt2", GPT2_LAYERS, spec, 1024)
    if spec.startswith("planted-"):  # engine/planted.py's GPT-2-small-shaped test models
        return ModelInfo(spec, "gpt2", GPT2_LAYERS, f"planted test model {spec}", 1024)
    if spec == "smollm2":
        return ModelInfo(spec, "smollm2", SMOLLM2_LAYERS, "SmolLM2-135M", 8192)
    from engine.models import model_names
    from engine.paths import TOYS_DIR

    if spec == "toy" or (TOYS_DIR / spec).is_dir():
        config = toy_config(spec)
        if config is None:
            raise UsageError(f"no bundled toy model called {spec!r} (is it built? "
                             "`python -m engine.toys build`)")
        facts = _facts_or_none(config)
        return ModelInfo(spec, "toy", facts.n_layers if facts else 0, f"toy model {spec}",
                         facts.n_ctx if facts else None)
    path = Path(spec).expanduser()
    if path.is_dir():
        try:
            config = json.loads((path / "config.json").read_text())
        except (OSError, ValueError):
            raise UsageError(f"{spec}: not a model directory (no readable config.json)") from None
        from engine.models import block_for_spec

        facts = _facts_or_none(config)
        return ModelInfo(spec, block_for_spec(spec), facts.n_layers if facts else 0, spec,
                         facts.n_ctx if facts else None)
    raise UsageError(f"unknown model {spec!r}: use {', '.join(model_names())}, "
                     "a planted-* test model or a directory")


def _facts_or_none(config: Any) -> Any:
    """``engine.models.ModelFacts`` of a config.json, or None when it is not one."""
    from engine.errors import ModelError
    from engine.models import ModelFacts

    try:
        return ModelFacts.of(config) if isinstance(config, dict) else None
    except ModelError:
        return None


def block_layers(block: ModelBlock) -> int | None:
    """How many layers the model playing a block has, or None when unknown (toy not built)."""
    if block.name in BLOCK_LAYERS:
        return BLOCK_LAYERS[block.name]
    facts = _facts_or_none(toy_config(block.toy or "toy"))
    return facts.n_layers if facts else None



_TOKENIZERS: dict[str, Any] = {}


def tokenizer_for(info: ModelInfo) -> Any:
    """A model's tokenizer, loaded once per process."""
    if info.spec not in _TOKENIZERS:
        _TOKENIZERS[info.spec] = info.tokenizer()
    return _TOKENIZERS[info.spec]

