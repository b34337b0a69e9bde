"""The planted GPT-2-small-shaped models do what their plan says, by the engine's own tools.

These models are the judge's ground truth on realistic, noisy, redundant heads, so every
claim their documentation makes (docs/toy-models.md, "Planted GPT-2-small models") is checked
here with engine.detectors, engine.interventions and engine.hooks, not with the builder's
own bookkeeping.
"""

from __future__ import annotations

import pytest
import torch

from engine import planted as P
from engine.detectors import head_scores, top_heads
from engine.hooks import act_name, forward
from engine.interventions import ablate_heads, ablation_hooks, mean_z

N = 32  # IOI prompts per measurement


def heads_of(names: list[str]) -> list[tuple[int, int]]:
    return [(int(a), int(b)) for a, b in (n.split(".") for n in names)]


@pytest.fixture(scope="module")
def gpt2_like(planted):
    return planted("planted-gpt2")


class IOI:
    """Clean and ABC prompts for one model, the ABC means, and the logit diff under knock-outs."""

    def __init__(self, lm):
        self.lm = lm
        self.clean = P.ioi_batch(lm, N)
        self.abc = P.ioi_batch(lm, N, abc=True)
        self.means = mean_z(lm, self.abc.tokens)
        with torch.inference_mode():
            logits = forward(lm, self.clean.tokens, logits="last").logits
        self.base = P.ioi_stats(lm, self.clean, logits)

    def ablated(self, heads: list[tuple[int, int]]) -> dict[str, float]:
        logits = ablate_heads(self.lm, self.clean.tokens, heads, means=self.means,
                              logits="last")
        return P.ioi_stats(self.lm, self.clean, logits)


_IOI: dict[str, IOI] = {}


def ioi(lm) -> IOI:
    if lm.name not in _IOI:
        _IOI[lm.name] = IOI(lm)
    return _IOI[lm.name]


def induction(lm) -> dict[str, float]:
    tokens = P.repeated_tokens(lm, 8)
    with torch.inference_mode():
        return P.induction_stats(tokens, forward(lm, tokens).logits)


# --------------------------------------------------------------------------- shape


def test_is_gpt2_small_shaped_with_the_real_tokenizer(gpt2_like):
    config = gpt2_like.config
    assert (config.n_layer, config.n_head, config.n_embd) == (12, 12, 768)
    assert (config.vocab_size, config.n_positions, gpt2_like.d_head) == (50257, 1024, 64)
    assert len(gpt2_like.tokenizer) == 50257
    assert gpt2_like.block == "gpt2" and gpt2_like.kind == "planted"
    assert gpt2_like.extra["planted"] == P.truth("planted-gpt2")
    # the prompts' words are single GPT-2 tokens, as the puzzles need
    assert gpt2_like.tokenizer.encode(" Mary") == [5335]


def test_every_variant_has_a_spec_naming_real_heads():
    for name in P.VARIANTS:
        truth = P.truth(name)
        assert truth, name
        for heads in truth.values():
            for layer, head in heads_of(heads):
                assert 0 <= layer < 12 and 0 <= head < 12


def test_unknown_variant_is_a_usage_error():
    from engine.errors import UsageError

    with pytest.raises(UsageError, match="planted-gpt2"):
        P.spec("planted-nonsense")


# --------------------------------------------------------------------------- detectors


def test_detectors_rank_the_planted_heads_first(gpt2_like):
    scores = head_scores(gpt2_like)
    truth = P.truth("planted-gpt2")
    for score, job in (("previous_token", "previous-token"),
                       ("duplicate_token", "duplicate-token"), ("induction", "induction")):
        top = {s.name for s in top_heads(scores, score, k=len(truth[job]))}
        assert top == set(truth[job]), (score, top)
    by_name = {s.name: s for s in scores}
    for head in truth["name-mover"] + truth["backup-name-mover"] + truth["induction"]:
        assert by_name[head].copy > 0.9, head
    top_negative = {s.name for s in top_heads(scores, "negative_copy", k=2)}
    assert top_negative == set(truth["negative-name-mover"])
    for head in truth["s-inhibition"]:  # S-inhibition writes into a slot logits do not read
        assert by_name[head].copy < 0.2, head


def test_planted_heads_are_noisy_like_real_ones(gpt2_like):
    """Some planted heads give their responder well under all of their attention."""
    rows = P.role_attention(gpt2_like, ioi(gpt2_like).clean, [(2, 2), (7, 9), (8, 10), (3, 0)])
    assert 0.2 < rows["2.2"]["S1+1->S1"] < 0.6
    for head in ("7.9", "8.10"):
        assert 0.25 < rows[head]["END->S2"] < 0.6, rows[head]
        assert rows[head]["END->IO"] < 0.1  # but S2, not IO, is what they pick out
    assert 0.3 < rows["3.0"]["S2->S1"] < 0.8


# --------------------------------------------------------------------------- tasks


@pytest.mark.parametrize("name", ["planted-gpt2", "planted-redundant", "planted-moved",
                                  "planted-othermech"])
def test_working_variants_do_ioi(planted, name):
    base = ioi(planted(name)).base
    assert base["logit_diff"] > 1.5, base
    assert base["io_over_s"] > 0.8, base


def test_abc_prompts_have_no_preference(gpt2_like):
    abc = P.ioi_batch(gpt2_like, N, abc=True)
    with torch.inference_mode():
        stats = P.ioi_stats(gpt2_like, abc, forward(gpt2_like, abc.tokens, logits="last").logits)
    assert abs(stats["logit_diff"]) < 1.0


@pytest.mark.parametrize("name", ["planted-gpt2", "planted-redundant", "planted-moved"])
def test_working_variants_do_induction(planted, name):
    assert induction(planted(name))["accuracy"] > 0.6


@pytest.mark.parametrize("step", ["s-inhibition", "duplicate-token", "name-mover",
                                  "previous-token", "induction"])
def test_a_missing_step_fails_ioi(planted, step):
    full = ioi(planted("planted-gpt2")).base
    base = ioi(planted(f"planted-missing-{step}")).base
    assert base["logit_diff"] < 0.35 * full["logit_diff"], base
    assert base["io_over_s"] <= 0.65, base


@pytest.mark.parametrize("step", ["previous-token", "induction"])
def test_a_missing_induction_step_fails_induction(planted, step):
    assert induction(planted(f"planted-missing-{step}"))["accuracy"] < 0.1


# --------------------------------------------------------------------------- knock-outs


def test_each_s_inhibition_head_matters_in_planted_gpt2(gpt2_like):
    run = ioi(gpt2_like)
    heads = heads_of(P.truth("planted-gpt2")["s-inhibition"])
    assert run.ablated(heads)["logit_diff"] < 0  # together: more than the whole effect
    for head in heads:
        assert run.ablated([head])["logit_diff"] < run.base["logit_diff"] - 0.05


def test_redundant_s_inhibition_heads_only_matter_together(planted):
    run = ioi(planted("planted-redundant"))
    base = run.base["logit_diff"]
    heads = heads_of(P.truth("planted-redundant")["s-inhibition"])
    assert len(heads) == 4
    together = base - run.ablated(heads)["logit_diff"]
    assert together > base  # more than 100% of the logit diff
    for head in heads:
        alone = base - run.ablated([head])["logit_diff"]
        assert abs(alone) < 0.06 * base, (head, alone)


def test_redundant_name_movers_each_matter_little(planted):
    run = ioi(planted("planted-redundant"))
    base = run.base["logit_diff"]
    for head in heads_of(P.truth("planted-redundant")["name-mover"]):
        assert base - run.ablated([head])["logit_diff"] < 0.15 * base, head


def test_backups_are_silent_until_the_name_movers_are_gone(gpt2_like):
    run = ioi(gpt2_like)
    truth = P.truth("planted-gpt2")
    movers, backups = heads_of(truth["name-mover"]), heads_of(truth["backup-name-mover"])
    base = run.base["logit_diff"]
    # silent: knocking every backup out changes almost nothing
    assert abs(run.ablated(backups)["logit_diff"] - base) < 0.05 * base
    # they take over: without the movers the backups still hold part of the logit diff,
    # which goes once they are knocked out too
    without_movers = run.ablated(movers)["logit_diff"]
    assert 0 < without_movers < base
    assert run.ablated(movers + backups)["logit_diff"] < without_movers - 0.3
    # and they do it by attending IO from END once the movers are silenced
    clean, roles = run.clean, run.clean.roles
    rows = torch.arange(N)
    with torch.inference_mode():
        normal = forward(gpt2_like, clean.tokens, record=["pattern"], logits="none")
        hooks = ablation_hooks(gpt2_like, movers, means=run.means)
        silenced = forward(gpt2_like, clean.tokens, record=["pattern"], hooks=hooks,
                           logits="none")
    for layer, head in backups[:4]:  # the layer-10 ones see every mover but 10.0
        pick = (rows, head, roles["END"], roles["IO"])
        before = float(normal[act_name("pattern", layer)][pick].mean())
        after = float(silenced[act_name("pattern", layer)][pick].mean())
        assert before < 0.15 and after > before + 0.3, (layer, head, before, after)


def test_negative_name_movers_write_against_io(gpt2_like):
    run = ioi(gpt2_like)
    for head in heads_of(P.truth("planted-gpt2")["negative-name-mover"]):
        assert run.ablated([head])["logit_diff"] > run.base["logit_diff"]


# --------------------------------------------------------------------------- moved, othermech


def test_moved_circuit_is_where_its_spec_says(planted):
    lm = planted("planted-moved")
    truth = P.truth("planted-moved")
    scores = head_scores(lm)
    for score, job in (("previous_token", "previous-token"),
                       ("duplicate_token", "duplicate-token"), ("induction", "induction")):
        top = {s.name for s in top_heads(scores, score, k=len(truth[job]))}
        assert top == set(truth[job]), (score, top)
    assert all(layer <= 3 for layer, _ in heads_of(truth["induction"]))
    assert all(layer in (4, 5) for layer, _ in heads_of(truth["s-inhibition"]))
    assert all(layer in (6, 7) for layer, _ in heads_of(truth["name-mover"]))
    run = ioi(lm)
    assert run.ablated(heads_of(truth["s-inhibition"]))["logit_diff"] < 0
    # the old places hold nothing: knocking out the paper's S-inhibition heads does little
    old = heads_of(P.truth("planted-gpt2")["s-inhibition"])
    assert abs(run.ablated(old)["logit_diff"] - run.base["logit_diff"]) < 0.1 * run.base[
        "logit_diff"]


def test_othermech_heads_attend_like_the_card_but_act_otherwise(planted):
    lm = planted("planted-othermech")
    truth = P.truth("planted-othermech")
    rows = P.role_attention(lm, ioi(lm).clean, [(8, 6), (9, 9)])
    assert rows["8.6"]["END->S2"] > 0.3  # looks like s-inhibition
    assert rows["9.9"]["END->IO"] > 0.5  # looks like a name mover
    scores = {s.name: s for s in head_scores(lm)}
    assert scores["8.6"].copy > 0.9  # ... but copies S into the logits
    assert scores["9.9"].copy < 0.2  # ... and writes nothing the logits read
    run = ioi(lm)
    # knocking the copier out helps IOI; the silent attender does not matter
    assert run.ablated([(8, 6)])["logit_diff"] > run.base["logit_diff"]
    assert abs(run.ablated([(9, 9)])["logit_diff"] - run.base["logit_diff"]) < 0.1 * run.base[
        "logit_diff"]
    assert truth["s2-copier"] == ["8.6"] and truth["silent-io-attender"] == ["9.9"]
