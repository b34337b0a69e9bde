"""The hooked forward must be the model: same logits, same attention, any batch; what holds
for every model family is checked on each (Llama-only details: test_hooks_llama.py)."""

from __future__ import annotations

import pytest
import torch

from engine.hooks import act_name, forward, run_with_cache
from engine.models import LoadedModel, pad_rows

IOI = "When John and Mary went to the shops, John gave a bag to"
TEXTS = [IOI, "The cat sat", "One two three four five six"]  # 14, 3 and 6 GPT-2 tokens
LLAMA_ROWS = [[5, 17, 3, 99, 42, 7, 7, 17, 3], [11, 12, 13], [40, 41, 42, 43, 44, 45]]


@pytest.fixture(params=["random_gpt2", "tiny_llama"])  # not "gpt2": that marks real weights
def family(request) -> tuple[LoadedModel, list[list[int]]]:
    """A random model of each family the engine serves, and prompts (token ids) of
    different lengths for it: GPT-2 reads the IOI sentence, the tiny Llama raw ids."""
    lm = request.getfixturevalue(request.param)
    if lm.tokenizer is None:
        return lm, LLAMA_ROWS
    return lm, [lm.tokenizer.encode(text, add_special_tokens=False) for text in TEXTS]


def test_logits_and_attention_match_the_plain_model(family):
    lm, rows = family
    tokens = pad_rows(rows[:1])
    n = len(rows[0])
    logits, cache = run_with_cache(lm, tokens, names=["pattern"])
    with torch.inference_mode():
        reference = lm.model(tokens.ids, output_attentions=True)
    assert (logits - reference.logits).abs().max() <= 1e-4
    assert len(reference.attentions) == lm.n_layers
    for layer, attention in enumerate(reference.attentions):
        ours = cache[act_name("pattern", layer)]
        assert ours.shape == attention.shape == (1, lm.n_heads, n, n)
        assert (ours - attention).abs().max() <= 1e-5


def test_padded_batch_equals_prompts_one_at_a_time(family):
    lm, rows = family
    batch = pad_rows(rows)
    logits, cache = run_with_cache(lm, batch, names=["pattern"])
    last = forward(lm, batch, logits="last").logits
    for i, row in enumerate(rows):
        alone, alone_cache = run_with_cache(lm, pad_rows([row]), names=["pattern"])
        n = len(row)
        assert (logits[i, :n] - alone[0]).abs().max() <= 1e-4
        assert (last[i] - alone[0, n - 1]).abs().max() <= 1e-4
        for layer in (0, lm.n_layers - 1):
            name = act_name("pattern", layer)
            assert (cache[name][i, :, :n, :n] - alone_cache[name][0]).abs().max() <= 1e-5


def test_head_writes_plus_bias_sum_to_attention_output(random_gpt2):
    lm = random_gpt2
    tokens = lm.tokenize([IOI])
    _, cache = run_with_cache(lm, tokens, names=["result", "attn_out"])
    for layer in (0, 5, 11):
        bias = lm.model.transformer.h[layer].attn.c_proj.bias
        total = cache[act_name("result", layer)].sum(dim=2) + bias
        assert (total - cache[act_name("attn_out", layer)]).abs().max() <= 1e-4


def test_last_position_logits_pick_each_prompts_final_token(random_gpt2):
    lm = random_gpt2
    batch = lm.tokenize([IOI, "The cat sat"])
    with torch.inference_mode():
        full = forward(lm, batch).logits
        last = forward(lm, batch, logits="last").logits
    assert torch.allclose(last[0], full[0, 13], atol=1e-5)
    assert torch.allclose(last[1], full[1, 2], atol=1e-5)


def test_starting_from_a_cached_layer_gives_the_same_logits(random_gpt2):
    lm = random_gpt2
    tokens = lm.tokenize([IOI])
    with torch.inference_mode():
        full = forward(lm, tokens, record=[act_name("resid_pre", 7)])
        resumed = forward(lm, tokens, start_layer=7, resid=full[act_name("resid_pre", 7)])
    assert torch.allclose(full.logits, resumed.logits, atol=1e-5)


def test_records_only_what_is_asked(random_gpt2):
    lm = random_gpt2
    _, cache = run_with_cache(lm, lm.tokenize(["hello there"]), names=["blocks.3.attn.hook_z"])
    assert list(cache) == ["blocks.3.attn.hook_z"]
    assert cache["blocks.3.attn.hook_z"].shape == (1, 2, 12, 64)


def test_unknown_hook_name_is_a_usage_error(random_gpt2):
    from engine.errors import UsageError

    with pytest.raises(UsageError, match="no activation"):
        forward(random_gpt2, pad_rows([[1, 2]]), hooks={"blocks.99.attn.hook_z": lambda z: z})


def test_act_name_follows_transformer_lens():
    assert act_name("pattern", 5) == "blocks.5.attn.hook_pattern"
    assert act_name("resid_pre", 0) == "blocks.0.hook_resid_pre"
    assert act_name("attn", 2) == "blocks.2.attn.hook_pattern"
    assert act_name("embed") == "hook_embed"
