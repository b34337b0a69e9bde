"""The hooked forward must be the model for the Llama family too: RoPE, RMSNorm, SwiGLU and
grouped key/value heads, on a tiny random model (and on SmolLM2 when it is converted)."""

from __future__ import annotations

import pytest
import torch

from engine.hooks import act_name, attn_inputs, forward, head_writes, run_with_cache, unembed
from engine.models import LoadedModel, pad_rows

ROWS = [[5, 17, 3, 99, 42, 7, 7, 17, 3], [11, 12, 13], [40, 41, 42, 43, 44, 45]]


def test_keys_and_values_are_per_query_head_and_shared_within_a_group(tiny_llama):
    _, cache = run_with_cache(tiny_llama, pad_rows(ROWS[:1]), names=["k", "v"])
    k = cache[act_name("k", 1)]
    assert k.shape == (1, 9, 6, 8)
    # 6 query heads read 2 key/value heads: heads 0-2 share one, 3-5 the other
    assert torch.equal(k[:, :, 0], k[:, :, 2]) and torch.equal(k[:, :, 3], k[:, :, 5])
    assert not torch.equal(k[:, :, 0], k[:, :, 3])


def test_patching_one_query_heads_key_leaves_its_group_mates_alone(tiny_llama):
    lm = tiny_llama
    tokens = pad_rows(ROWS[:1])
    name = act_name("k", 1)

    def scramble_head_1(k: torch.Tensor) -> torch.Tensor:
        k = k.clone()
        k[:, :, 1] = k[:, :, 1].flip(1)
        return k

    with torch.inference_mode():
        clean = forward(lm, tokens, record=["pattern"], logits="none")
        patched = forward(lm, tokens, record=["pattern"], hooks={name: scramble_head_1},
                          logits="none")
    before, after = clean[act_name("pattern", 1)], patched[act_name("pattern", 1)]
    assert not torch.allclose(before[:, 1], after[:, 1])
    assert torch.equal(before[:, 0], after[:, 0]) and torch.equal(before[:, 2], after[:, 2])


def test_hooked_head_writes_act(tiny_llama):
    """A hook on hook_result is applied, not ignored: zeroing every write equals zeroing z."""
    lm = tiny_llama
    tokens = pad_rows(ROWS[:1])
    with torch.inference_mode():
        by_result = forward(lm, tokens, hooks={act_name("result", 0): torch.zeros_like}).logits
        by_z = forward(lm, tokens, hooks={act_name("z", 0): torch.zeros_like}).logits
        plain = forward(lm, tokens).logits
    assert (by_result - by_z).abs().max() <= 1e-5
    assert (by_result - plain).abs().max() > 1e-3


def test_head_writes_sum_to_attention_output(tiny_llama):
    lm = tiny_llama
    _, cache = run_with_cache(lm, pad_rows(ROWS[:1]), names=["z", "attn_out"])
    with torch.inference_mode():
        total = head_writes(lm, 2, cache[act_name("z", 2)]).sum(dim=2)
    assert (total - cache[act_name("attn_out", 2)]).abs().max() <= 1e-5


def test_attention_inputs_and_unembed_match_the_forward(tiny_llama):
    lm = tiny_llama
    tokens = pad_rows(ROWS[:1])
    names = [act_name("resid_pre", 1), act_name("q", 1), act_name("v", 1),
             act_name("resid_post", 2)]
    logits, cache = run_with_cache(lm, tokens, names=names)
    with torch.inference_mode():
        q, _, v = attn_inputs(lm, 1, cache[names[0]])
        read_out = unembed(lm, cache[names[3]])
    assert torch.allclose(q, cache[names[1]], atol=1e-6)
    assert torch.allclose(v, cache[names[2]], atol=1e-6)
    assert torch.allclose(read_out, logits, atol=1e-5)


def test_llama_has_no_position_embedding_to_hook(tiny_llama):
    from engine.errors import UsageError

    with pytest.raises(UsageError, match="rotary"):
        forward(tiny_llama, pad_rows(ROWS[:1]), hooks={"hook_pos_embed": lambda x: x})


# ---- the real trained model, when it is converted on this machine --------------------------

IOI = "When Mary and John went to the store, John gave a drink to"


@pytest.fixture(scope="module")
def smollm2() -> LoadedModel:
    from engine.models import load_model
    from engine.smollm2 import converted_dir

    if converted_dir() is None:
        pytest.skip("SmolLM2 is not converted here (`lineup download smollm2`)")
    return load_model("smollm2", device="cpu")


def test_smollm2_hooked_forward_is_plain_llama(smollm2):
    lm = smollm2
    assert (lm.family, lm.n_layers, lm.n_heads, lm.n_kv_heads, lm.d_head) == ("llama", 30, 9, 3, 64)
    tokens = lm.tokenize([IOI])
    logits, cache = run_with_cache(lm, tokens, names=["pattern"])
    with torch.inference_mode():
        reference = lm.model(tokens.ids, output_attentions=True)
    assert (logits - reference.logits).abs().max() <= 1e-4
    for layer in (0, 17, 29):
        ours, theirs = cache[act_name("pattern", layer)], reference.attentions[layer]
        assert ours.shape == theirs.shape == (1, 9, len(tokens.ids[0]), len(tokens.ids[0]))
        assert (ours - theirs).abs().max() <= 1e-5
    mary, john = lm.token_id(" Mary"), lm.token_id(" John")
    assert logits[0, -1, mary] > logits[0, -1, john]  # the trained model does IOI here


def test_smollm2_padded_batch_equals_one_by_one(smollm2):
    lm = smollm2
    texts = [IOI, "The cat sat on the", "One two three"]
    batch = lm.tokenize(texts)
    with torch.inference_mode():
        logits = forward(lm, batch, logits="last").logits
    for i, text in enumerate(texts):
        with torch.inference_mode():
            alone = forward(lm, lm.tokenize([text]), logits="last").logits[0]
        # 30 layers of fp32 matmuls blocked differently for another batch shape: ~1e-4 on
        # logits of size ~20; a padding leak would move them by whole units.
        assert (logits[i] - alone).abs().max() <= 5e-4
