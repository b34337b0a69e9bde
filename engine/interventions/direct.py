"""One intervention, one or two forwards: knock heads out, patch heads or the residual
stream from a source run, path-patch one sender into one receiver. Simple to read and to
check the batched runner (``engine.interventions.runner``) against."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Literal

from engine.errors import UsageError
from engine.hooks import Hook, act_name, attn_inputs, forward, w_out
from engine.interventions.basics import HeadIndex, group_by_layer, positions_mask, same_shape
from engine.interventions.means import mean_z

if TYPE_CHECKING:
    import torch

    from engine.loaded import LoadedModel, Tokens


def ablation_hooks(
    lm: LoadedModel,
    heads: Iterable[HeadIndex],
    *,
    method: Literal["mean", "zero"] = "mean",
    means: dict[int, torch.Tensor] | None = None,
) -> dict[str, Hook]:
    """Hooks that knock the given heads out."""
    by_layer = group_by_layer(heads, lm.n_layers, lm.n_heads)
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

    same_shape(target, source)
    by_layer = group_by_layer(heads, lm.n_layers, lm.n_heads)
    names = [act_name(which, layer) for layer in by_layer]
    with torch.inference_mode():
        source_run = forward(lm, source, record=names, logits="none")
        mask = positions_mask(positions, target)[:, :, None, None]
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

    same_shape(target, source)
    if not 0 <= layer < lm.n_layers:
        raise UsageError(f"no layer {layer} in a model of {lm.n_layers} layers")
    name = act_name(kind, layer)
    with torch.inference_mode():
        src = forward(lm, source, record=[name], stop_layer=layer + 1).cache[name]
        mask = positions_mask(positions, target)[:, :, None]

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
    in its residual write. For a model whose query heads share key/value heads, the receiver's
    k or v is its own query head's copy of the shared one: only that query head sees it.
    """
    import torch

    same_shape(target, source)
    (s_layer, s_head), (r_layer, r_head) = sender, receiver
    group_by_layer([sender, receiver], lm.n_layers, lm.n_heads)
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
        resid = target_run.cache[resid_name] + delta
        part = {"q": 0, "k": 1, "v": 2}[which]
        new = attn_inputs(lm, r_layer, resid)[part][:, :, r_head]

        def hook(act: torch.Tensor) -> torch.Tensor:
            act = act.clone()
            act[:, :, r_head] = new
            return act

        return forward(lm, target, hooks={act_name(which, r_layer): hook}, logits=logits).logits
