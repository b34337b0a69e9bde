"""The mean-ablation definition, used everywhere: what a silenced head outputs instead of
its own output (its mean over a set of prompts, per template and position)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from engine.hooks import act_name, forward

if TYPE_CHECKING:
    import torch

    from engine.loaded import LoadedModel, Tokens


def mean_z(lm: LoadedModel, reference: Tokens,
           templates: Sequence[int] | None = None) -> dict[int, torch.Tensor]:
    """Each layer's head outputs averaged over the reference prompts, per position:
    {layer: [pos, head, d_head]} (``group_means`` with one group, or with ``templates``
    the means of the first prompt's template). Positions only some prompts reach average
    over those."""
    import torch

    with torch.inference_mode():
        run = forward(lm, reference, record=["z"], logits="none")
    return {
        layer: group_means(run[act_name("z", layer)], reference.lengths, templates)[0]
        for layer in range(lm.n_layers)
    }


def group_means(acts: torch.Tensor, lengths: Sequence[int],
                groups: Sequence[int] | None = None) -> torch.Tensor:
    """The mean-ablation definition, used everywhere: for each prompt, the mean of ``acts``
    [N, pos, ...] over the prompts of its group (a puzzle's template), position by position;
    positions a prompt does not reach (padding) do not count. Returns [N, pos, ...]."""
    import torch

    n, width = acts.shape[0], acts.shape[1]
    device = acts.device
    lengths_t = torch.as_tensor(list(lengths), device=device)
    present = (torch.arange(width, device=device)[None] < lengths_t[:, None]).to(acts.dtype)
    g = torch.as_tensor(list(groups) if groups else [0] * n, device=device)
    flat = acts.reshape(n, width, -1)
    out = torch.empty_like(flat)
    for t in g.unique():
        member = g == t
        w = present[member]  # [m, pos]
        total = (flat[member] * w[:, :, None]).sum(0)  # [pos, x]
        out[member] = (total / w.sum(0).clamp(min=1)[:, None])[None]
    return out.reshape(acts.shape)
