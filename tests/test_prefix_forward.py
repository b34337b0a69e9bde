"""A run of the later positions only, with the earlier ones' keys and values taken from a full
run, gives those positions exactly what the full run gives them (causality), on both model
families; a patch there changes them exactly as in a full patched run."""

from __future__ import annotations

import pytest
import torch

from engine.hooks import Prefix, act_name, forward, keys_values
from engine.loaded import pad_rows


@pytest.fixture(scope="module", params=["toy", "tiny-llama"])
def lm(request, tiny_llama_dir):
    from engine.models import load_model

    name = str(tiny_llama_dir) if request.param == "tiny-llama" else request.param
    return load_model(name, device="cpu")


def prompts(lm):
    g = torch.Generator().manual_seed(0)
    vocab = min(lm.facts.vocab_size, 140)
    rows = torch.randint(1, vocab, (3, 12), generator=g).tolist()
    rows[1] = rows[1][:10]  # right padding too
    return pad_rows(rows)


@pytest.mark.parametrize(("start_layer", "skip"), [(0, 5), (1, 9), (1, 1)])
def test_the_later_positions_alone_match_the_full_run(lm, start_layer, skip) -> None:
    tokens = prompts(lm)
    last = lm.n_layers - 1
    names = [act_name("resid_pre", start_layer), act_name("resid_post", last),
             act_name("z", last)]
    full = forward(lm, tokens, record=names, logits="none")
    resid = full.cache[names[0]]

    def kv(layer: int):
        pre = forward(lm, tokens, record=[act_name("resid_pre", layer)], logits="none")
        return keys_values(lm, layer, pre.cache[act_name("resid_pre", layer)][:, :skip])

    part = forward(lm, tokens, record=names[1:], logits="none", start_layer=start_layer,
                   resid=resid[:, skip:], prefix=Prefix(skip, kv))
    for name in names[1:]:
        torch.testing.assert_close(part.cache[name], full.cache[name][:, skip:],
                                   atol=2e-5, rtol=1e-4)


def test_a_patch_after_the_prefix_acts_as_in_the_full_run(lm) -> None:
    tokens = prompts(lm)
    layer, skip, where = min(1, lm.n_layers - 1), 6, 8
    name = act_name("z", layer)
    pre_name = act_name("resid_pre", layer)

    def zero_head_at(z: torch.Tensor, offset: int = 0) -> torch.Tensor:
        z = z.clone()
        z[:, where - offset, 0] = 0.0
        return z

    final = act_name("resid_post", lm.n_layers - 1)
    full = forward(lm, tokens, record=[final, pre_name], logits="none",
                   hooks={name: zero_head_at})
    clean = forward(lm, tokens, record=[pre_name], logits="none").cache[pre_name]
    part = forward(lm, tokens, record=[final], logits="none", start_layer=layer,
                   resid=clean[:, skip:], hooks={name: lambda z: zero_head_at(z, skip)},
                   prefix=Prefix(skip, lambda l_: keys_values(
                       lm, l_, forward(lm, tokens, record=[act_name("resid_pre", l_)],
                                       logits="none").cache[act_name("resid_pre", l_)][:, :skip])))
    torch.testing.assert_close(part.cache[final], full.cache[final][:, skip:],
                               atol=2e-5, rtol=1e-4)


def test_a_prefix_run_needs_its_resid_and_gives_no_logits(lm) -> None:
    from engine.errors import UsageError

    tokens = prompts(lm)
    with pytest.raises(UsageError):
        forward(lm, tokens, prefix=Prefix(2, lambda layer: (None, None)))


@pytest.mark.parametrize(("start_layer", "skip"), [(0, 0), (1, 0), (1, 5)])
def test_last_only_gives_the_full_runs_last_tokens(lm, start_layer, skip) -> None:
    """``last_only``: the final block at each prompt's last real token only (what a patched
    run reads its metric from) equals the full run there, with or without a prefix."""
    tokens = prompts(lm)
    final = act_name("resid_post", lm.n_layers - 1)
    pre = act_name("resid_pre", start_layer)
    full = forward(lm, tokens, record=[final, pre], logits="none")
    rows = torch.arange(len(tokens))
    want = full.cache[final][rows, tokens.last]

    def kv(layer: int):
        resid = forward(lm, tokens, record=[act_name("resid_pre", layer)], logits="none")
        return keys_values(lm, layer, resid.cache[act_name("resid_pre", layer)][:, :skip])

    part = forward(lm, tokens, record=[final], logits="none", start_layer=start_layer,
                   resid=full.cache[pre][:, skip:], prefix=Prefix(skip, kv) if skip else None,
                   last_only=True)
    assert part.cache[final].shape == want.shape
    torch.testing.assert_close(part.cache[final], want, atol=2e-5, rtol=1e-4)
    # anything else watched in the final block: every position, as before
    z = act_name("z", lm.n_layers - 1)
    watched = forward(lm, tokens, record=[final, z], logits="none", last_only=True)
    assert watched.cache[final].shape == full.cache[final].shape
