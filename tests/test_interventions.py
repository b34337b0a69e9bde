"""Ablation and patching on random GPT-2: each checked against a second way of computing it."""

from __future__ import annotations

import pytest
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
        # float rounding only: a hooked key or value takes the spelled-out attention
        assert (same - base).abs().max() <= 1e-5


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


# --------------------------------------------------------------------------- the one runner


@pytest.fixture(scope="module")
def toy_model():
    from engine.models import load_model

    return load_model("toy", device="cpu")


def _toy_state(toy, n=6):
    """A PatchState for the toy's IOI prompts: target clean, source corrupted."""
    from engine.interventions import PatchState, group_means
    from engine.metrics import PuzzleMetric
    from engine.models import pad_rows
    from engine.puzzle import find_puzzle

    ps = find_puzzle("ioi-whole-circuit").build_prompts(toy.tokenizer, "play")
    clean = pad_rows(ps.token_ids[:n], device="cpu")
    corrupted = pad_rows(ps.corrupted_ids[:n], device="cpu")
    L = toy.n_layers
    with torch.inference_mode():
        src = forward(toy, corrupted, record=["z", "mlp_out", "resid_pre"], logits="none")
        tgt = forward(toy, clean, record=["resid_pre"], logits="none")
    stack = lambda run, kind: torch.stack([run[act_name(kind, i)] for i in range(L)])  # noqa: E731
    metric = PuzzleMetric(ps.metric.kind, ps.correct[:n], ps.wrong[:n])
    state = PatchState(
        tokens=clean, at=torch.tensor(ps.at[:n]), metric=metric.on_resid(toy),
        positions={r: torch.tensor(ps.roles[r][:n]) for r in ps.roles},
        means=torch.stack([group_means(src[act_name("z", i)], corrupted.lengths,
                                       ps.templates[:n]) for i in range(L)]),
        source_z=stack(src, "z"), source_mlp=stack(src, "mlp_out"),
        source_resid=stack(src, "resid_pre"), target_resid=stack(tgt, "resid_pre"))
    return state, metric, clean, corrupted, ps


def test_run_edits_agrees_with_the_one_at_a_time_functions(toy_model):
    from engine.interventions import ALL, Edit, ablation_hooks, run_edits

    lm = toy_model
    state, metric, clean, corrupted, _ps = _toy_state(lm)
    end = state.positions["END"]
    edits = [Edit(), Edit.of(z=[(3, 2, "END")]), Edit.of(z=[(1, 0, ALL), (3, 2, ALL)]),
             Edit.of(resid=[(2, "S2")]), Edit.of(ablate=[(2, 1), (3, 2)]),
             Edit.of(mlp=[(1, "END")])]
    values = run_edits(lm, state, edits, max_batch=12)  # several batches
    last = lambda logits: metric(logits)  # noqa: E731
    with torch.inference_mode():
        plain = last(forward(lm, clean, logits="last").logits)
        assert values[0].tolist() == pytest.approx(plain.tolist(), abs=1e-4)
        one = patch_heads(lm, clean, corrupted, [(3, 2)], positions=end, logits="last")
        assert values[1].tolist() == pytest.approx(last(one).tolist(), abs=1e-4)
        both = patch_heads(lm, clean, corrupted, [(1, 0), (3, 2)], logits="last")
        assert values[2].tolist() == pytest.approx(last(both).tolist(), abs=1e-4)
        resid = patch_resid(lm, clean, corrupted, 2, positions=state.positions["S2"],
                            logits="last")
        assert values[3].tolist() == pytest.approx(last(resid).tolist(), abs=1e-4)
        # the ablation means are per prompt (its template's mean over the corrupted prompts)
        means = {i: state.means[i] for i in range(lm.n_layers)}

        def per_prompt(layer, heads):
            def hook(z):
                z = z.clone()
                z[:, :, heads] = means[layer][:, : z.shape[1], heads]
                return z
            return hook

        hooks = {act_name("z", 2): per_prompt(2, [1]), act_name("z", 3): per_prompt(3, [2])}
        ablated = last(forward(lm, clean, hooks=hooks, logits="last").logits)
        assert values[4].tolist() == pytest.approx(ablated.tolist(), abs=1e-4)
        mlp = {act_name("mlp_out", 1): lambda a: torch.where(
            (torch.arange(a.shape[1])[None] == end[:, None])[:, :, None],
            state.source_mlp[1][:, : a.shape[1]], a)}
        assert values[5].tolist() == pytest.approx(
            last(forward(lm, clean, hooks=mlp, logits="last").logits).tolist(), abs=1e-4)
    assert ablation_hooks  # the one-mean helpers stay available


def test_path_patching_into_queries(toy_model):
    """The toy's s-inhibition head 2.1 works only through the name mover's query at END:
    its write reaching later queries alone carries its whole effect; sending a head's own
    target output changes nothing."""
    from engine.interventions import Edit, run_edits

    lm = toy_model
    state, *_ = _toy_state(lm)
    base, full, path = run_edits(lm, state, [Edit(), Edit.of(z=[(2, 1, "END")]),
                                             Edit.of(q_path=[(2, 1, "END")])]).mean(1).tolist()
    assert base - full > 1.0
    assert (base - path) == pytest.approx(base - full, rel=0.05)
    same = type(state)(**{**state.__dict__, "source_z": None})
    with pytest.raises(Exception, match="source"):
        run_edits(lm, same, [Edit.of(q_path=[(2, 1, "END")])])


def test_edits_are_hashable_and_order_free():
    from engine.interventions import Edit

    a = Edit.of(ablate=[(1, 2), (0, 1)], z=[(3, 2, "END"), (1, 0, "S2")])
    b = Edit.of(ablate=[(0, 1), (1, 2)], z=[(1, 0, "S2"), (3, 2, "END")])
    assert a == b and hash(a) == hash(b) and a.key() == b.key()
    assert a.first_layer(4) == 0 and Edit().first_layer(4) == 3
    assert Edit.of(q_path=[(2, 1, "END")]).key() != Edit.of(z=[(2, 1, "END")]).key()


def test_group_means_are_per_template_and_skip_padding():
    from engine.interventions import group_means

    acts = torch.arange(4 * 3, dtype=torch.float).view(4, 3)  # [prompt, pos]
    out = group_means(acts, [3, 2, 3, 3], [0, 0, 1, 1])
    assert out[0].tolist() == out[1].tolist() == [1.5, 2.5, 2.0]  # prompt 1 stops at pos 2
    assert out[2].tolist() == out[3].tolist() == [7.5, 8.5, 9.5]
