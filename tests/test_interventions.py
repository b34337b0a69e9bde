"""Ablation and patching on random GPT-2: each checked against a second way of computing it."""

from __future__ import annotations

import torch

from engine.hooks import act_name, forward
from engine.interventions import (
    LogitDiff,
    ablate_heads,
    attribution_patch_grid,
    head_patch_grid,
    mean_z,
    patch_heads,
    patch_resid,
    path_patch,
    resid_patch_grid,
)

CLEAN = [
    "When John and Mary went to the shops, John gave a bag to",
    "When Tom and Anna went to the park, Tom gave a ball to",
]
CORRUPTED = [
    "When Alice and Bob went to the shops, Carl gave a bag to",
    "When Sam and Kate went to the park, Ben gave a ball to",
]


def _pair(lm):
    return lm.tokenize(CORRUPTED), lm.tokenize(CLEAN)


def _metric(lm):
    ids = lm.token_id
    return LogitDiff([ids(" Mary"), ids(" Anna")], [ids(" John"), ids(" Tom")])


def test_patching_a_head_with_its_own_activation_changes_nothing(random_gpt2):
    lm = random_gpt2
    clean = lm.tokenize(CLEAN)
    with torch.inference_mode():
        base = forward(lm, clean).logits
    for which in ("z", "q", "k", "v"):
        same = patch_heads(lm, clean, clean, [(3, 4), (7, 1)], which=which)
        assert (same - base).abs().max() == 0


def test_patching_every_head_of_a_layer_equals_patching_its_attention_output(random_gpt2):
    lm = random_gpt2
    corrupted, clean = _pair(lm)
    patched = patch_heads(lm, corrupted, clean, [(4, h) for h in range(12)])
    name = act_name("attn_out", 4)
    with torch.inference_mode():
        source = forward(lm, clean, record=[name]).cache[name]
        reference = forward(lm, corrupted, hooks={name: lambda _: source}).logits
    assert (patched - reference).abs().max() <= 1e-4


def test_zero_ablation_equals_removing_the_heads_rows_of_the_output_projection(random_gpt2):
    lm = random_gpt2
    tokens = lm.tokenize(CLEAN)
    ablated = ablate_heads(lm, tokens, [(6, 2)], method="zero")
    weight = lm.model.transformer.h[6].attn.c_proj.weight
    saved = weight.detach().clone()
    try:
        with torch.no_grad():
            weight[2 * 64 : 3 * 64, :] = 0.0  # Conv1D weight is [input, output]
        with torch.inference_mode():
            by_hand = lm.model(tokens.ids).logits
    finally:
        with torch.no_grad():
            weight.copy_(saved)
    assert (ablated - by_hand).abs().max() <= 1e-4


def test_mean_ablation_uses_per_position_means_of_the_reference(random_gpt2):
    lm = random_gpt2
    corrupted, clean = _pair(lm)
    means = mean_z(lm, corrupted)
    name = act_name("z", 5)
    with torch.inference_mode():
        z = forward(lm, corrupted, record=[name], logits="none").cache[name]
    assert torch.allclose(means[5], z.mean(0), atol=1e-6)
    ablated = ablate_heads(lm, clean, [(5, 1)], method="mean", means=means)
    clean_logits = forward(lm, clean).logits
    assert not torch.allclose(ablated, clean_logits)


def test_denoising_grid_matches_one_patch_at_a_time(random_gpt2):
    lm = random_gpt2
    corrupted, clean = _pair(lm)
    metric = _metric(lm)
    grid = head_patch_grid(lm, corrupted, clean, metric)
    assert grid.shape == (12, 12)
    for layer, head in [(0, 0), (4, 7), (11, 11)]:
        one = patch_heads(lm, corrupted, clean, [(layer, head)], logits="last")
        assert abs(metric(one).mean().item() - grid[layer, head].item()) <= 1e-4


def test_attribution_grid_tracks_the_exact_grid(random_gpt2):
    lm = random_gpt2
    corrupted, clean = _pair(lm)
    metric = _metric(lm)
    exact = head_patch_grid(lm, corrupted, clean, metric)
    approx = attribution_patch_grid(lm, corrupted, clean, metric)
    corr = torch.corrcoef(torch.stack([exact.flatten(), approx.flatten()]))[0, 1]
    assert corr > 0.8


def test_residual_patching_at_every_position_hands_over_the_whole_run(random_gpt2):
    lm = random_gpt2
    corrupted, clean = _pair(lm)
    patched = patch_resid(lm, corrupted, clean, 3)
    assert (patched - forward(lm, clean).logits).abs().max() <= 1e-4
    only_first = patch_resid(lm, corrupted, clean, 3, positions=[0, 0])  # "When" in both
    assert (only_first - forward(lm, corrupted).logits).abs().max() <= 1e-4


def test_path_patching_with_identical_prompts_changes_nothing_and_otherwise_moves_q(random_gpt2):
    lm = random_gpt2
    corrupted, clean = _pair(lm)
    base = forward(lm, clean, logits="last").logits
    same = path_patch(lm, clean, clean, (2, 3), (9, 9), which="q", logits="last")
    assert (same - base).abs().max() <= 1e-4
    moved = path_patch(lm, clean, corrupted, (2, 3), (9, 9), which="q", logits="last")
    assert (moved - base).abs().max() > 1e-6


ROLES = {"A": [1, 1], "B": [3, 3], "S2": [9, 9], "END": [13, 13], "mixed": [1, 9]}


def test_resid_grid_matches_one_residual_patch_at_a_time(random_gpt2):
    lm = random_gpt2
    corrupted, clean = _pair(lm)
    metric = _metric(lm)
    grid = resid_patch_grid(lm, corrupted, clean, ROLES, metric)
    assert grid.shape == (12, len(ROLES))
    for layer in range(12):
        for j, positions in enumerate(ROLES.values()):
            one = patch_resid(lm, corrupted, clean, layer, positions=positions, logits="last")
            assert abs(metric(one).mean().item() - grid[layer, j].item()) <= 1e-4, (layer, j)


def test_resid_grid_takes_chosen_layers_and_small_batches(random_gpt2):
    lm = random_gpt2
    corrupted, clean = _pair(lm)
    metric = _metric(lm)
    full = resid_patch_grid(lm, corrupted, clean, ROLES, metric)
    some = resid_patch_grid(lm, corrupted, clean, ROLES, metric, layers=[7, 2], max_batch=2)
    assert some.shape == (2, len(ROLES))
    assert (some - full[[7, 2]]).abs().max() <= 1e-4
