"""The bundled toy model: its build is reproducible and the engine's own tools find the planted
circuits (detectors, mean ablation over the corrupted distribution, logit lens).

The planted heads (engine/toys/design.py): 0.1 previous-token and 1.2 induction; 1.0
duplicate-token, 2.1 inhibition and 3.2 name mover for IOI. Every other head is a distractor.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine import toys
from engine.paths import TOYS_DIR

TOY = TOYS_DIR / toys.TOY_NAME
PREV, INDUCTION = (0, 1), (1, 2)
DUPLICATE, INHIBITION, MOVER = (1, 0), (2, 1), (3, 2)
DISTRACTORS = sorted(toys.DISTRACTORS)
N_IOI = 24  # prompts, cycling through the four templates


@pytest.fixture(scope="module")
def lm():
    from engine.models import load_model

    return load_model("toy", device="cpu")


@pytest.fixture(scope="module")
def induction_data(lm):
    """Repeated nouns and their unrepeated counterparts (the ablation reference)."""
    return (toys.repeated_sequences(lm, n=12),
            toys.repeated_sequences(lm, n=12, seed=1, repeat=False))


@pytest.fixture(scope="module")
def ioi_data(lm):
    clean, abc = toys.ioi_prompts(N_IOI), toys.ioi_prompts(N_IOI, abc=True)
    return clean, lm.tokenize(clean.texts), lm.tokenize(abc.texts)


@pytest.fixture(scope="module")
def scores(lm):
    from engine.detectors import head_scores

    return {(s.layer, s.head): s for s in head_scores(lm)}


def logits_of(lm, tokens, last=False):
    import torch

    from engine.hooks import forward

    with torch.inference_mode():
        return forward(lm, tokens, logits="last" if last else "all").logits


# --------------------------------------------------------------------------- the checkpoint


def test_card_records_the_weights_hash():
    card = json.loads((TOY / "lineup.json").read_text())
    assert card["build"]["weights_sha256"] == toys.weights_sha256(TOY / "model.safetensors")
    assert "\n" not in card["description"] and card["description"]
    assert set(card["heads"]) == {f"{layer}.{h}" for layer in range(4) for h in range(4)}
    planted = {k: v["job"] for k, v in card["heads"].items() if v["planted"]}
    assert planted == {"0.1": "previous-token", "1.0": "duplicate-token", "1.2": "induction",
                       "2.1": "s-inhibition", "3.2": "name-mover"}


STALE = "the bundled toy differs from a rebuild: run `python -m engine.toys build`"


@pytest.fixture(scope="module")
def rebuilt(tmp_path_factory):
    out = tmp_path_factory.mktemp("rebuild") / "toy"
    toys.write_toy(out)
    return out


def test_rebuild_has_the_same_weights(rebuilt):
    from safetensors.numpy import load_file

    ours, bundled = load_file(str(rebuilt / "model.safetensors")), load_file(
        str(TOY / "model.safetensors"))
    assert sorted(ours) == sorted(bundled), STALE
    for name, tensor in bundled.items():
        assert ours[name].dtype == tensor.dtype and ours[name].shape == tensor.shape, name
        assert (ours[name] == tensor).all(), f"{name}: {STALE}"


def test_rebuild_has_the_same_architecture(rebuilt):
    """The fields the build sets, not what the writing library adds (its version string)."""
    ours = json.loads((rebuilt / "config.json").read_text())
    bundled = json.loads((TOY / "config.json").read_text())
    for key, value in toys.architecture(bundled["vocab_size"]).items():
        assert ours[key] == bundled[key] == value, f"config.json {key}: {STALE}"


def test_rebuild_has_the_same_tokenizer(rebuilt):
    from tokenizers import Tokenizer

    ours, bundled = (Tokenizer.from_file(str(d / "tokenizer.json")) for d in (rebuilt, TOY))
    assert ours.get_vocab(with_added_tokens=True) == bundled.get_vocab(with_added_tokens=True)
    words = [w for group in toys.word_lists().values() for w in group]
    samples = [*toys.IOI_TEMPLATES, " ".join(words), "went to the park, John zebra <|endoftext|>"]
    for text in samples:
        assert ours.encode(text).ids == bundled.encode(text).ids, text
    for name in ("tokenizer_config.json", "lineup.json"):  # written by our own code
        assert json.loads((rebuilt / name).read_text()) == json.loads((TOY / name).read_text())


def test_weights_hash_ignores_the_file_layout(tmp_path):
    """Same tensors in another order and with other metadata: the same digest; one value
    changed: another."""
    from safetensors.numpy import load_file, save_file

    tensors = load_file(str(TOY / "model.safetensors"))
    shuffled = dict(reversed(list(tensors.items())))
    save_file(shuffled, str(tmp_path / "a.safetensors"), metadata={"written": "elsewhere"})
    assert (tmp_path / "a.safetensors").read_bytes() != (TOY / "model.safetensors").read_bytes()
    assert toys.weights_sha256(tmp_path / "a.safetensors") == toys.weights_sha256(
        TOY / "model.safetensors")
    name = sorted(tensors)[0]
    tensors[name] = tensors[name].copy()
    tensors[name].flat[0] += 1.0
    save_file(tensors, str(tmp_path / "b.safetensors"))
    assert toys.weights_sha256(tmp_path / "b.safetensors") != toys.weights_sha256(
        TOY / "model.safetensors")


def test_weights_are_small():
    assert sum(p.stat().st_size for p in TOY.iterdir()) < 5_000_000


def test_vocabulary_covers_the_word_lists_and_templates(lm):
    vocab = set(lm.tokenizer.get_vocab())
    words = {w for group in toys.word_lists().values() for w in group}
    template_words = {w for t in toys.IOI_TEMPLATES for w in t.split() if "{" not in w}
    assert words | template_words | {"[UNK]", "<|endoftext|>"} <= vocab
    assert lm.tokenizer.convert_ids_to_tokens(0) == "<|endoftext|>"  # the padding id


def test_word_level_tokenizer_splits_punctuation(lm):
    ids = lm.tokenizer.encode("went to the park, John", add_special_tokens=False)
    assert lm.token_strings(ids) == ["went", "to", "the", "park", ",", "John"]
    assert lm.token_strings(lm.tokenizer.encode("zebra", add_special_tokens=False)) == ["[UNK]"]


def test_loads_as_the_toy_model(lm):
    from engine.models import describe_toy

    assert (lm.kind, lm.n_layers, lm.n_heads, lm.block) == ("toy", 4, 4, "toy")
    assert lm.model.config.tie_word_embeddings is False
    assert "induction" in describe_toy("toy")


# --------------------------------------------------------------------------- the tasks


def test_induction_on_repeated_words(lm, induction_data):
    tokens, _ = induction_data
    assert toys.induction_accuracy(logits_of(lm, tokens), tokens) >= 0.99
    vocab = toys.repeated_sequences(lm, n=16, pool="vocab")
    assert toys.induction_accuracy(logits_of(lm, vocab), vocab) >= 0.95


def test_ioi_answers_the_indirect_object(lm, ioi_data):
    clean, tokens, _ = ioi_data
    result = toys.ioi_result(lm, logits_of(lm, tokens, last=True), clean)
    assert result.accuracy >= 0.95  # IO is the top guess over the whole vocabulary
    assert result.io_over_s == 1.0
    assert result.logit_diff > 5.0


def test_every_template_order_works(lm):
    for template in toys.IOI_TEMPLATES:
        prompts = toys.ioi_prompts(8, seed=7, templates=(template,))
        tokens = lm.tokenize(prompts.texts)
        assert toys.ioi_result(lm, logits_of(lm, tokens, last=True), prompts).accuracy == 1.0


@pytest.mark.parametrize(("text", "answer"), [
    # the repeated name is the most recent one: the shortcut and the rule agree
    ("When Tom and Anna went to the park, Tom gave a book to", "Anna"),
    # the non-repeated name is the most recent one: "say the name not said last" would say
    # Tom / Anna / Kate; the rule (say the name that is not repeated) says the other
    ("When Tom went to the park , Tom and Anna gave a book to", "Anna"),
    ("When Anna went to the park , Anna and Tom gave a book to", "Tom"),
    ("After Kate met at the school , Kate and Ben handed a pen to", "Ben"),
])
def test_the_rule_not_the_recency_shortcut(lm, text, answer):
    logits = logits_of(lm, lm.tokenize([text]), last=True)[0]
    assert lm.token_strings([int(logits.argmax())]) == [answer]


def test_abc_prompts_have_no_preference(lm, ioi_data):
    import torch

    _, _, abc_tokens = ioi_data
    logits = logits_of(lm, abc_tokens, last=True)
    assert torch.isfinite(logits).all()
    abc = toys.ioi_prompts(N_IOI, abc=True)
    assert abs(toys.ioi_result(lm, logits, abc).logit_diff) < 1.0
    names = {lm.token_id(w) for w in toys.word_lists()["names"]}
    named = sum(int(i) in names for i in logits.topk(2, dim=-1).indices.flatten())
    assert named >= len(abc.texts)  # still guesses names


# --------------------------------------------------------------------------- the engine finds it


def test_detectors_rank_the_planted_heads_first(scores):
    def best(score):
        ranked = sorted(scores.values(), key=lambda s: getattr(s, score), reverse=True)
        return (ranked[0].layer, ranked[0].head), getattr(ranked[0], score), \
            getattr(ranked[1], score)

    for score, head in (("previous_token", PREV), ("induction", INDUCTION),
                        ("duplicate_token", DUPLICATE)):
        top, first, second = best(score)
        assert top == head, score
        assert first > 0.9 and second < 0.3, score
    assert scores[MOVER].copy > 0.9
    assert scores[INDUCTION].copy > 0.9
    assert max(s.copy for key, s in scores.items() if key not in (MOVER, INDUCTION)) < 0.3


def test_ioi_heads_attend_from_their_roles(lm, ioi_data):
    import torch

    from engine.hooks import act_name, run_with_cache

    clean, tokens, _ = ioi_data
    roles = toys.ioi_roles(lm, clean)
    _, cache = run_with_cache(lm, tokens, ["pattern"], logits="none")
    rows = torch.arange(len(tokens))

    def attention(head, asker, responder):
        pattern = cache[act_name("pattern", head[0])][:, head[1]]
        return float(pattern[rows, roles[asker], roles[responder]].mean())

    assert attention(DUPLICATE, "S2", "S1") > 0.95
    assert attention(INHIBITION, "END", "S2") > 0.95
    assert attention(MOVER, "END", "IO") > 0.95
    assert attention(PREV, "S1+1", "S1") > 0.95
    assert attention(INDUCTION, "S2", "S1+1") > 0.95  # there, but IOI does not use it


def test_mean_ablation_breaks_induction_only_through_its_circuit(lm, induction_data):
    from engine.interventions import ablate_heads, mean_z

    tokens, reference = induction_data
    means = mean_z(lm, reference)  # the engine's per-position means over unrepeated words
    for head in (PREV, INDUCTION):
        logits = ablate_heads(lm, tokens, [head], means=means)
        assert toys.induction_accuracy(logits, tokens) < 0.2, head
    # one distractor alone, then every head outside the circuit at once
    for heads in ([DISTRACTORS[0]], [*DISTRACTORS, DUPLICATE, INHIBITION, MOVER]):
        logits = ablate_heads(lm, tokens, heads, means=means)
        assert toys.induction_accuracy(logits, tokens) > 0.9, heads


def test_mean_ablation_breaks_each_ioi_step(lm, ioi_data):
    from engine.interventions import ablate_heads, mean_z

    clean, tokens, abc_tokens = ioi_data
    full = toys.ioi_result(lm, logits_of(lm, tokens, last=True), clean)
    means = mean_z(lm, abc_tokens)  # the engine's per-position means over the ABC prompts
    for head in (DUPLICATE, INHIBITION, MOVER):
        logits = ablate_heads(lm, tokens, [head], means=means, logits="last")
        result = toys.ioi_result(lm, logits, clean)
        assert result.accuracy < 0.2, head
        assert result.logit_diff < 0.1 * full.logit_diff, head
    for heads in ([DISTRACTORS[0]], [*DISTRACTORS, PREV, INDUCTION]):
        logits = ablate_heads(lm, tokens, heads, means=means, logits="last")
        result = toys.ioi_result(lm, logits, clean)
        assert result.accuracy > 0.9, heads
        assert result.logit_diff > 0.8 * full.logit_diff, heads


def test_logit_lens_shows_the_answer_only_after_its_layer(lm, induction_data, ioi_data):
    import torch

    from engine.lens import answer_ranks

    tokens, _ = induction_data
    cut = toys.prefix(tokens, tokens.ids.shape[1] - 1)
    ranks = answer_ranks(lm, cut, tokens.ids[:, -1])  # [stage, batch]; stage L+1 = after L
    assert (ranks[: INDUCTION[0] + 1] > 0).all()
    assert (ranks[INDUCTION[0] + 1 :] == 0).all()

    clean, ioi_tokens, _ = ioi_data
    io = torch.tensor([lm.token_id(w) for w in clean.io])
    ranks = answer_ranks(lm, ioi_tokens, io)
    assert (ranks[: MOVER[0] + 1] > 0).all()
    assert (ranks[MOVER[0] + 1] == 0).all()


# --------------------------------------------------------------------------- commands


@pytest.mark.slow
def test_heads_command_ranks_the_planted_heads():
    lineup = Path(sys.executable).parent / "lineup"
    if not lineup.exists():
        pytest.skip("the lineup command is not installed in this environment")
    out = subprocess.run([str(lineup), "heads", "--model", "toy", "--json"], check=True,
                         capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    rows = {(r["layer"], r["head"]): r for r in json.loads(out.stdout)}
    for score, head in (("previous_token", PREV), ("induction", INDUCTION),
                        ("duplicate_token", DUPLICATE)):
        assert max(rows, key=lambda key: rows[key][score]) == head, score
    assert rows[MOVER]["copy"] > 0.9


@pytest.mark.slow
def test_check_command_passes(capsys):
    assert toys.main(["check"]) == 0
    assert "PROBLEM" not in capsys.readouterr().out
