"""Patching grids: every cell of one kind of intervention (a head's output, query, key or
value; the residual stream at a person; a head silenced), each read as the metric's mean,
plus the first-order (attribution) estimate of each grid."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from engine.errors import UsageError
from engine.hooks import Hook, act_name, forward
from engine.interventions.basics import Metric, positions_mask, same_shape
from engine.interventions.means import group_means
from engine.interventions.runner import ALL, Edit, PatchState, run_edits

if TYPE_CHECKING:
    import torch

    from engine.loaded import LoadedModel, Tokens


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
    source = clean prompts. ``patch_grid`` with ``at="head"`` gives the baselines too."""
    return patch_grid(lm, target, source, metric, at="head", progress=progress,
                      cancelled=cancelled, max_batch=max_batch).effects


PATCH_AT = {"head": "z", "query": "q", "key": "k", "value": "v", "resid": "resid_pre"}
"""What ``patch_grid(at=...)`` swaps: a head's output (``hook_z``), its query, key or value,
or the residual stream entering a layer at one person's position."""


@dataclass
class PatchGrid:
    """One grid of patched (or silenced) runs and the two unpatched baselines.

    ``effects`` [layer, column]: the mean metric with that one cell changed; columns are the
    heads, or the positions' names for ``at="resid"``. ``target_metric`` is the run that is
    changed (corrupted when patching, clean when silencing), ``source_metric`` the other."""

    at: str  # head | query | key | value | resid | silence
    position: str  # where a head is patched (ALL or a position's name); resid: per column
    columns: list[str]
    effects: torch.Tensor
    target_metric: float
    source_metric: float
    layers: list[int] = field(default_factory=list)  # the layer of each row of ``effects``


def patch_grid(
    lm: LoadedModel,
    target: Tokens,
    source: Tokens,
    metric: Metric,
    *,
    at: str = "head",
    position: str = ALL,
    positions: dict[str, Sequence[int]] | None = None,
    templates: Sequence[int] | None = None,
    progress: Callable[[int, int], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
    max_batch: int = 512,
    layers: Sequence[int] | None = None,
) -> PatchGrid:
    """Every cell of one kind of intervention, one head (or one person) at a time, through
    ``run_edits`` (the one runner): each layer's runs start from the target's cached
    ``resid_pre`` and all of a layer's cells run in one stacked batch.

    - ``at`` in head/query/key/value: that part of one head, from ``source`` into ``target``,
      at ``position`` (a name in ``positions``, one index per prompt) or at every position;
    - ``at="resid"``: the residual stream entering each layer at each named position;
    - ``at="silence"``: each head mean-ablated in ``target`` at every position, the means
      taken over ``source`` per template and position (``group_means``, the judge's knock-out;
      ``templates`` gives each source prompt's template).

    Denoising is target = corrupted, source = clean; silencing is target = clean, source =
    corrupted. ``metric`` reads last-position logits. ``layers`` limits the rows to those
    layers (in that order; every layer by default).
    """
    import torch

    from engine.hooks import unembed

    if at not in (*PATCH_AT, "silence"):
        raise UsageError(f"cannot patch at {at!r}: use {', '.join(PATCH_AT)} or silence")
    same_shape(target, source)
    positions = dict(positions or {})
    if at == "resid" and not positions:
        raise UsageError("patching the residual stream needs named positions")
    if position != ALL and position not in positions:
        raise UsageError(f"no position called {position!r}; there are: "
                         f"{', '.join(positions) or 'none'}")
    L, device = lm.n_layers, target.ids.device
    kind = PATCH_AT.get(at, "z")
    names = [act_name(kind, layer) for layer in range(L)]
    resid_names = [act_name("resid_pre", layer) for layer in range(L)]
    final = act_name("resid_post", L - 1)
    last = target.last.to(device)
    rows = torch.arange(len(target), device=device)
    columns = list(positions) if at == "resid" else [str(h) for h in range(lm.n_heads)]
    rows_asked = list(range(L)) if layers is None else list(layers)
    for layer in rows_asked:
        if not 0 <= layer < L:
            raise UsageError(f"no layer {layer} in a model of {L} layers")
    grid = torch.empty(len(rows_asked), len(columns))
    with torch.inference_mode():
        source_run = forward(lm, source, record=[*names, final], logits="none")
        target_run = forward(lm, target, record=[*resid_names, final], logits="none")
        stacked = torch.stack([source_run[n] for n in names])
        state = PatchState(
            tokens=target, at=last, metric=lambda r: metric(unembed(lm, r)),
            positions={name: torch.as_tensor(list(p), device=device)
                       for name, p in positions.items()},
            target_resid=torch.stack([target_run[n] for n in resid_names]),
        )
        if at == "silence":
            state.means = torch.stack([group_means(z, source.lengths, templates)
                                       for z in stacked])
        elif at == "head":
            state.source_z = stacked
        elif at == "resid":
            state.source_resid = stacked
        else:
            state.source_qkv = {kind: stacked}
        target_metric = float(state.metric(target_run[final][rows, last]).float().mean())
        source_metric = float(state.metric(source_run[final][rows, last]).float().mean())
        del source_run, target_run, stacked
        for row, layer in enumerate(rows_asked):
            if cancelled is not None and cancelled():
                raise InterruptedError("patching cancelled")
            if at == "resid":
                edits = [Edit.of(resid=[(layer, role)]) for role in columns]
            elif at == "silence":
                edits = [Edit.of(ablate=[(layer, h)]) for h in range(lm.n_heads)]
            elif at == "head":
                edits = [Edit.of(z=[(layer, h, position)]) for h in range(lm.n_heads)]
            else:
                edits = [Edit.of(qkv=[(kind, layer, h, position)]) for h in range(lm.n_heads)]
            grid[row] = run_edits(lm, state, edits, max_batch=max_batch).mean(1)
            if progress is not None:
                progress(row + 1, len(rows_asked))
    return PatchGrid(at=at, position=ALL if at in ("resid", "silence") else position,
                     columns=columns, effects=grid, target_metric=target_metric,
                     source_metric=source_metric, layers=rows_asked)


def _gradients(lm: LoadedModel, target: Tokens, names: Sequence[str], metric: Metric,
               ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], torch.Tensor]:
    """One forward and one backward of ``target``: each activation in ``names``, the
    gradient of the metric's mean over prompts with respect to it, and that mean. The
    first-order estimate of replacing an activation ``a`` by ``b`` is then
    ``mean + grad . (b - a)``."""
    import torch

    leaves: dict[str, torch.Tensor] = {}

    def make(name: str) -> Hook:
        def hook(act: torch.Tensor) -> torch.Tensor:
            leaves[name] = torch.zeros_like(act, requires_grad=True)
            return act + leaves[name]

        return hook

    with torch.enable_grad():
        run = forward(lm, target, record=names, hooks={n: make(n) for n in names},
                      logits="last")
        base = metric(run.logits).mean()
        base.backward()
    acts = {n: run.cache[n].detach() for n in names}
    grads = {n: leaves[n].grad for n in names}
    return acts, grads, base.detach()


def attribution_patch_grid(
    lm: LoadedModel, target: Tokens, source: Tokens, metric: Metric, *,
    which: Literal["z", "q", "k", "v"] = "z", positions: Sequence[int] | None = None,
) -> torch.Tensor:
    """First-order estimate of a head grid (``patch_grid`` at head/query/key/value) from one
    forward and one backward: metric(target) + grad . (source - target), per head, summed
    over positions (or only at ``positions``, one per prompt). Fast enough for a first
    picture; exact patching then replaces it."""
    import torch

    same_shape(target, source)
    if which not in ("z", "q", "k", "v"):
        raise UsageError(f"attribution patching estimates z, q, k or v, not {which!r}")
    names = [act_name(which, layer) for layer in range(lm.n_layers)]
    with torch.inference_mode():
        source_acts = forward(lm, source, record=names, logits="none").cache
    source_acts = {k: v.clone() for k, v in source_acts.items()}
    acts, grads, base = _gradients(lm, target, names, metric)
    mask = positions_mask(positions, target).to(base.dtype)
    grid = torch.stack([
        ((source_acts[n] - acts[n]) * grads[n] * mask[:, :, None, None]).sum(dim=(0, 1, 3))
        for n in names
    ])
    return (grid + base).float().cpu()


def attribution_resid_grid(
    lm: LoadedModel, target: Tokens, source: Tokens, metric: Metric,
    positions_by_role: dict[str, Sequence[int]],
) -> torch.Tensor:
    """First-order estimate of ``resid_patch_grid`` ([layer, role]): the residual stream
    entering each layer at one role's position swapped from ``source`` into ``target``,
    from one forward of each and one backward of ``target``."""
    import torch

    same_shape(target, source)
    names = [act_name("resid_pre", layer) for layer in range(lm.n_layers)]
    with torch.inference_mode():
        source_acts = forward(lm, source, record=names, logits="none").cache
    source_acts = {k: v.clone() for k, v in source_acts.items()}
    acts, grads, base = _gradients(lm, target, names, metric)
    rows = torch.arange(len(target), device=base.device)
    grid = torch.empty(lm.n_layers, len(positions_by_role))
    for j, where in enumerate(positions_by_role.values()):
        at = torch.as_tensor(list(where), device=base.device)
        for layer, n in enumerate(names):
            delta = source_acts[n][rows, at] - acts[n][rows, at]
            grid[layer, j] = (delta * grads[n][rows, at]).sum()
    return (grid + base.cpu()).float()


def attribution_silence_grid(
    lm: LoadedModel, target: Tokens, reference: Tokens, metric: Metric,
    templates: Sequence[int] | None = None,
) -> torch.Tensor:
    """First-order estimate of the silence grid ([layer, head]): each head's output in
    ``target`` replaced by its mean over ``reference`` (per template and position,
    ``group_means``, the judge's knock-out), from one forward of each and one backward."""
    import torch

    same_shape(target, reference)
    names = [act_name("z", layer) for layer in range(lm.n_layers)]
    with torch.inference_mode():
        reference_acts = forward(lm, reference, record=names, logits="none").cache
        means = {n: group_means(reference_acts[n], reference.lengths, templates).clone()
                 for n in names}
    del reference_acts
    acts, grads, base = _gradients(lm, target, names, metric)
    mask = positions_mask(None, target).to(base.dtype)[:, :, None, None]
    grid = torch.stack([((means[n] - acts[n]) * grads[n] * mask).sum(dim=(0, 1, 3))
                        for n in names])
    return (grid + base).float().cpu()


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

    It is ``run_edits`` (the one runner) with one residual edit per cell: both runs'
    ``resid_pre`` are recorded once (the source's up to the last layer asked for, the
    target's at every layer), each layer's patched runs start at that layer, and the metric
    is read at each prompt's last position.
    """
    import torch

    from engine.hooks import unembed

    same_shape(target, source)
    layers = list(range(lm.n_layers)) if layers is None else list(layers)
    for layer in layers:
        if not 0 <= layer < lm.n_layers:
            raise UsageError(f"no layer {layer} in a model of {lm.n_layers} layers")
    roles = list(positions_by_role)
    grid = torch.empty(len(layers), len(roles))
    if not layers or not roles:
        return grid
    device = target.ids.device
    names = [act_name("resid_pre", layer) for layer in range(lm.n_layers)]
    stop = max(layers) + 1
    with torch.inference_mode():
        source_run = forward(lm, source, record=names[:stop], stop_layer=stop).cache
        # every layer of the target: patched runs take the keys and values of the positions
        # before the patch from it (``PatchState.kv_before``)
        target_run = forward(lm, target, record=names, logits="none").cache
        zeros = torch.zeros_like(target_run[names[0]])
        state = PatchState(
            tokens=target, at=target.last.to(device), metric=lambda r: metric(unembed(lm, r)),
            positions={role: torch.as_tensor(list(positions_by_role[role]), device=device)
                       for role in roles},
            source_resid=torch.stack([source_run.get(n, zeros) for n in names]),
            target_resid=torch.stack([target_run.get(n, zeros) for n in names]),
        )
        del source_run, target_run
        for row, layer in enumerate(layers):
            if cancelled is not None and cancelled():
                raise InterruptedError("patching cancelled")
            edits = [Edit.of(resid=[(layer, role)]) for role in roles]
            grid[row] = run_edits(lm, state, edits, max_batch=max_batch).mean(1)
    return grid
