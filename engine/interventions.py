"""Changing what a head, a position or a path contributes, and measuring what follows.

Every intervention is a set of hooks on ``engine.hooks.forward``:

- ablation: a head's output (``hook_z``) replaced by zero, or by its mean over another set of
  prompts, position by position (mean ablation, the IOI paper's knock-out);
- activation patching: a head's output, or the residual stream at a layer, copied from a
  *source* run into a *target* run, at all positions or chosen ones. Denoising is target =
  corrupted, source = clean; noising is the other way round;
- Q/K/V patching: only a head's query (the question), key (who answers) or value (the answer)
  taken from the source run;
- path patching: a sender head's source output reaching a receiver head's Q, K or V input by the
  direct path only, everything else as in the target run.

Head outputs are patched before the output projection (``hook_z``); because the projection is
linear this is the same as patching each head's write into the residual stream.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from engine.errors import UsageError
from engine.hooks import Hook, act_name, block_tail, forward, w_out

if TYPE_CHECKING:
    import torch

    from engine.models import LoadedModel, Tokens

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


def _group_by_layer(
    heads: Iterable[HeadIndex], n_layers: int, n_heads: int
) -> dict[int, list[int]]:
    by_layer: dict[int, list[int]] = {}
    for layer, head in heads:
        if not (0 <= layer < n_layers and 0 <= head < n_heads):
            raise UsageError(f"no head {layer}.{head} in a model of {n_layers}x{n_heads}")
        by_layer.setdefault(layer, []).append(head)
    return by_layer


def _same_shape(target: Tokens, source: Tokens) -> None:
    if list(target.lengths) != list(source.lengths):
        raise UsageError("patching needs source and target prompts of the same token lengths")


# --------------------------------------------------------------------------- ablation


def mean_z(lm: LoadedModel, reference: Tokens) -> dict[int, torch.Tensor]:
    """Each layer's head outputs averaged over the reference prompts, per position:
    {layer: [pos, head, d_head]}. Positions only some prompts reach average over those."""
    import torch

    with torch.inference_mode():
        run = forward(lm, reference, record=["z"], logits="none")
    lengths = torch.tensor(reference.lengths, device=reference.ids.device)
    n_ctx = reference.ids.shape[1]
    present = (torch.arange(n_ctx, device=lengths.device)[None] < lengths[:, None]).float()
    weights = present / present.sum(0).clamp(min=1)  # [batch, pos]
    return {
        layer: torch.einsum("bphd,bp->phd", run[act_name("z", layer)], weights)
        for layer in range(lm.n_layers)
    }


def ablation_hooks(
    lm: LoadedModel,
    heads: Iterable[HeadIndex],
    *,
    method: Literal["mean", "zero"] = "mean",
    means: dict[int, torch.Tensor] | None = None,
) -> dict[str, Hook]:
    """Hooks that knock the given heads out."""
    by_layer = _group_by_layer(heads, lm.n_layers, lm.n_heads)
    if method == "mean" and means is None:
        raise UsageError("mean ablation needs means (see mean_z) or reference prompts")
    if method not in ("mean", "zero"):
        raise UsageError(f"unknown ablation method {method!r}")

    def make(layer: int, head_list: list[int]) -> Hook:
        def hook(z: torch.Tensor) -> torch.Tensor:
            z = z.clone()
            if method == "zero":
                z[:, :, head_list] = 0.0
            else:
                mean = _fit_positions(means[layer], z.shape[1])  # type: ignore[index]
                z[:, :, head_list] = mean[None, :, head_list]
            return z

        return hook

    return {act_name("z", layer): make(layer, hs) for layer, hs in by_layer.items()}


def _fit_positions(mean: torch.Tensor, n_ctx: int) -> torch.Tensor:
    """Means for ``n_ctx`` positions: cut, or padded with the mean over all positions."""
    import torch

    if mean.shape[0] >= n_ctx:
        return mean[:n_ctx]
    filler = mean.mean(0, keepdim=True).expand(n_ctx - mean.shape[0], *mean.shape[1:])
    return torch.cat([mean, filler], dim=0)


def ablate_heads(
    lm: LoadedModel,
    tokens: Tokens,
    heads: Iterable[HeadIndex],
    *,
    method: Literal["mean", "zero"] = "mean",
    reference: Tokens | None = None,
    means: dict[int, torch.Tensor] | None = None,
    logits: Literal["all", "last"] = "all",
) -> torch.Tensor:
    """Logits with the given heads knocked out (mean over ``reference``, or zero)."""
    import torch

    if method == "mean" and means is None:
        if reference is None:
            raise UsageError("mean ablation needs reference prompts")
        means = mean_z(lm, reference)
    hooks = ablation_hooks(lm, heads, method=method, means=means)
    with torch.inference_mode():
        return forward(lm, tokens, hooks=hooks, logits=logits).logits


# --------------------------------------------------------------------------- activation patching


def _positions_mask(positions: Sequence[int] | torch.Tensor | None, tokens: Tokens):
    """[batch, pos] bool: where to patch. ``positions`` is one index per prompt, or None (all)."""
    import torch

    batch, n_ctx = tokens.ids.shape
    if positions is None:
        return torch.ones(batch, n_ctx, dtype=torch.bool, device=tokens.ids.device)
    index = torch.as_tensor(positions, device=tokens.ids.device).reshape(batch, -1)
    mask = torch.zeros(batch, n_ctx, dtype=torch.bool, device=tokens.ids.device)
    mask.scatter_(1, index, True)
    return mask


def patch_heads(
    lm: LoadedModel,
    target: Tokens,
    source: Tokens,
    heads: Iterable[HeadIndex],
    *,
    positions: Sequence[int] | torch.Tensor | None = None,
    which: Literal["z", "q", "k", "v"] = "z",
    logits: Literal["all", "last"] = "all",
) -> torch.Tensor:
    """Logits of ``target`` with the heads' output (or only their q, k or v) from ``source``.

    ``positions``: per prompt, the position(s) to patch; None patches every position.
    """
    import torch

    _same_shape(target, source)
    by_layer = _group_by_layer(heads, lm.n_layers, lm.n_heads)
    names = [act_name(which, layer) for layer in by_layer]
    with torch.inference_mode():
        source_run = forward(lm, source, record=names, logits="none")
        mask = _positions_mask(positions, target)[:, :, None, None]
        hooks: dict[str, Hook] = {}
        for layer, head_list in by_layer.items():
            name = act_name(which, layer)
            hooks[name] = _replace_heads(source_run.cache[name], head_list, mask)
        return forward(lm, target, hooks=hooks, logits=logits).logits


def _replace_heads(source: torch.Tensor, head_list: list[int], mask: torch.Tensor) -> Hook:
    """A hook putting ``source``'s heads into the activation where ``mask`` holds."""
    import torch

    def hook(act: torch.Tensor) -> torch.Tensor:
        act = act.clone()
        act[:, :, head_list] = torch.where(mask, source[:, :, head_list], act[:, :, head_list])
        return act

    return hook


def patch_resid(
    lm: LoadedModel,
    target: Tokens,
    source: Tokens,
    layer: int,
    *,
    positions: Sequence[int] | torch.Tensor | None = None,
    kind: Literal["resid_pre", "resid_mid", "resid_post"] = "resid_pre",
    logits: Literal["all", "last"] = "all",
) -> torch.Tensor:
    """Logits of ``target`` with the residual stream at ``layer`` taken from ``source``
    (the essay's "replace a person by their counterpart from another sentence")."""
    import torch

    _same_shape(target, source)
    if not 0 <= layer < lm.n_layers:
        raise UsageError(f"no layer {layer} in a model of {lm.n_layers} layers")
    name = act_name(kind, layer)
    with torch.inference_mode():
        src = forward(lm, source, record=[name], stop_layer=layer + 1).cache[name]
        mask = _positions_mask(positions, target)[:, :, None]

        def hook(act: torch.Tensor) -> torch.Tensor:
            return torch.where(mask, src, act)

        return forward(lm, target, hooks={name: hook}, logits=logits).logits


def path_patch(
    lm: LoadedModel,
    target: Tokens,
    source: Tokens,
    sender: HeadIndex,
    receiver: HeadIndex,
    *,
    which: Literal["q", "k", "v"] = "q",
    logits: Literal["all", "last"] = "all",
) -> torch.Tensor:
    """Logits of ``target`` when only the receiver's Q/K/V input sees the sender's ``source``
    output, through the direct residual path; every other head reads the target run.

    Because the change sits in the receiver's own layer, all earlier computation equals the
    target run: the receiver's new input is that run's ``resid_pre`` plus the sender's change
    in its residual write.
    """
    import torch

    _same_shape(target, source)
    (s_layer, s_head), (r_layer, r_head) = sender, receiver
    _group_by_layer([sender, receiver], lm.n_layers, lm.n_heads)
    if s_layer >= r_layer:
        raise UsageError(
            f"sender {s_layer}.{s_head} must sit in an earlier layer than the receiver"
        )
    z_name, resid_name = act_name("z", s_layer), act_name("resid_pre", r_layer)
    with torch.inference_mode():
        z_source = forward(lm, source, record=[z_name], stop_layer=s_layer + 1).cache[z_name]
        target_run = forward(lm, target, record=[z_name, resid_name], stop_layer=r_layer + 1)
        dz = z_source[:, :, s_head] - target_run.cache[z_name][:, :, s_head]  # [b, pos, d_head]
        delta = dz @ w_out(lm, s_layer)[s_head]  # [b, pos, d_model]
        block = lm.model.transformer.h[r_layer]
        resid = target_run.cache[resid_name] + delta
        qkv = block.attn.c_attn(block.ln_1(resid)).split(lm.d_model, dim=-1)
        part = {"q": 0, "k": 1, "v": 2}[which]
        new = qkv[part].view(*resid.shape[:2], lm.n_heads, lm.d_head)[:, :, r_head]

        def hook(act: torch.Tensor) -> torch.Tensor:
            act = act.clone()
            act[:, :, r_head] = new
            return act

        return forward(lm, target, hooks={act_name(which, r_layer): hook}, logits=logits).logits


# --------------------------------------------------------------------------- patching grids


@dataclass
class HeadPatchGrid:
    """A head-patching grid and the two unpatched baselines, read from the same two runs."""

    effects: torch.Tensor  # [layer, head]: mean metric with that head patched
    target_metric: float  # mean metric of the target run, nothing patched
    source_metric: float  # mean metric of the source run


def head_patch_grid(
    lm: LoadedModel,
    target: Tokens,
    source: Tokens,
    metric: Metric,
    *,
    progress: Callable[[int, int], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
    max_batch: int = 512,
) -> torch.Tensor:
    """The metric (mean over prompts) after patching each head's output, at all positions,
    from ``source`` into ``target``: [layer, head]. Denoising: target = corrupted prompts,
    source = clean prompts. See ``head_patch_grid_run`` for the baselines too."""
    return head_patch_grid_run(
        lm, target, source, metric, progress=progress, cancelled=cancelled, max_batch=max_batch
    ).effects


def head_patch_grid_run(
    lm: LoadedModel,
    target: Tokens,
    source: Tokens,
    metric: Metric,
    *,
    progress: Callable[[int, int], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
    max_batch: int = 512,
) -> HeadPatchGrid:
    """``head_patch_grid`` with the unpatched target and source metrics.

    Exact, and fast because each layer's patched runs start from the target's cached
    ``resid_pre`` at that layer, all heads of a layer run in one batch, the patched layer's
    own attention is computed once, and only each prompt's last position is unembedded.
    """
    import torch

    _same_shape(target, source)
    n_layers, n_heads = lm.n_layers, lm.n_heads
    batch = len(target)
    grid = torch.empty(n_layers, n_heads)
    z_names = [act_name("z", layer) for layer in range(n_layers)]
    resid_names = [act_name("resid_pre", layer) for layer in range(n_layers)]
    heads_per_chunk = max(1, min(n_heads, max_batch // max(batch, 1)))
    with torch.inference_mode():
        source_run = forward(lm, source, record=z_names, logits="last")
        target_run = forward(lm, target, record=z_names + resid_names, logits="last")
        for layer in range(n_layers):
            for first in range(0, n_heads, heads_per_chunk):
                if cancelled is not None and cancelled():
                    raise InterruptedError("patching cancelled")
                heads = list(range(first, min(n_heads, first + heads_per_chunk)))
                grid[layer, heads] = _patch_layer_heads(
                    lm, target, layer, heads, target_run[resid_names[layer]],
                    target_run[z_names[layer]], source_run[z_names[layer]], metric,
                )
            if progress is not None:
                progress(layer + 1, n_layers)
        return HeadPatchGrid(
            effects=grid,
            target_metric=float(metric(target_run.logits).float().mean()),
            source_metric=float(metric(source_run.logits).float().mean()),
        )


def _patch_layer_heads(lm, target, layer, heads, resid, z_target, z_source, metric):
    """Run ``len(heads)`` copies of the target batch from ``layer``'s head outputs, copy i
    with head heads[i] patched; return the mean metric per head. The layer's own attention
    is the same in every copy, so each copy starts after it."""
    import torch

    from engine.models import Tokens

    batch = len(target)
    copies = len(heads)
    stacked = Tokens(ids=target.ids.repeat(copies, 1), lengths=list(target.lengths) * copies)
    z = z_target.repeat(copies, 1, 1, 1).view(copies, batch, *z_target.shape[1:])
    rows = torch.arange(copies, device=z.device)
    z[rows, :, :, torch.tensor(heads, device=z.device)] = z_source[:, :, heads].permute(2, 0, 1, 3)
    z = z.view(copies * batch, *z_target.shape[1:])
    resid_post = block_tail(lm, layer, resid.repeat(copies, 1, 1), z)
    run = forward(lm, stacked, start_layer=layer + 1, resid=resid_post, logits="last")
    values = metric(run.logits).view(copies, batch)
    return values.mean(1).float().cpu()


def attribution_patch_grid(
    lm: LoadedModel, target: Tokens, source: Tokens, metric: Metric
) -> torch.Tensor:
    """First-order estimate of ``head_patch_grid`` from one forward and one backward:
    metric(target) + grad . (z_source - z_target), per head, summed over positions."""
    import torch

    _same_shape(target, source)
    z_names = [act_name("z", layer) for layer in range(lm.n_layers)]
    with torch.inference_mode():
        source_z = forward(lm, source, record=z_names, logits="none").cache
    source_z = {k: v.clone() for k, v in source_z.items()}
    leaves: dict[str, torch.Tensor] = {}

    def make(name: str) -> Hook:
        def hook(z: torch.Tensor) -> torch.Tensor:
            leaves[name] = torch.zeros_like(z, requires_grad=True)
            return z + leaves[name]

        return hook

    with torch.enable_grad():
        run = forward(
            lm, target, record=z_names, hooks={n: make(n) for n in z_names}, logits="last"
        )
        base = metric(run.logits).mean()
        base.backward()
    grid = torch.stack([
        ((source_z[n] - run.cache[n].detach()) * leaves[n].grad).sum(dim=(0, 1, 3))
        for n in z_names
    ])
    return (grid + base.detach()).float().cpu()


def resid_patch_grid(
    lm: LoadedModel,
    target: Tokens,
    source: Tokens,
    positions_by_role: dict[str, Sequence[int]],
    metric: Metric,
    layers: Iterable[int] | None = None,
    *,
    cancelled: Callable[[], bool] | None = None,
    max_batch: int = 512,
) -> torch.Tensor:
    """The metric (mean over prompts) after copying ``source``'s residual stream at one role's
    position into ``target`` at the start of a layer: [layer, role], rows in ``layers`` order
    (default: every layer), columns in ``positions_by_role`` order. ``positions_by_role[r]``
    holds one position per prompt. Cell [i, j] equals ``patch_resid(lm, target, source,
    layers[i], positions=positions_by_role[role_j])`` read by ``metric`` and averaged.

    Fast because both runs' ``resid_pre`` are recorded once, and each layer's patched runs (one
    copy of the target batch per role, stacked) start at that layer from the patched stream;
    only each prompt's last position is unembedded.
    """
    import torch

    from engine.models import Tokens

    _same_shape(target, source)
    layers = list(range(lm.n_layers)) if layers is None else list(layers)
    for layer in layers:
        if not 0 <= layer < lm.n_layers:
            raise UsageError(f"no layer {layer} in a model of {lm.n_layers} layers")
    roles = list(positions_by_role)
    grid = torch.empty(len(layers), len(roles))
    if not layers or not roles:
        return grid
    batch = len(target)
    names = sorted({act_name("resid_pre", layer) for layer in layers})
    masks = [_positions_mask(positions_by_role[role], target) for role in roles]
    per_chunk = max(1, min(len(roles), max_batch // max(batch, 1)))
    with torch.inference_mode():
        stop = max(layers) + 1
        source_run = forward(lm, source, record=names, stop_layer=stop).cache
        target_run = forward(lm, target, record=names, stop_layer=stop).cache
        for row, layer in enumerate(layers):
            name = act_name("resid_pre", layer)
            src, tgt = source_run[name], target_run[name]
            for first in range(0, len(roles), per_chunk):
                if cancelled is not None and cancelled():
                    raise InterruptedError("patching cancelled")
                chunk = list(range(first, min(len(roles), first + per_chunk)))
                copies = len(chunk)
                mask = torch.cat([masks[j] for j in chunk])[:, :, None]
                resid = torch.where(mask, src.repeat(copies, 1, 1), tgt.repeat(copies, 1, 1))
                stacked = Tokens(ids=target.ids.repeat(copies, 1),
                                 lengths=list(target.lengths) * copies)
                run = forward(lm, stacked, start_layer=layer, resid=resid, logits="last")
                values = metric(run.logits).view(copies, batch)
                grid[row, chunk] = values.mean(1).float().cpu()
    return grid
