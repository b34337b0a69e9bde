"""An independent head-patching grid with plain Hugging Face modules, for checking the engine.

Nothing of Lineup's hooked forward is used: the model's own ``forward`` runs, and a forward
pre-hook on each layer's output projection (GPT-2 ``attn.c_proj``, Llama ``self_attn.o_proj``)
sees the concatenated per-head outputs. One pre-hook records them on the source run; for each
(layer, head) another replaces that head's slice on the target run. One full forward per head:
the slow, obvious way, which is what makes it a reference.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch


def output_projections(model: Any) -> list[torch.nn.Module]:
    """Each layer's attention output projection, whose input is the heads' outputs."""
    if getattr(model.config, "model_type", "") == "gpt2":
        return [block.attn.c_proj for block in model.transformer.h]
    return [layer.self_attn.o_proj for layer in model.model.layers]


def head_inputs(model: Any, ids: torch.Tensor) -> list[torch.Tensor]:
    """The input of every output projection on one run: per layer [batch, pos, heads*d_head]."""
    seen: list[torch.Tensor] = []
    handles = [proj.register_forward_pre_hook(lambda _m, args: seen.append(args[0].clone()))
               for proj in output_projections(model)]
    try:
        with torch.inference_mode():
            model(ids)
    finally:
        for handle in handles:
            handle.remove()
    return seen


def hf_head_grid(model: Any, target_ids: torch.Tensor, source_ids: torch.Tensor,
                 metric: Callable[[torch.Tensor], torch.Tensor], *, n_heads: int,
                 d_head: int, last: torch.Tensor | None = None) -> torch.Tensor:
    """[layer, head]: mean metric (on each prompt's last-position logits) of the target run
    with one head's output at every position replaced by the source run's. ``last`` gives
    each prompt's final real position in a right-padded batch (default: the last column)."""
    rows = torch.arange(target_ids.shape[0])
    if last is None:
        last = torch.full_like(rows, target_ids.shape[1] - 1)
    source = head_inputs(model, source_ids)
    projections = output_projections(model)
    grid = torch.empty(len(projections), n_heads)
    for layer, proj in enumerate(projections):
        for head in range(n_heads):
            cols = slice(head * d_head, (head + 1) * d_head)

            def patch(_module, args, layer=layer, cols=cols):
                x = args[0].clone()
                x[..., cols] = source[layer][..., cols]
                return (x,)

            handle = proj.register_forward_pre_hook(patch)
            try:
                with torch.inference_mode():
                    logits = model(target_ids).logits[rows, last]
            finally:
                handle.remove()
            grid[layer, head] = metric(logits).mean()
    return grid
