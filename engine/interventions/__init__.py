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

The package, by job: ``basics`` (head indices, the metric type, argument checks), ``means``
(the mean-ablation definition), ``direct`` (one intervention, one forward), ``runner`` (the
frozen ``Edit`` and the one batched runner) and ``grids`` (every cell of one intervention).
Callers import from ``engine.interventions``.
"""

from __future__ import annotations

from engine.interventions.basics import HeadIndex, LogitDiff, Metric
from engine.interventions.direct import (
    ablate_heads,
    ablation_hooks,
    patch_heads,
    patch_resid,
    path_patch,
)
from engine.interventions.grids import (
    PATCH_AT,
    PatchGrid,
    attribution_patch_grid,
    attribution_resid_grid,
    attribution_silence_grid,
    head_patch_grid,
    patch_grid,
    resid_patch_grid,
)
from engine.interventions.means import group_means, mean_z
from engine.interventions.runner import ALL, RUNNER, Edit, PatchState, run_edits

__all__ = [
    "ALL",
    "PATCH_AT",
    "RUNNER",
    "Edit",
    "HeadIndex",
    "LogitDiff",
    "Metric",
    "PatchGrid",
    "PatchState",
    "ablate_heads",
    "ablation_hooks",
    "attribution_patch_grid",
    "attribution_resid_grid",
    "attribution_silence_grid",
    "group_means",
    "head_patch_grid",
    "mean_z",
    "patch_grid",
    "patch_heads",
    "patch_resid",
    "path_patch",
    "resid_patch_grid",
    "run_edits",
]
