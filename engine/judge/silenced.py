"""The backup view: the line as it looks with some heads silenced. Backups wake up only when
the main name movers are gone, so they are found, and their words read, in that run."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from engine.judge.runs import _final_name, _resid_at
from engine.judge.thresholds import Head

if TYPE_CHECKING:
    import torch


class SilencedView:
    """``_Judge.without``: a copy of the judge seeing the line with ``heads`` mean-ablated
    (it supplies ``play``, ``lm``, ``att`` and ``_copy``)."""

    def without(self, heads: Sequence[Head]) -> Any:
        """This judge as the line looks with ``heads`` mean-ablated: who listens to whom, what
        each head says at the roles, the final residual. Backups wake up only when the main
        name movers are gone, so in the full model they barely listen to anyone: they are
        found, and their words read, in this run (the effects stay those of the cache)."""

        import torch

        from engine.hooks import act_name, forward

        key = frozenset(heads)
        if not key:
            return self
        views = self.__dict__.setdefault("_views", {})
        if key in views:
            return views[key]
        p, L = self.play, self.lm.n_layers
        means = p.data["means"]
        by_layer: dict[int, list[int]] = {}
        for layer, h in heads:
            by_layer.setdefault(layer, []).append(h)

        def silence(layer: int, hs: list[int]) -> Callable[[torch.Tensor], torch.Tensor]:
            def hook(z: torch.Tensor) -> torch.Tensor:
                z = z.clone()
                z[:, :, hs] = means[layer][:, : z.shape[1], hs]
                return z
            return hook

        z_names = [act_name("z", layer) for layer in range(L)]
        final = _final_name(self.lm)
        record = [final, *z_names, *(act_name("pattern", layer) for layer in range(L))]
        hooks = {z_names[layer]: silence(layer, hs) for layer, hs in by_layer.items()}
        rows = torch.arange(p.n, device=p.tokens.ids.device)
        pos = p.pos
        with torch.no_grad():
            run = forward(self.lm, p.tokens, record=record, hooks=hooks, logits="none")
            att = []
            for layer in range(L):
                pattern = run.cache[act_name("pattern", layer)]
                a = pattern[rows[:, None, None], :, pos.T[:, :, None], pos.T[:, None, :]]
                att.append(a.permute(0, 3, 1, 2).mean(0))
            data = dict(p.data)  # the same effects dict: patched runs stay shared
            data["z_roles"] = torch.stack([run.cache[z_names[layer]][rows[None], pos]
                                           for layer in range(L)])
            data["final_roles"] = run.cache[final][rows[None], pos]
            data["final_at"] = _resid_at(run.cache[final], p.at)
        del run
        view = copy.copy(self)
        view.__dict__.pop("_views", None)
        view.play = dataclasses.replace(p, data=data)
        view.att = torch.stack(att).cpu()
        view._copy = {}
        view.silenced_heads = list(heads)
        views[key] = view
        return view
