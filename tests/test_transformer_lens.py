"""Our patching grid against TransformerLens 4.x, run the same way on the same weights."""

from __future__ import annotations

import pytest

from bench.tl_compare import IOI_CLEAN, IOI_CORRUPTED, boot_bridge, tl_head_grid
from engine.interventions import LogitDiff, head_patch_grid


@pytest.mark.slow
def test_head_patch_grid_agrees_with_transformer_lens(random_gpt2):
    lm = random_gpt2
    clean, corrupted = lm.tokenize([IOI_CLEAN]), lm.tokenize([IOI_CORRUPTED])
    metric = LogitDiff([lm.token_id(" Mary")], [lm.token_id(" John")])
    bridge = boot_bridge(lm)
    theirs = tl_head_grid(bridge, clean.ids, corrupted.ids, metric).cpu()
    ours = head_patch_grid(lm, corrupted, clean, metric)
    assert theirs.shape == ours.shape == (12, 12)
    assert (theirs - ours).abs().max() <= 1e-4
    assert ours.std() > 1e-3  # the grid is not trivially flat
