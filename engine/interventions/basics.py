"""What every intervention shares: head indices, the metric type and the plain logit
difference, and the argument checks (heads that exist, prompts of the same lengths, the
positions to patch)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

from engine.errors import UsageError

if TYPE_CHECKING:
    import torch

    from engine.loaded import Tokens

HeadIndex = tuple[int, int]
Metric = Callable[["torch.Tensor"], "torch.Tensor"]
"""Takes last-position logits [n, vocab] and returns one value per row, [n]. Grids call it on
several copies of the batch stacked (n a multiple of the batch), so it tiles its answers."""


class LogitDiff:
    """logit(correct) - logit(wrong) at the last position, one value per prompt; the IOI
    metric. Answers are token ids per prompt."""

    def __init__(self, correct: Sequence[int], wrong: Sequence[int]) -> None:
        import torch

        self.correct = torch.as_tensor(list(correct), dtype=torch.long)
        self.wrong = torch.as_tensor(list(wrong), dtype=torch.long)

    def __call__(self, logits: torch.Tensor) -> torch.Tensor:
        import torch

        copies = logits.shape[0] // len(self.correct)
        correct = self.correct.to(logits.device).repeat(copies)
        wrong = self.wrong.to(logits.device).repeat(copies)
        rows = torch.arange(logits.shape[0], device=logits.device)
        return logits[rows, correct] - logits[rows, wrong]


def group_by_layer(
    heads: Iterable[HeadIndex], n_layers: int, n_heads: int
) -> dict[int, list[int]]:
    """Heads by layer, refusing any head the model does not have."""
    by_layer: dict[int, list[int]] = {}
    for layer, head in heads:
        if not (0 <= layer < n_layers and 0 <= head < n_heads):
            raise UsageError(f"no head {layer}.{head} in a model of {n_layers}x{n_heads}")
        by_layer.setdefault(layer, []).append(head)
    return by_layer


def same_shape(target: Tokens, source: Tokens) -> None:
    """Refuse to patch between prompts whose positions do not line up."""
    if list(target.lengths) != list(source.lengths):
        raise UsageError("patching needs source and target prompts of the same token lengths")


def positions_mask(positions: Sequence[int] | torch.Tensor | None, tokens: Tokens):
    """[batch, pos] bool: where to patch. ``positions`` is one index per prompt, or None (all)."""
    import torch

    batch, n_ctx = tokens.ids.shape
    if positions is None:
        return torch.ones(batch, n_ctx, dtype=torch.bool, device=tokens.ids.device)
    index = torch.as_tensor(positions, device=tokens.ids.device).reshape(batch, -1)
    mask = torch.zeros(batch, n_ctx, dtype=torch.bool, device=tokens.ids.device)
    mask.scatter_(1, index, True)
    return mask
