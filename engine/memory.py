"""How much memory grading a puzzle takes, known before anything runs.

Why: the judge keeps whole runs of the puzzle's prompts (every layer's head outputs, MLP
outputs and residual stream, so that any question can be patched without running the model
again), and a forward pass holds each layer's attention scores, which grow with the square of
the prompt's length. A teacher's pack with prompts of 1,500 tokens, legal for SmolLM2, grew a
check to 13 GB before an allocation failed (issue 22). So the judge, the tools and the
validator ask this module first: how many rows a batch of patched runs may have, and whether
a prompt split can be graded at all on this machine, with the numbers to say why not.

The figures are estimates from the model's shape (``ModelFacts``), counted generously: float32
tensors, the largest temporaries of one layer at a time, and the copies ``torch.stack`` makes.
The budget is the whole process's peak: 2 GB unless ``LINEUP_MEMORY_MB`` says otherwise, less
the model's own weights and what Python, torch and the tokenizer take before anything runs.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

from engine.errors import UsageError

BUDGET_ENV = "LINEUP_MEMORY_MB"
DEFAULT_BUDGET_MB = 2000
BASE_BYTES = 450 * 1_000_000
"""Python, torch, transformers, the tokenizer and the terminal layer, before any run."""
FLOAT = 4
KEPT_PER_TOKEN = 5
"""Layer-sized tensors per prompt token a play split holds at its peak while being built:
the head outputs, MLP outputs and residual stream it keeps (three), and the recorded copies
``torch.stack`` is made from (two more)."""


@dataclass(frozen=True)
class Shape:
    """The sizes the estimates need (from ``ModelFacts``)."""

    n_layers: int
    n_heads: int
    d_model: int
    d_mlp: int

    @classmethod
    def of(cls, lm: Any) -> Shape:
        facts = lm.facts
        return cls(facts.n_layers, facts.n_heads, facts.d_model, facts.d_mlp)


def budget_bytes() -> int:
    """The process's peak memory allowed for grading (``LINEUP_MEMORY_MB``, default 2 GB)."""
    raw = os.environ.get(BUDGET_ENV, "").strip()
    if raw:
        try:
            value = float(raw)
        except ValueError:
            raise UsageError(f"{BUDGET_ENV}={raw!r} is not a number of megabytes") from None
        if not math.isfinite(value) or value <= 0:
            raise UsageError(f"{BUDGET_ENV}={raw!r} is not a positive number of megabytes")
        return int(value * 1_000_000)
    return DEFAULT_BUDGET_MB * 1_000_000


def weights_bytes(lm: Any) -> int:
    """The loaded model's parameters and buffers."""
    cached = lm.extra.get("weights_bytes")
    if cached is None:
        tensors = [*lm.model.parameters(), *lm.model.buffers()]
        seen = {t.data_ptr(): t.numel() * t.element_size() for t in tensors}  # tied once
        cached = lm.extra["weights_bytes"] = sum(seen.values())
    return int(cached)


def free_bytes(lm: Any) -> int:
    """What runs may use: the budget less the weights and the process's base."""
    return budget_bytes() - weights_bytes(lm) - BASE_BYTES


def row_bytes(shape: Shape, n_tokens: int) -> int:
    """The temporaries of one batch row through one layer: attention scores, their masked
    copy and the softmax (heads x tokens x tokens each), the MLP's hidden activations (three
    of them for a gated MLP), and about ten residual-sized tensors (the stream, its norm,
    queries, keys, values, head outputs, their projection)."""
    t = n_tokens
    return FLOAT * (3 * shape.n_heads * t * t + 3 * shape.d_mlp * t + 10 * shape.d_model * t)


def split_bytes(shape: Shape, n_prompts: int, n_tokens: int, *, play: bool) -> int:
    """Peak bytes of building and keeping one prompt split's runs (``engine.judge.runs``):
    for the play prompts every layer's head outputs, MLP outputs and residual stream, and
    both forward passes over all the prompts at once."""
    layer_sized = shape.n_layers * n_prompts * n_tokens * shape.d_model * FLOAT
    kept = KEPT_PER_TOKEN * layer_sized if play else 2 * layer_sized
    return kept + n_prompts * row_bytes(shape, n_tokens)


def patched_row_bytes(shape: Shape, n_tokens: int) -> int:
    """One row of a batch of patched runs: its layer temporaries, plus the residual stream
    it starts from and the patch sources stacked for it."""
    return row_bytes(shape, n_tokens) + 4 * n_tokens * shape.d_model * FLOAT


def batch_rows(lm: Any, n_tokens: int, *, kept: int = 0, most: int = 512) -> int:
    """How many rows a batch of patched runs may have so that the process stays within its
    budget, with ``kept`` bytes already held (a split's runs); at least one."""
    room = free_bytes(lm) - kept
    return max(1, min(most, room // max(1, patched_row_bytes(Shape.of(lm), n_tokens))))


def longest_prompt(lm: Any, n_prompts: int, *, play: bool = True) -> int:
    """The longest prompt (in tokens) whose split of ``n_prompts`` fits, with room for one
    patched row beside it."""
    shape, room = Shape.of(lm), free_bytes(lm)
    lo, hi = 0, max(1, lm.facts.n_ctx)
    while lo < hi:  # the estimate grows with the length: bisect
        mid = (lo + hi + 1) // 2
        need = split_bytes(shape, n_prompts, mid, play=play) + patched_row_bytes(shape, mid)
        lo, hi = (mid, hi) if need <= room else (lo, mid - 1)
    return lo


def too_big(lm: Any, n_prompts: int, n_tokens: int, *, play: bool = True) -> str | None:
    """Why a split of ``n_prompts`` prompts of up to ``n_tokens`` tokens cannot be graded
    within the budget, in one sentence with the numbers; None when it can."""
    shape = Shape.of(lm)
    need = split_bytes(shape, n_prompts, n_tokens, play=play) + patched_row_bytes(shape,
                                                                                  n_tokens)
    room = free_bytes(lm)
    if need <= room:
        return None
    longest = longest_prompt(lm, n_prompts, play=play)
    return (f"its prompts are up to {n_tokens:,} tokens long: grading {n_prompts} of them on "
            f"{lm.label} needs about {_gb(need + weights_bytes(lm) + BASE_BYTES)} of memory, "
            f"more than the {_gb(budget_bytes())} allowed here ({BUDGET_ENV}); at most "
            f"{longest:,} tokens per prompt fit")


def _gb(n_bytes: int) -> str:
    return f"{n_bytes / 1e9:.1f} GB" if n_bytes >= 10e9 else f"{n_bytes / 1e9:.2f} GB"
