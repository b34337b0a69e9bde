"""The logit lens reads every stage; its last stage must be the model's own prediction."""

from __future__ import annotations

import torch

from engine.hooks import forward
from engine.lens import answer_ranks, lens_logits, logit_lens

TEXT = "When Mary and John went to the store, John gave a drink to"


def test_last_stage_is_the_models_prediction(random_gpt2):
    lm = random_gpt2
    report = logit_lens(lm, TEXT, k=3)
    assert len(report.layers) == lm.n_layers + 1
    assert report.layers[0].label == "embeddings"
    assert report.layers[-1].label == f"after layer {lm.n_layers - 1}"
    with torch.inference_mode():
        logits = forward(lm, lm.tokenize([TEXT])).logits[0]
    predicted = [lm.tokenizer.decode([int(i)]) for i in logits.argmax(-1)]
    assert [p.top[0][0] for p in report.layers[-1].positions] == predicted
    for position in report.layers[5].positions:
        probs = [p for _, p in position.top]
        assert probs == sorted(probs, reverse=True) and 0 <= sum(probs) <= 1.0001


def test_answer_ranks_agree_with_the_full_lens(random_gpt2):
    lm = random_gpt2
    tokens = lm.tokenize([TEXT, "The cat sat on the"])
    answers = torch.tensor([lm.token_id(" Mary"), lm.token_id(" mat")])
    ranks = answer_ranks(lm, tokens, answers)
    full = lens_logits(lm, tokens)  # [stage, batch, pos, vocab]
    for b, last in enumerate(tokens.lengths):
        own = full[:, b, last - 1, answers[b]]
        expected = (full[:, b, last - 1] > own[:, None]).sum(-1)
        assert torch.equal(ranks[:, b], expected)
